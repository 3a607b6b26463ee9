package sqlstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/runstoretest"
	"github.com/lib/pq"
	"github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func meta(name string) runstore.FileMeta {
	sum := sha256.Sum256([]byte(name))
	h := hex.EncodeToString(sum[:])
	return runstore.FileMeta{Name: name, ContentType: "text/csv", Size: int64(len(name)), SHA256: h, StorageKey: h}
}

// childTables are the tables whose rows belong to a run, with the query
// counting the rows joined to their run.
var childTables = map[string]string{
	"run_status_history": `SELECT COUNT(*) FROM run_status_history c JOIN runs r ON r.id = c.run_id`,
	"run_files":          `SELECT COUNT(*) FROM run_files c JOIN runs r ON r.id = c.run_id`,
	"run_applies":        `SELECT COUNT(*) FROM run_applies c JOIN runs r ON r.id = c.run_id`,
	"run_apply_files": `SELECT COUNT(*) FROM run_apply_files c JOIN run_applies a ON a.id = c.apply_id
		JOIN run_files f ON f.id = c.file_id AND f.run_id = a.run_id JOIN runs r ON r.id = a.run_id`,
	"run_jobs": `SELECT COUNT(*) FROM run_jobs c JOIN runs r ON r.id = c.run_id`,
}

func (s *Store) countRows(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for table, q := range childTables {
		var joined, all int
		require.NoError(t, s.r.Get(&joined, q), table)
		require.NoError(t, s.r.Get(&all, `SELECT COUNT(*) FROM `+table), table)
		require.Equal(t, all, joined, "every row of %s is joined to its run", table)
		out[table] = all
	}
	var runs int
	require.NoError(t, s.r.Get(&runs, `SELECT COUNT(*) FROM runs`))
	out["runs"] = runs
	return out
}

// runsShape returns the columns of runs in order and the names of its
// indexes.
func (s *Store) runsShape(t *testing.T) (columns, indexes []string) {
	t.Helper()
	switch s.dialect {
	case SQLite:
		require.NoError(t, s.r.Select(&columns, `SELECT name FROM pragma_table_info('runs') ORDER BY cid`))
		require.NoError(t, s.r.Select(&indexes, `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'runs' ORDER BY name`))
	default:
		require.NoError(t, s.r.Select(&columns, `SELECT column_name FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = 'runs' ORDER BY ordinal_position`))
		require.NoError(t, s.r.Select(&indexes, `SELECT indexname FROM pg_indexes
			WHERE schemaname = current_schema() AND tablename = 'runs' ORDER BY indexname`))
	}
	return columns, indexes
}

func isCheck(err error) bool {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return pe.Code == "23514"
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.ExtendedCode == sqlite3.ErrConstraintCheck
	}
	return false
}

