package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/blobstore"
	"github.com/dynoai/dynoai/runstore/dynoai3import"
	"github.com/dynoai/dynoai/runstore/sqlstore"
)

// importFlags are import-dynoai3's options.
type importFlags struct {
	root     string
	filesDir string
	filesURL string
	tenant   string
	inputs   string
	dryRun   bool
}

func (f *importFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.filesDir, "files", "", "file contents directory (default $DYNOAI_FILES_DIR, else <data dir>/files)")
	fs.StringVar(&f.filesURL, "files-url", "", "file contents in a blob store (default $DYNOAI_FILES_URL)")
	fs.StringVar(&f.tenant, "tenant", "", "owner of the imported runs (default: the default tenant)")
	fs.StringVar(&f.inputs, "inputs", "", "comma-separated folders where the toolkit runs' input logs may be")
	fs.BoolVar(&f.dryRun, "dry-run", false, "read and verify every folder, store nothing")
}

// resolve fills the defaults from the environment the server reads, so an
// import lands where the server looks.
func (f *importFlags) resolve(getenv func(string) string, dataDir string) error {
	if f.filesURL == "" && f.filesDir == "" {
		f.filesURL = getenv("DYNOAI_FILES_URL")
	}
	if f.filesURL == "" && f.filesDir == "" {
		f.filesDir = getenv("DYNOAI_FILES_DIR")
	}
	if f.filesURL == "" && f.filesDir == "" {
		f.filesDir = filepath.Join(dataDir, "files")
	}
	if f.filesURL != "" {
		if err := blobstore.CheckURL(f.filesURL); err != nil {
			return fmt.Errorf("-files-url: %w", err)
		}
	}
	if f.tenant != "" && !runstore.ValidTenant(f.tenant) {
		return fmt.Errorf("-tenant %q: want 1 to 64 of [A-Za-z0-9._:-], starting with a letter or digit", f.tenant)
	}
	if st, err := os.Stat(f.root); err != nil {
		return err
	} else if !st.IsDir() {
		return fmt.Errorf("%s is not a folder", f.root)
	}
	return nil
}

// run imports and prints a line per folder, its notes, and the summary.
// It exits 1 when a folder had to be skipped (other than an empty one),
// so a script notices.
func (f *importFlags) run(ctx context.Context, url string, stdout, stderr io.Writer) int {
	opts := dynoai3import.Options{Tenant: f.tenant, DryRun: f.dryRun}
	for _, d := range strings.Split(f.inputs, ",") {
		if d = strings.TrimSpace(d); d != "" {
			opts.InputDirs = append(opts.InputDirs, d)
		}
	}
	var (
		runs  runstore.Importer
		files runstore.FileStore
	)
	if f.dryRun {
		// The store, if there is one at the latest schema, tells the
		// folders imported before; a dry run creates and migrates nothing.
		s, why := openForLookup(ctx, url)
		if s != nil {
			defer s.Close()
			runs = s
		} else {
			fmt.Fprintf(stdout, "dry run without the database (%s): cannot tell what is imported already\n", why)
		}
	} else {
		if d, target, err := sqlstore.ParseURL(url); err == nil && d == sqlstore.SQLite {
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				fmt.Fprintf(stderr, "dbtool import-dynoai3: %v\n", err)
				return 1
			}
		}
		s, err := sqlstore.Open(ctx, url, sqlstore.Options{})
		if err != nil {
			fmt.Fprintf(stderr, "dbtool import-dynoai3: %v\n", err)
			return 1
		}
		defer s.Close()
		runs = s
		fs, closeFiles, err := openFiles(ctx, f.filesDir, f.filesURL)
		if err != nil {
			fmt.Fprintf(stderr, "dbtool import-dynoai3: %v\n", err)
			return 1
		}
		defer closeFiles()
		files = fs
		fmt.Fprintf(stdout, "importing %s into %s (files in %s)\n", f.root, sqlstore.RedactDSN(url), fs)
	}
	rep, err := dynoai3import.Import(ctx, f.root, runs, files, opts)
	failed := false
	if rep != nil {
		for _, o := range rep.Outcomes {
			printOutcome(stdout, o)
			if o.Action == dynoai3import.Skipped && o.Family != dynoai3import.FamilyEmpty {
				failed = true
			}
		}
		fmt.Fprintln(stdout, rep.Summary())
	}
	if err != nil {
		fmt.Fprintf(stderr, "dbtool import-dynoai3: stopped: %v\n", err)
		return 1
	}
	if failed {
		fmt.Fprintln(stderr, "dbtool import-dynoai3: some folders were skipped; nothing of them was stored (see above)")
		return 1
	}
	return 0
}

func printOutcome(w io.Writer, o dynoai3import.Outcome) {
	fam := string(o.Family)
	if fam == "" {
		fam = "?"
	}
	switch o.Action {
	case dynoai3import.Skipped:
		fmt.Fprintf(w, "%-12s %-11s %s\n", o.Action, fam, o.Err)
		return
	case dynoai3import.WouldImport:
		fmt.Fprintf(w, "%-12s %-11s %s: %s, %d files (%d bytes), %d apply records\n", o.Action, fam, o.Folder, o.Status, o.Files, o.Bytes, o.Applies)
	default:
		fmt.Fprintf(w, "%-12s %-11s %s: run %s, %s, %d files (%d bytes), %d apply records\n", o.Action, fam, o.Folder, o.Run, o.Status, o.Files, o.Bytes, o.Applies)
	}
	for _, n := range o.Notes {
		fmt.Fprintf(w, "%-12s %-11s   note: %s\n", "", "", n)
	}
}

// openForLookup opens the store at url without creating or migrating it,
// or says why not.
func openForLookup(ctx context.Context, url string) (*sqlstore.Store, string) {
	d, target, err := sqlstore.ParseURL(url)
	if err != nil {
		return nil, err.Error()
	}
	if d == sqlstore.SQLite {
		if _, err := os.Stat(target); err != nil {
			return nil, "no database at " + target
		}
	}
	s, err := sqlstore.Open(ctx, url, sqlstore.Options{SkipMigrate: true})
	if err != nil {
		return nil, err.Error()
	}
	ms, err := sqlstore.Migrations()
	if err != nil {
		s.Close()
		return nil, err.Error()
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v < len(ms) {
		s.Close()
		return nil, fmt.Sprintf("schema version %d, not %d: run dbtool migrate", v, len(ms))
	}
	return s, ""
}

// fileStore is a FileStore with a name to print.
type fileStore interface {
	runstore.FileStore
	fmt.Stringer
}

// openFiles opens the file contents store as the server does: the blob
// store a URL names, or a local directory.
func openFiles(ctx context.Context, dir, url string) (fileStore, func(), error) {
	if url != "" {
		bs, err := blobstore.Open(ctx, url, blobstore.Options{})
		if err != nil {
			return nil, nil, fmt.Errorf("-files-url: %w", err)
		}
		if strings.HasPrefix(url, "mem:") {
			bs.Close()
			return nil, nil, errors.New("-files-url mem:// keeps nothing after dbtool exits")
		}
		return bs, func() { bs.Close() }, nil
	}
	fs, err := runstore.NewLocalFileStore(dir, runstore.LocalFileStoreOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("-files: %w", err)
	}
	return fs, func() { fs.Close() }, nil
}

// timeoutSet reports whether -timeout was given on fs's command line.
func timeoutSet(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "timeout" {
			set = true
		}
	})
	return set
}
