package sqlstore_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/runstoretest"
	"github.com/dynoai/dynoai/runstore/sqlstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseURL(t *testing.T) {
	cases := []struct {
		in      string
		dialect sqlstore.Dialect
		target  string
		bad     string
	}{
		{"postgres://u:p@127.0.0.1/db", sqlstore.Postgres, "postgres://u:p@127.0.0.1/db", ""},
		{"postgresql://127.0.0.1/db?sslmode=disable", sqlstore.Postgres, "postgresql://127.0.0.1/db?sslmode=disable", ""},
		{"postgres:///dynoai?host=/run/postgresql", sqlstore.Postgres, "postgres:///dynoai?host=/run/postgresql", ""},
		{"sqlite:///./dynoai.db", sqlstore.SQLite, "./dynoai.db", ""},
		{"sqlite:////var/lib/dynoai.db", sqlstore.SQLite, "/var/lib/dynoai.db", ""},
		{"sqlite:runs.db", sqlstore.SQLite, "runs.db", ""},
		{"SQLite:data/runs=old.db", sqlstore.SQLite, "data/runs=old.db", ""},
		{"", "", "", "empty"},
		{"mysql://u:secret@h/db", "", "", `unsupported scheme "mysql"`},
		// Scheme required: no more guessing a SQLite file.
		{"/tmp/runs.db", "", "", "has no scheme"},
		{"./data/runs.db", "", "", "has no scheme"},
		{"host=127.0.0.1 dbname=x password=secret", "", "", "has no scheme"},
		{"postgres//user:secret@host/db", "", "", "has no scheme"},
		{"::::not a url", "", "", "has no scheme"},
		{"postgres:user:secret@host/db", "", "", "is not a postgres://"},
		{"postgres://user:secret@host:99999/db", "", "", "port"},
		{"postgres://user:se#cret@host/db", "", "", "'#'"},
		{"postgres:///db", "", "", "names no host"},
		{"sqlite://host/x.db", "", "", "no host"},
		{"sqlite:", "", "", "names no file"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			d, target, err := sqlstore.ParseURL(tc.in)
			if tc.bad != "" {
				require.ErrorIs(t, err, runstore.ErrInvalid)
				assert.Contains(t, err.Error(), tc.bad)
				assert.NotContains(t, err.Error(), "secret", "the password is never echoed")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.dialect, d)
			assert.Equal(t, tc.target, target)
		})
	}
}

// TestDatabaseURLTypos: DATABASE_URL='postgres//user:secret@host/db' (a
// typo) opened a SQLite file of that name and printed the password, and
// '::::not a url' silently started on a SQLite file in the working
// directory. Both are errors now, naming no password, creating nothing.
func TestDatabaseURLTypos(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, u := range []string{"postgres//user:secret@host/db", "::::not a url"} {
		_, err := sqlstore.Open(context.Background(), u, sqlstore.Options{})
		require.ErrorIs(t, err, runstore.ErrInvalid, u)
		assert.NotContains(t, err.Error(), "secret")
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "no database file was created")
}

func TestRedactDSN(t *testing.T) {
	cases := []struct{ in, want string }{
		{"postgres://postgres:s3cret@db.example:5432/dynoai?sslmode=require", "postgres://postgres:xxxxx@db.example:5432/dynoai?sslmode=require"},
		{"postgres://postgres@127.0.0.1:5432/dynoai", "postgres://postgres@127.0.0.1:5432/dynoai"},
		{"postgres://h/db?user=u&password=s3cret", "postgres://h/db?password=xxxxx&user=u"},
		{"host=h user=u password=s3cret dbname=d", "host=h user=u password=xxxxx dbname=d"},
		{"host=h password='s3 cret' dbname=d", "host=h password=xxxxx dbname=d"},
		{"postgres://u:s3cret@h:notaport/db", "postgres://xxxxx@h:notaport/db"},
		{"/var/lib/dynoai/runs.db", "/var/lib/dynoai/runs.db"},
		{"postgres://u:12#s3cret@h/db", "postgres://xxxxx@h/db"},
		{"host=h password=s3cret&x", "host=h password=xxxxx"},
		{"host=İİ password=s3cret", "host=İİ password=xxxxx"},
		{"postgres//user:s3cret@host/db", "xxxxx@host/db"},
		{"postgres:user:s3cret@host/db", "xxxxx@host/db"},
	}
	for _, tc := range cases {
		got := sqlstore.RedactDSN(tc.in)
		assert.Equal(t, tc.want, got, tc.in)
		assert.NotContains(t, got, "s3")
	}
}

func TestPostgresErrorsHidePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, dsn := range []string{
		"postgres://postgres:hunter2secret@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", // nothing listens on port 1
		"postgres://postgres:hunter2secret@127.0.0.1:notaport/db",
		"host=127.0.0.1 port=1 user=u password=hunter2secret sslmode=disable connect_timeout=2",
	} {
		_, err := sqlstore.OpenPostgres(ctx, dsn, sqlstore.Options{})
		require.Error(t, err, dsn)
		assert.NotContains(t, err.Error(), "hunter2secret")
	}
}

func TestSQLiteOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, p := range []string{"", ":memory:", "file:x.db", "a?b.db"} {
		_, err := sqlstore.OpenSQLite(ctx, p, sqlstore.Options{})
		assert.ErrorIs(t, err, runstore.ErrInvalid, p)
	}
	_, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "x.db"), sqlstore.Options{SQLiteSynchronous: "sometimes"})
	assert.ErrorIs(t, err, runstore.ErrInvalid)
	_, err = sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "no", "such", "dir", "x.db"), sqlstore.Options{})
	assert.Error(t, err)
}

func TestMigrations(t *testing.T) {
	ms, err := sqlstore.Migrations()
	require.NoError(t, err)
	require.NotEmpty(t, ms)
	for i, m := range ms {
		assert.Equal(t, i+1, m.Version)
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	s, err := sqlstore.OpenSQLite(ctx, path, sqlstore.Options{SkipMigrate: true})
	require.NoError(t, err)
	v, err := s.SchemaVersion(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, v)
	require.Error(t, s.Check(ctx), "an unmigrated database fails the check")
	applied, err := s.Migrate(ctx)
	require.NoError(t, err)
	assert.Len(t, applied, len(ms))
	applied, err = s.Migrate(ctx)
	require.NoError(t, err)
	assert.Empty(t, applied, "migrations run once")
	require.NoError(t, s.Check(ctx))
	require.NoError(t, s.Close())

	// Concurrent openers of one fresh file all succeed.
	path = filepath.Join(t.TempDir(), "c.db")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := sqlstore.OpenSQLite(ctx, path, sqlstore.Options{})
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
}

func TestPostgresConcurrentMigrate(t *testing.T) {
	dsn := runstoretest.PostgresDSN(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := sqlstore.OpenPostgres(ctx, dsn, sqlstore.Options{})
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	s, err := sqlstore.OpenPostgres(ctx, dsn, sqlstore.Options{})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Check(ctx))
	info, err := s.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, info.LatestVersion, info.SchemaVersion)
	assert.Equal(t, sqlstore.Postgres, info.Dialect)
}