// TestUpgradeTo5: a database at version 4 holding a run with its history,
// files and apply records, and a submitted run with its job, is migrated to
// 5. On SQLite that rebuilds runs, which every other table refers to: no
// child row may be lost (with foreign keys on, dropping runs would delete
// them all), every one still joins its run, the foreign keys still work
// (deleting a run cascades), runs keeps its columns and indexes, and the
// CHECK admits 'import' and still refuses an unknown source.
func TestUpgradeTo5(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T, now func() time.Time) *Store
		// prepare changes the version-4 database before the upgrade.
		prepare func(t *testing.T, s *Store)
	}{
		{"SQLite", openSQLiteAt, nil},
		{"Postgres", openPostgresAt, nil},
		{"PostgresRenamedConstraint", openPostgresAt, func(t *testing.T, s *Store) {
			// A database restored by hand may name the constraint otherwise.
			_, err := s.w.Exec(`ALTER TABLE runs RENAME CONSTRAINT runs_source_check TO legacy_source_values`)
			require.NoError(t, err)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			clock := runstoretest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
			s := tc.open(t, clock.Now)
			applied, err := s.migrateTo(ctx, 4)
			require.NoError(t, err)
			require.Equal(t, []int{1, 2, 3, 4}, applied)

			v4 := fillVersion4(t, s)
			old, ap, sub := v4.old, v4.apply, v4.submitted
			before := s.countRows(t)
			assert.Equal(t, v4.counts, before)
			columns, indexes := s.runsShape(t)
			if tc.prepare != nil {
				tc.prepare(t, s)
			}

			applied, err = s.migrateTo(ctx, 5)
			require.NoError(t, err)
			require.Equal(t, []int{5}, applied)
			assert.Equal(t, before, s.countRows(t), "every row kept, joined to its run")
			c2, i2 := s.runsShape(t)
			assert.Equal(t, columns, c2, "runs keeps its columns in order")
			assert.Equal(t, indexes, i2, "runs keeps its indexes")
			s.intact(t)
			if s.dialect == SQLite {
				var on int
				require.NoError(t, s.w.Get(&on, `PRAGMA foreign_keys`))
				assert.Equal(t, 1, on, "the writer's foreign keys are back on")
			} else {
				var checks []string
				require.NoError(t, s.r.Select(&checks, `SELECT conname FROM pg_constraint con
					JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = ANY (con.conkey)
					WHERE con.conrelid = 'runs'::regclass AND con.contype = 'c' AND a.attname = 'source'`))
				assert.Equal(t, []string{"runs_source_check"}, checks, "one CHECK on source")
			}

			// What was stored reads back as before.
			got, err := s.Get(ctx, old.ID)
			require.NoError(t, err)
			assert.JSONEq(t, string(old.Results), string(got.Results))
			got.Results, old.Results = nil, nil
			assert.Equal(t, old, got)
			aps, err := s.Applies(ctx, old.ID)
			require.NoError(t, err)
			require.Len(t, aps, 1)
			assert.Equal(t, ap, aps[0])
			h, err := s.History(ctx, old.ID)
			require.NoError(t, err)
			assert.Len(t, h, 3)
			l, err := s.Claim(ctx, runstore.Claim{Worker: "w", Lease: time.Minute})
			require.NoError(t, err)
			assert.Equal(t, sub.Run.ID, l.Run.ID, "the job survived and is claimed")

			// Imports work; an unknown source is still refused.
			imp, created, err := s.Import(ctx, runstore.ImportRun{Key: "k1", Run: runstore.NewRun{Source: runstore.SourceImport},
				Status: runstore.StatusCompleted, Files: []runstore.FileMeta{meta("a.csv")}})
			require.NoError(t, err)
			assert.True(t, created)
			assert.Equal(t, runstore.SourceImport, imp.Source)
			_, err = s.w.Exec(s.w.Rebind(`INSERT INTO runs (id, version, status, source, created_us, updated_us) VALUES (?, 1, 'queued', 'dynoai3', 0, 0)`),
				strings.Repeat("0c", 16))
			require.Error(t, err)
			assert.True(t, isCheck(err), "refused by the CHECK: %v", err)

			// The foreign keys refer to the rebuilt runs: deleting a run
			// takes its rows with it.
			require.NoError(t, s.Delete(ctx, old.ID))
			after := s.countRows(t)
			assert.Equal(t, map[string]int{"runs": 2, "run_status_history": 2 + 2, "run_files": 1 + 1, "run_applies": 0,
				"run_apply_files": 0, "run_jobs": 1}, after)
			s.intact(t)
			_, err = s.Migrate(ctx) // and any later migration
			require.NoError(t, err)
			require.NoError(t, s.Check(ctx))
		})
	}
}

// intact checks a SQLite database with PRAGMA integrity_check and
// foreign_key_check (Check does too, but also wants the latest version).
func (s *Store) intact(t *testing.T) {
	t.Helper()
	if s.dialect != SQLite {
		return
	}
	var res []string
	require.NoError(t, s.r.Select(&res, `PRAGMA integrity_check`))
	assert.Equal(t, []string{"ok"}, res)
	var orphans int
	require.NoError(t, s.r.Get(&orphans, `SELECT COUNT(*) FROM pragma_foreign_key_check`))
	assert.Zero(t, orphans, "rows violating a foreign key")
}

