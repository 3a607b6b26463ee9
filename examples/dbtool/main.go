// Command dbtool initialises, migrates, checks, describes and drops a DynoAI
// run store (SQLite or PostgreSQL).
//
// Usage:
//
//	dbtool [-db URL] init                      create the schema (all migrations)
//	dbtool [-db URL] migrate                   apply pending migrations
//	dbtool [-db URL] check                     integrity and schema check; exit 1 on problems
//	dbtool [-db URL] info                      engine, redacted URL, schema version, counts
//	dbtool [-db URL] recover                   mark runs stuck in processing as failed
//	dbtool [-db URL] drop -yes-really-drop     drop every table and its data
//	dbtool [-db URL] import-dynoai3 [-files DIR|-files-url URL] [-tenant T] [-inputs DIR,...] [-dry-run] DIR
//	                                           import the predecessor's run folders
//
// The URL comes from -db, else $DYNOAI_DATABASE_URL, else $DATABASE_URL,
// else the server's default, sqlite:data/dynoai.db (data is
// $DYNOAI_DATA_DIR when set), so dbtool and examples/server find the same
// database. It is printed only with its password redacted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"time"

	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/sqlstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

const usage = `usage: dbtool [-db URL] <command>

commands:
  init                  create the database schema (apply every migration)
  migrate               apply pending migrations
  check                 check integrity and schema version (exit 1 on problems)
  info                  show engine, URL (password redacted), schema version and counts
  recover               mark runs stuck in processing as failed (after a crash)
  drop -yes-really-drop drop every table and all data
  import-dynoai3 DIR    import DynoAI_3 run folders found under DIR (every family: toolkit
                        --outdir folders, API outputs/uploads, runs/, transient outputs):
      -files DIR        file contents directory ($DYNOAI_FILES_DIR, default <data dir>/files)
      -files-url URL    or a blob store ($DYNOAI_FILES_URL: s3://..., file:///dir)
      -tenant T         owner of the imported runs (default: the default tenant)
      -inputs DIR,...   where to look for toolkit runs' input logs by SHA-256
      -dry-run          read and verify everything, store nothing
                        A second import adds nothing; a corrupted folder is reported and
                        skipped (exit 1), never half imported.

The URL comes from -db, $DYNOAI_DATABASE_URL, $DATABASE_URL, or the server's default,
sqlite:data/dynoai.db (data is $DYNOAI_DATA_DIR when set):
  postgres://user:pass@127.0.0.1:5432/dynoai?sslmode=disable
  sqlite:///relative/path.db   sqlite:////absolute/path.db   (the scheme is required)
`