// Two stores on one SQLite file behave like two processes: both write at
// once and neither sees "database is locked".
func TestSQLiteTwoWriters(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "two.db")
	a, err := sqlstore.OpenSQLite(ctx, path, sqlstore.Options{})
	require.NoError(t, err)
	defer a.Close()
	b, err := sqlstore.OpenSQLite(ctx, path, sqlstore.Options{})
	require.NoError(t, err)
	defer b.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for _, s := range []*sqlstore.Store{a, b} {
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 20; i++ {
					r, err := s.Create(ctx, runstore.NewRun{Source: runstore.SourceAPI})
					if err != nil {
						errs <- err
						continue
					}
					if _, err := s.Update(ctx, r.ID, runstore.Update{Version: r.Version, Status: runstore.StatusProcessing}); err != nil {
						errs <- err
					}
					if _, err := s.List(ctx, runstore.Filter{Limit: 5}); err != nil {
						errs <- err
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	info, err := a.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(120), info.Runs)
	assert.Equal(t, int64(120), info.ByStatus[runstore.StatusProcessing])
}

func TestInfoAndDrop(t *testing.T) {
	ctx := context.Background()
	s := openSQLite(t, nil)
	defer s.Close()
	fs, err := runstore.NewLocalFileStore(t.TempDir(), runstore.LocalFileStoreOptions{})
	require.NoError(t, err)
	r, err := s.Create(ctx, runstore.NewRun{Source: runstore.SourceUpload})
	require.NoError(t, err)
	_, err = runstore.Attach(ctx, s, fs, r.ID, "a.csv", "text/csv", strings.NewReader("rpm\n1000\n"))
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, sqlstore.Info{Dialect: sqlstore.SQLite, DSN: s.DSN(), SchemaVersion: info.LatestVersion, LatestVersion: info.LatestVersion,
		Runs: 1, ByStatus: map[runstore.Status]int64{runstore.StatusQueued: 1}, Files: 1, FileBytes: 9}, info)
	require.NoError(t, s.Drop(ctx))
	v, err := s.SchemaVersion(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, v)
	_, err = s.Get(ctx, r.ID)
	assert.Error(t, err)
	// Every table went, so the database migrates afresh.
	applied, err := s.Migrate(ctx)
	require.NoError(t, err)
	assert.Len(t, applied, info.LatestVersion)
	require.NoError(t, s.Check(ctx))
}

func TestSQLiteCheckFindsCorruption(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "corrupt.db")
	s, err := sqlstore.OpenSQLite(ctx, path, sqlstore.Options{})
	require.NoError(t, err)
	for i := 0; i < 300; i++ {
		_, err := s.Create(ctx, runstore.NewRun{Source: runstore.SourceUpload, Vehicle: strings.Repeat(fmt.Sprint(i), 50)})
		require.NoError(t, err)
	}
	require.NoError(t, s.Close()) // checkpoints the WAL into the file
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Greater(t, len(data), 8*4096)
	// Scribble over an index page in the middle of the file.
	for i := 5 * 4096; i < 6*4096; i += 7 {
		data[i] ^= 0x5a
	}
	require.NoError(t, os.WriteFile(path, data, 0o600))
	s, err = sqlstore.OpenSQLite(ctx, path, sqlstore.Options{SkipMigrate: true})
	if err == nil {
		err = s.Check(ctx)
		s.Close()
	}
	assert.Error(t, err, "a scribbled database fails Check (or Open)")
}

// The store logs its DSN only with the password redacted.
func TestPostgresLogsHidePassword(t *testing.T) {
	dsn := runstoretest.PostgresDSN(t)
	u, err := url.Parse(dsn)
	require.NoError(t, err, "this test needs a URL-form DSN")
	pw, ok := u.User.Password()
	if !ok {
		// The CI server trusts loopback, so any password is accepted.
		pw = "hunter2-never-logged"
		u.User = url.UserPassword(u.User.Username(), pw)
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := sqlstore.OpenPostgres(context.Background(), u.String(), sqlstore.Options{Logger: log})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Drop(context.Background()))
	assert.Contains(t, buf.String(), "applied migration")
	assert.Contains(t, buf.String(), "xxxxx")
	assert.NotContains(t, buf.String(), pw)
	assert.NotContains(t, s.DSN(), pw)
}
func openSQLite(t testing.TB, now func() time.Time) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "runs.db"), sqlstore.Options{Now: now})
	require.NoError(t, err)
	return s
}

func openPostgres(t testing.TB, now func() time.Time) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.OpenPostgres(context.Background(), runstoretest.PostgresDSN(t), sqlstore.Options{Now: now})
	require.NoError(t, err)
	return s
}

func TestSQLiteConformance(t *testing.T) {
	runstoretest.Run(t, func(t *testing.T, now func() time.Time) runstore.RunStore {
		s := openSQLite(t, now)
		t.Cleanup(func() {
			// Every test leaves a database that passes the integrity check.
			if err := reopenCheck(s); err != nil {
				t.Error(err)
			}
		})
		return s
	})
}

func reopenCheck(s *sqlstore.Store) error {
	path := s.DSN()
	s2, err := sqlstore.OpenSQLite(context.Background(), path, sqlstore.Options{})
	if err != nil {
		return err
	}
	defer s2.Close()
	return s2.Check(context.Background())
}