// version4 is what fillVersion4 stored.
type version4 struct {
	old       runstore.Run // completed, with a file and an apply record
	apply     runstore.Apply
	submitted runstore.Submitted // queued, with its job
	counts    map[string]int     // rows per table (see countRows)
}

// fillVersion4 stores, in a database at version 4, a completed run with
// its history, an input file and an apply record with its three files,
// and a submitted run with its job.
func fillVersion4(t *testing.T, s *Store) version4 {
	t.Helper()
	ctx := context.Background()
	var v version4
	old, err := s.Create(ctx, runstore.NewRun{Source: runstore.SourceUpload, Tenant: "shop-a", Filename: "pull.csv", Vehicle: "Fat Bob"})
	require.NoError(t, err)
	_, err = s.AddFile(ctx, old.ID, meta("pull.csv"))
	require.NoError(t, err)
	old, err = s.Update(ctx, old.ID, runstore.Update{Version: old.Version, Status: runstore.StatusProcessing})
	require.NoError(t, err)
	v.old, err = s.Complete(ctx, old.ID, old.Version, runstore.Result{Results: []byte(`{"ok":true}`), Stats: runstore.Stats{PeakHP: new(98.5)}})
	require.NoError(t, err)
	v.apply, err = s.RecordApply(ctx, old.ID, runstore.NewApply{Cylinder: "Front", Kind: runstore.ApplyKindApply,
		Files: []runstore.FileMeta{meta("VE_Applied_Front.csv"), meta("VE_Effective_Front.csv"), meta("VE_Apply_Front.manifest.json")}})
	require.NoError(t, err)
	v.submitted, err = s.Submit(ctx, runstore.NewRun{Source: runstore.SourceAPI, Filename: "queued.csv"}, runstore.NewJob{Input: meta("queued.csv")})
	require.NoError(t, err)
	_, _, err = s.Import(ctx, runstore.ImportRun{Key: "too-early", Run: runstore.NewRun{Source: runstore.SourceImport}, Status: runstore.StatusCompleted})
	require.Error(t, err, "version 4 has no imports")
	v.counts = map[string]int{"runs": 2, "run_status_history": 3 + 1, "run_files": 1 + 3 + 1, "run_applies": 1,
		"run_apply_files": 3, "run_jobs": 1}
	return v
}

