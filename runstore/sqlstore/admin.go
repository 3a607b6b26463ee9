package sqlstore

import (
	"github.com/dynoai/dynoai/runstore"

	"context"
	"errors"
	"fmt"
	"strings"
)

// Info describes a SQL store for operators.
type Info struct {
	Dialect       Dialect
	DSN           string // password redacted
	SchemaVersion int    // applied
	LatestVersion int    // embedded in this binary
	Runs          int64
	ByStatus      map[runstore.Status]int64
	Files         int64
	FileBytes     int64
}

// Info reports the store's engine, schema versions and row counts.
func (s *Store) Info(ctx context.Context) (Info, error) {
	ms, err := Migrations()
	if err != nil {
		return Info{}, err
	}
	in := Info{Dialect: s.dialect, DSN: s.redacted, LatestVersion: len(ms), ByStatus: map[runstore.Status]int64{}}
	if in.SchemaVersion, err = s.SchemaVersion(ctx); err != nil || in.SchemaVersion == 0 {
		return in, err
	}
	var rows []struct {
		Status string `db:"status"`
		N      int64  `db:"n"`
	}
	if err := s.r.SelectContext(ctx, &rows, `SELECT status, COUNT(*) AS n FROM runs GROUP BY status`); err != nil {
		return in, fmt.Errorf("sqlstore: info: %w", err)
	}
	for _, r := range rows {
		in.ByStatus[runstore.Status(r.Status)] = r.N
		in.Runs += r.N
	}
	var fs struct {
		N     int64 `db:"n"`
		Bytes int64 `db:"b"`
	}
	if err := s.r.GetContext(ctx, &fs, `SELECT COUNT(*) AS n, COALESCE(SUM(size_bytes), 0) AS b FROM run_files`); err != nil {
		return in, fmt.Errorf("sqlstore: info: %w", err)
	}
	in.Files, in.FileBytes = fs.N, fs.Bytes
	return in, nil
}

// Check verifies the database: it answers, its schema is the latest this
// binary knows, and (SQLite) PRAGMA integrity_check and foreign_key_check
// pass. Every problem found is reported in the returned error.
func (s *Store) Check(ctx context.Context) error {
	if err := s.Ping(ctx); err != nil {
		return err
	}
	var problems []error
	ms, err := Migrations()
	if err != nil {
		return err
	}
	v, err := s.SchemaVersion(ctx)
	switch {
	case err != nil:
		problems = append(problems, err)
	case v < len(ms):
		problems = append(problems, fmt.Errorf("schema version %d, this binary expects %d (run migrate)", v, len(ms)))
	case v > len(ms):
		problems = append(problems, fmt.Errorf("schema version %d is newer than this binary's %d", v, len(ms)))
	}
	if s.dialect == SQLite {
		var res []string
		if err := s.r.SelectContext(ctx, &res, `PRAGMA integrity_check`); err != nil {
			problems = append(problems, fmt.Errorf("integrity_check: %w", err))
		} else if len(res) != 1 || res[0] != "ok" {
			problems = append(problems, fmt.Errorf("integrity_check: %s", strings.Join(res, "; ")))
		}
		rows, err := s.r.QueryContext(ctx, `PRAGMA foreign_key_check`)
		if err != nil {
			problems = append(problems, fmt.Errorf("foreign_key_check: %w", err))
		} else {
			n := 0
			for rows.Next() {
				n++
			}
			rows.Close()
			if n > 0 {
				problems = append(problems, fmt.Errorf("foreign_key_check: %d rows violate a foreign key", n))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("sqlstore: check %s: %w", s.redacted, errors.Join(problems...))
	}
	return nil
}

// Drop removes every table of the store, data included. The caller is
// responsible for asking for confirmation.
func (s *Store) Drop(ctx context.Context) error {
	cascade := ""
	if s.dialect == Postgres {
		cascade = " CASCADE"
	}
	return s.tx(ctx, func(tx *txn) error {
		for _, t := range []string{"run_imports", "run_jobs", "leases", "run_apply_files", "run_applies", "store_probes", "run_files", "run_status_history", "runs", "schema_migrations"} {
			if _, err := tx.ExecContext(ctx, "DROP TABLE IF EXISTS "+t+cascade); err != nil {
				return fmt.Errorf("sqlstore: drop %s: %w", t, err)
			}
		}
		s.log.Info("sqlstore: dropped all tables", "dsn", s.redacted)
		return nil
	})
}