func TestPostgresConformance(t *testing.T) {
	runstoretest.Run(t, func(t *testing.T, now func() time.Time) runstore.RunStore {
		return openPostgres(t, now)
	})
}

// TestSQLiteDatabaseFileGone: a database file deleted or replaced under a
// running store is noticed by Probe and by every write, which fail with
// runstore.ErrUnavailable instead of writing into a file nobody will open
// again.
func TestSQLiteDatabaseFileGone(t *testing.T) {
	ctx := context.Background()
	for _, how := range []string{"deleted", "replaced"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "runs.db")
			s, err := sqlstore.OpenSQLite(ctx, path, sqlstore.Options{})
			require.NoError(t, err)
			defer s.Close()
			r, err := s.Create(ctx, runstore.NewRun{Source: runstore.SourceUpload})
			require.NoError(t, err)
			require.NoError(t, s.Probe(ctx))
			switch how {
			case "deleted":
				for _, suffix := range []string{"", "-wal", "-shm"} {
					require.NoError(t, os.Remove(path+suffix))
				}
			case "replaced":
				other, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "other.db"), sqlstore.Options{})
				require.NoError(t, err)
				require.NoError(t, other.Close())
				require.NoError(t, os.Rename(filepath.Join(dir, "other.db"), path))
			}
			assert.ErrorIs(t, s.Probe(ctx), runstore.ErrUnavailable)
			_, err = s.Create(ctx, runstore.NewRun{Source: runstore.SourceUpload})
			assert.ErrorIs(t, err, runstore.ErrUnavailable)
			_, err = s.Update(ctx, r.ID, runstore.Update{Version: r.Version, Status: runstore.StatusProcessing})
			assert.ErrorIs(t, err, runstore.ErrUnavailable)
			_, _, err = s.Import(ctx, runstore.ImportRun{Key: "k", Run: runstore.NewRun{Source: runstore.SourceImport}, Status: runstore.StatusCompleted})
			assert.ErrorIs(t, err, runstore.ErrUnavailable)
		})
	}
}

// TestSQLiteProbeLockedDatabase: a database another process keeps locked
// (as good as read-only for this one) fails the probe within the busy
// timeout, with runstore.ErrUnavailable.
func TestSQLiteProbeLockedDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "runs.db")
	s, err := sqlstore.OpenSQLite(ctx, path, sqlstore.Options{BusyTimeout: 200 * time.Millisecond})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Probe(ctx))
	locker, err := sql.Open("sqlite3", path)
	require.NoError(t, err)
	defer locker.Close()
	conn, err := locker.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "BEGIN EXCLUSIVE")
	require.NoError(t, err)
	probed := make(chan error, 1)
	go func() { probed <- s.Probe(ctx) }()
	select {
	case err = <-probed:
	case <-time.After(time.Minute):
		t.Fatal("Probe on a locked database did not return: the busy timeout is not applied")
	}
	assert.ErrorIs(t, err, runstore.ErrUnavailable)
	// A write meanwhile says the store is unavailable (503 in httpapi),
	// not that something went wrong (500).
	_, err = s.Create(ctx, runstore.NewRun{Source: runstore.SourceAPI})
	assert.ErrorIs(t, err, runstore.ErrUnavailable)
	_, _, err = s.Import(ctx, runstore.ImportRun{Key: "k", Run: runstore.NewRun{Source: runstore.SourceImport}, Status: runstore.StatusCompleted})
	assert.ErrorIs(t, err, runstore.ErrUnavailable)
	_, err = conn.ExecContext(ctx, "ROLLBACK")
	require.NoError(t, err)
	require.NoError(t, s.Probe(ctx))
}

// TestTransactionFailpoints: a write passes its failpoints in order.
func TestTransactionFailpoints(t *testing.T) {
	var steps []string
	s, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "runs.db"),
		sqlstore.Options{Failpoint: func(n string) { steps = append(steps, n) }})
	require.NoError(t, err)
	defer s.Close()
	steps = nil
	_, err = s.Create(context.Background(), runstore.NewRun{Source: runstore.SourceAPI})
	require.NoError(t, err)
	assert.Equal(t, []string{sqlstore.FailpointBeforeCommit, sqlstore.FailpointAfterCommit}, steps)
}