func openSQLiteAt(t *testing.T, now func() time.Time) *Store {
	s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "up.db"), Options{Now: now, SkipMigrate: true})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgresAt(t *testing.T, now func() time.Time) *Store {
	s, err := OpenPostgres(context.Background(), runstoretest.PostgresDSN(t), Options{Now: now, SkipMigrate: true})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// TestForeignKeysOffMigrationChecked: a SQLite migration run with foreign
// keys off that leaves a row referring to nothing fails
// foreign_key_check, is rolled back whole (not recorded, nothing
// deleted), and the writer's foreign keys are back on afterwards.
func TestForeignKeysOffMigrationChecked(t *testing.T) {
	ctx := context.Background()
	s := openSQLiteAt(t, nil)
	_, err := s.Migrate(ctx)
	require.NoError(t, err)
	r, err := s.Create(ctx, runstore.NewRun{Source: runstore.SourceUpload})
	require.NoError(t, err)
	_, err = s.AddFile(ctx, r.ID, meta("a.csv"))
	require.NoError(t, err)

	bad := Migration{Version: 99, Name: "0099_orphans.sql", Dialects: map[Dialect]MigrationSQL{
		SQLite:   {File: "0099_orphans.sqlite.sql", SQL: `DELETE FROM runs`, ForeignKeysOff: true},
		Postgres: {File: "0099_orphans.postgres.sql", SQL: `DELETE FROM runs`},
	}}
	did, err := s.applyMigration(ctx, bad)
	require.Error(t, err)
	assert.False(t, did)
	assert.Contains(t, err.Error(), "foreign_key_check: 2 rows violate a foreign key")
	assert.Contains(t, err.Error(), "run_files row")
	v, err := s.SchemaVersion(ctx)
	require.NoError(t, err)
	ms, err := Migrations()
	require.NoError(t, err)
	assert.Equal(t, len(ms), v, "not recorded")
	_, err = s.Get(ctx, r.ID)
	require.NoError(t, err, "rolled back")
	var on int
	require.NoError(t, s.w.Get(&on, `PRAGMA foreign_keys`))
	assert.Equal(t, 1, on)
	require.NoError(t, s.Check(ctx))

	// The same migration with foreign keys on cascades and passes: the
	// check is what refused it above.
	bad.Dialects[SQLite] = MigrationSQL{File: "0099_orphans.sqlite.sql", SQL: `DELETE FROM runs`}
	did, err = s.applyMigration(ctx, bad)
	require.NoError(t, err)
	assert.True(t, did)
	files, err := s.Files(ctx, r.ID)
	assert.ErrorIs(t, err, runstore.ErrNotFound)
	assert.Empty(t, files)
}

func TestParseMigrations(t *testing.T) {
	canon := map[string][]byte{"0001_a.sql": []byte("CREATE TABLE a (x {{PK}});")}
	with := func(extra map[string]string) map[string][]byte {
		m := map[string][]byte{}
		for k, v := range canon {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = []byte(v)
		}
		return m
	}
	ms, err := parseMigrations(with(map[string]string{
		"0002_b.postgres.sql": "ALTER TABLE a ADD COLUMN y INT;",
		"0002_b.sqlite.sql":   "-- sqlstore:foreign-keys-off\nCREATE TABLE a_new (x {{PK}}, y INT);",
	}))
	require.NoError(t, err)
	require.Len(t, ms, 2)
	assert.Equal(t, "0001_a.sql", ms[0].Name)
	assert.Nil(t, ms[0].Dialects)
	assert.Equal(t, "0002_b.sql", ms[1].Name)
	assert.Empty(t, ms[1].SQL)
	pg, err := ms[1].For(Postgres)
	require.NoError(t, err)
	assert.Equal(t, MigrationSQL{File: "0002_b.postgres.sql", SQL: "ALTER TABLE a ADD COLUMN y INT;"}, pg)
	lite, err := ms[1].For(SQLite)
	require.NoError(t, err)
	assert.Equal(t, "0002_b.sqlite.sql", lite.File)
	assert.True(t, lite.ForeignKeysOff)
	assert.Contains(t, lite.SQL, "INTEGER PRIMARY KEY AUTOINCREMENT", "placeholders expanded")
	c, err := ms[0].For(Postgres)
	require.NoError(t, err)
	assert.Equal(t, MigrationSQL{File: "0001_a.sql", SQL: "CREATE TABLE a (x BIGSERIAL PRIMARY KEY);"}, c)

	for name, tc := range map[string]struct {
		files map[string]string
		want  string
	}{
		"one dialect only":        {map[string]string{"0002_b.sqlite.sql": "x"}, "has no postgres file"},
		"canonical and dialect":   {map[string]string{"0002_b.sql": "x", "0002_b.sqlite.sql": "y", "0002_b.postgres.sql": "z"}, "both a canonical file and a file per dialect"},
		"two names, one version":  {map[string]string{"0002_b.sql": "x", "0002_c.sql": "y"}, "version 2 is also"},
		"dialect names differ":    {map[string]string{"0002_b.sqlite.sql": "x", "0002_c.postgres.sql": "y"}, "version 2 is also"},
		"gap":                     {map[string]string{"0003_c.sql": "x"}, "want 2"},
		"no number":               {map[string]string{"x_b.sql": "x"}, "must be a positive number"},
		"not .sql":                {map[string]string{"0002_b.txt": "x"}, "must be a positive number"},
		"unknown dialect":         {map[string]string{"0002_b.mysql.sql": "x"}, "a dot in the name"},
		"unknown directive":       {map[string]string{"0002_b.sql": "-- sqlstore:foreign-keys-of\nx"}, "unknown directive"},
		"fk off outside sqlite":   {map[string]string{"0002_b.postgres.sql": "-- sqlstore:foreign-keys-off\n", "0002_b.sqlite.sql": ""}, "SQLite files (.sqlite.sql) only"},
		"fk off in canonical sql": {map[string]string{"0002_b.sql": "-- sqlstore:foreign-keys-off\n"}, "SQLite files (.sqlite.sql) only"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseMigrations(with(tc.files))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// migrateCrashEnv, set to "failpoint path", turns the test binary into
// TestMigrationCrash's child: it migrates the SQLite database at path and
// exits with status 3 at the failpoint, as a killed process would (no
// rollback, no close).
const migrateCrashEnv = "DYNOAI_MIGRATE_CRASH_CHILD"

// MigrateCrashChild runs the child when migrateCrashEnv is set, and
// reports whether it did. Reaching the end means the failpoint never
// fired: an error.
func MigrateCrashChild() (bool, error) {
	point, path, ok := strings.Cut(os.Getenv(migrateCrashEnv), " ")
	if !ok {
		return false, nil
	}
	s, err := OpenSQLite(context.Background(), path, Options{SkipMigrate: true, Failpoint: func(n string) {
		if n == point {
			os.Exit(3)
		}
	}})
	if err != nil {
		return true, err
	}
	_, err = s.Migrate(context.Background())
	return true, fmt.Errorf("migrated without passing failpoint %s (err %v)", point, err)
}

// TestMigrationCrash: a process killed while migrating a SQLite database
// from 4 to 5 (the rebuild of runs with foreign keys off) leaves it at
// version 4 with every row (killed before COMMIT) or at 5 with every row
// (after), intact, and a reopened store finishes the job.
func TestMigrationCrash(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	ctx := context.Background()
	for _, tc := range []struct {
		point   string
		version int
	}{{FailpointBeforeCommit, 4}, {FailpointAfterCommit, 5}} {
		t.Run(tc.point, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "crash.db")
			s, err := OpenSQLite(ctx, path, Options{SkipMigrate: true})
			require.NoError(t, err)
			_, err = s.migrateTo(ctx, 4)
			require.NoError(t, err)
			v4 := fillVersion4(t, s)
			require.NoError(t, s.Close())

			cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), migrateCrashEnv+"="+tc.point+" "+path)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "%s", out)
			require.Equal(t, 3, ee.ExitCode(), "the child exits at the failpoint: %s", out)

			s, err = OpenSQLite(ctx, path, Options{SkipMigrate: true})
			require.NoError(t, err)
			defer s.Close()
			v, err := s.SchemaVersion(ctx)
			require.NoError(t, err)
			assert.Equal(t, tc.version, v)
			assert.Equal(t, v4.counts, s.countRows(t))
			s.intact(t)

			_, err = s.Migrate(ctx)
			require.NoError(t, err)
			require.NoError(t, s.Check(ctx))
			assert.Equal(t, v4.counts, s.countRows(t))
		})
	}
}