// run is main without the process: it returns the exit code (0 ok, 1
// failure, 2 usage).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("dbtool", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() { fmt.Fprint(stderr, usage) }
	dbURL := fl.String("db", "", "database URL")
	timeout := fl.Duration("timeout", time.Minute, "give up after this long")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // asked for: the usage is printed, nothing went wrong
		}
		return 2
	}
	if fl.NArg() == 0 {
		fl.Usage()
		return 2
	}
	cmd, rest := fl.Arg(0), fl.Args()[1:]
	sub := flag.NewFlagSet("dbtool "+cmd, flag.ContinueOnError)
	sub.SetOutput(stderr)
	// -db and -timeout work after the command too.
	sub.StringVar(dbURL, "db", *dbURL, "database URL")
	sub.DurationVar(timeout, "timeout", *timeout, "give up after this long")
	yes := false
	if cmd == "drop" {
		sub.BoolVar(&yes, "yes-really-drop", false, "confirm that every table and all data are to be dropped")
	}
	var imp importFlags
	if cmd == "import-dynoai3" {
		imp.register(sub)
	}
	if err := sub.Parse(rest); err != nil {
		return 2
	}
	url := *dbURL
	for _, k := range []string{"DYNOAI_DATABASE_URL", "DATABASE_URL"} {
		if url == "" {
			url = getenv(k)
		}
	}
	if url == "" {
		url = "sqlite:" + filepath.Join(dataDir(getenv), "dynoai.db")
	}
	switch {
	case cmd == "import-dynoai3" && sub.NArg() != 1:
		fmt.Fprintf(stderr, "dbtool import-dynoai3: want one folder to import from, got %d arguments\n", sub.NArg())
		return 2
	case cmd == "import-dynoai3":
		imp.root = sub.Arg(0)
	case sub.NArg() > 0:
		fmt.Fprintf(stderr, "dbtool %s: unexpected argument %q\n", cmd, sub.Arg(0))
		return 2
	}
	known := []string{"init", "migrate", "check", "info", "recover", "drop", "import-dynoai3"}
	if !slices.Contains(known, cmd) {
		fmt.Fprintf(stderr, "dbtool: unknown command %q\n", cmd)
		fl.Usage()
		return 2
	}
	if cmd == "drop" && !yes {
		fmt.Fprintf(stderr, "dbtool drop: refusing to drop %s without -yes-really-drop\n", sqlstore.RedactDSN(url))
		return 2
	}
	if cmd == "import-dynoai3" {
		if err := imp.resolve(getenv, dataDir(getenv)); err != nil {
			fmt.Fprintf(stderr, "dbtool import-dynoai3: %v\n", err)
			return 2
		}
		// An import of years of folders may take longer than the other
		// commands' minute; -timeout still bounds it when given.
		if !timeoutSet(sub) && !timeoutSet(fl) {
			*timeout = 24 * time.Hour
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if cmd == "import-dynoai3" {
		return imp.run(ctx, url, stdout, stderr)
	}
	if err := do(ctx, cmd, url, stdout); err != nil {
		fmt.Fprintf(stderr, "dbtool %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// dataDir is the server's data directory: $DYNOAI_DATA_DIR, else data.
func dataDir(getenv func(string) string) string {
	if d := getenv("DYNOAI_DATA_DIR"); d != "" {
		return d
	}
	return "data"
}

func do(ctx context.Context, cmd, url string, out io.Writer) error {
	d, target, err := sqlstore.ParseURL(url)
	if err != nil {
		return err
	}
	if d == sqlstore.SQLite && cmd != "init" && cmd != "migrate" {
		// Opening SQLite creates the file; only init and migrate should.
		if _, err := os.Stat(target); err != nil {
			return fmt.Errorf("no database at %s (run dbtool init): %w", target, err)
		}
	}
	if d == sqlstore.SQLite {
		// init and migrate create the file; its folder too (the default
		// data/ of a fresh checkout).
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
	}
	s, err := sqlstore.Open(ctx, url, sqlstore.Options{SkipMigrate: true})
	if err != nil {
		return err
	}
	defer s.Close()
	switch cmd {
	case "init", "migrate":
		before, err := s.SchemaVersion(ctx)
		if err != nil {
			return err
		}
		applied, err := s.Migrate(ctx)
		if err != nil {
			return err
		}
		after, err := s.SchemaVersion(ctx)
		if err != nil {
			return err
		}
		switch {
		case len(applied) == 0:
			fmt.Fprintf(out, "%s: schema up to date at version %d\n", s.DSN(), after)
		default:
			fmt.Fprintf(out, "%s: schema version %d -> %d (applied %v)\n", s.DSN(), before, after, applied)
		}
		return nil
	case "check":
		if err := s.Check(ctx); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: ok\n", s.DSN())
		return nil
	case "info":
		in, err := s.Info(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "engine:         %s\n", in.Dialect)
		fmt.Fprintf(out, "url:            %s\n", in.DSN)
		fmt.Fprintf(out, "schema version: %d (this binary: %d)\n", in.SchemaVersion, in.LatestVersion)
		if in.SchemaVersion == 0 {
			fmt.Fprintln(out, "not initialised: run dbtool init")
			return nil
		}
		fmt.Fprintf(out, "runs:           %d\n", in.Runs)
		for _, st := range runstore.Statuses() {
			if n := in.ByStatus[st]; n > 0 {
				fmt.Fprintf(out, "  %-12s  %d\n", st, n)
			}
		}
		fmt.Fprintf(out, "files:          %d (%d bytes)\n", in.Files, in.FileBytes)
		return nil
	case "recover":
		if err := needSchema(ctx, s); err != nil {
			return err
		}
		ids, err := s.Recover(ctx, runstore.RunError{Code: "interrupted", Message: "the run was interrupted (marked failed by dbtool recover)"})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: %d interrupted runs marked failed\n", s.DSN(), len(ids))
		for _, id := range ids {
			fmt.Fprintln(out, " ", id)
		}
		return nil
	case "drop":
		if err := s.Drop(ctx); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: dropped every table\n", s.DSN())
		return nil
	}
	return fmt.Errorf("unknown command %q", cmd)
}

func needSchema(ctx context.Context, s *sqlstore.Store) error {
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if v == 0 {
		return errors.New("database not initialised: run dbtool init")
	}
	return nil
}