// TestConcurrentUpgrade: stores opened at once on a database at version 4
// (separate connections, as separate processes would be) all succeed, and
// migration 5 runs once.
func TestConcurrentUpgrade(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"SQLite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "race.db") }},
		{"Postgres", func(t *testing.T) string { return runstoretest.PostgresDSN(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.url(t)
			s, err := Open(ctx, url, Options{SkipMigrate: true})
			require.NoError(t, err)
			defer s.Close()
			_, err = s.migrateTo(ctx, 4)
			require.NoError(t, err)
			v4 := fillVersion4(t, s)

			const openers = 4
			var wg sync.WaitGroup
			errs := make([]error, openers)
			start := make(chan struct{})
			for i := range openers {
				wg.Go(func() {
					<-start
					o, err := Open(ctx, url, Options{})
					if err == nil {
						err = o.Close()
					}
					errs[i] = err
				})
			}
			close(start)
			wg.Wait()
			for _, err := range errs {
				require.NoError(t, err)
			}
			var n int
			require.NoError(t, s.r.Get(&n, `SELECT COUNT(*) FROM schema_migrations WHERE version = 5`))
			assert.Equal(t, 1, n)
			assert.Equal(t, v4.counts, s.countRows(t))
			require.NoError(t, s.Check(ctx))
		})
	}
}
