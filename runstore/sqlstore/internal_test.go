package sqlstore

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynoai/dynoai/runstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func FuzzRedactDSN(f *testing.F) {
	for _, s := range []string{
		"postgres://u:secretpw@h:5432/db?sslmode=disable",
		"host=h user=u password=secretpw dbname=d",
		"host=h password='secret pw' dbname=d",
		"postgres://u:secretpw@h:bad/db",
		"postgres://h/db?password=secretpw",
		"/var/lib/x.db",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		red := RedactDSN(dsn)
		pw := dsnPassword(dsn)
		if len(pw) < 6 || strings.Count(dsn, pw) != 1 || strings.Contains("xxxxx", pw) {
			return
		}
		if strings.Contains(red, pw) {
			t.Fatalf("RedactDSN(%q) = %q still holds the password %q", dsn, red, pw)
		}
		if u, err := url.Parse(dsn); err == nil && u.Query().Get("password") != "" {
			if strings.Contains(red, u.Query().Get("password")) && len(u.Query().Get("password")) >= 6 {
				t.Fatalf("RedactDSN(%q) = %q still holds the query password", dsn, red)
			}
		}
	})
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"postgres://u:topsecret@h/db", "sqlite:///x.db", "mysql://u:topsecret@h/db", "host=h password=topsecret", "x.db",
		"postgres//user:topsecret@host/db", "::::not a url", "postgres:u:topsecret@h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, target, err := ParseURL(s)
		if err != nil {
			if pw := dsnPassword(s); len(pw) >= 6 && strings.Count(s, pw) == 1 && strings.Contains(err.Error(), pw) {
				t.Fatalf("ParseURL(%q) error %q shows the password", s, err)
			}
			// Whatever sits between a ':' and the last '@' may be a
			// password, however mangled the rest.
			if at := strings.LastIndex(s, "@"); at > 0 {
				if c := strings.LastIndex(s[:at], ":"); c >= 0 {
					pw := s[c+1 : at]
					if len(pw) >= 6 && !strings.HasPrefix(pw, "//") && strings.Count(s, pw) == 1 && !strings.ContainsAny(pw, " ") && strings.Contains(err.Error(), pw) {
						t.Fatalf("ParseURL(%q) error %q shows %q", s, err, pw)
					}
				}
			}
			return
		}
		if d != SQLite && d != Postgres || target == "" && d == Postgres {
			t.Fatalf("ParseURL(%q) = %q, %q", s, d, target)
		}
	})
}

// TestMigrationKeepsRuns: a database made by migration 1 with runs and
// files in it is migrated to the latest schema without losing anything;
// its runs belong to the default tenant ("") and have no apply records, and
// an upload a server accepted but never finished gets a job (migration 3),
// so the queue analyzes it instead of the server failing it.
func TestMigrationKeepsRuns(t *testing.T) {
	ctx := context.Background()
	s, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "old.db"), Options{SkipMigrate: true})
	require.NoError(t, err)
	defer s.Close()
	ms, err := Migrations()
	require.NoError(t, err)
	_, err = s.w.ExecContext(ctx, createMigrationsTable)
	require.NoError(t, err)
	_, err = s.w.ExecContext(ctx, s.dialect.expand(ms[0].SQL))
	require.NoError(t, err)
	_, err = s.w.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_us) VALUES (1, ?, 0)`, ms[0].Name)
	require.NoError(t, err)
	id := strings.Repeat("0a", 16)
	_, err = s.w.ExecContext(ctx, `INSERT INTO runs (id, version, status, source, filename, created_us, updated_us)
		VALUES (?, 3, 'completed', 'upload', 'old.csv', 1000, 2000)`, id)
	require.NoError(t, err)
	_, err = s.w.ExecContext(ctx, `INSERT INTO run_files (run_id, name, content_type, size_bytes, sha256, storage_key, created_us)
		VALUES (?, 'VE_Applied_Front.csv', 'text/csv', 3, ?, ?, 1500)`, id, strings.Repeat("ab", 32), strings.Repeat("cd", 16))
	require.NoError(t, err)

	pending := strings.Repeat("0b", 16)
	_, err = s.w.ExecContext(ctx, `INSERT INTO runs (id, version, status, source, filename, created_us, updated_us)
		VALUES (?, 2, 'processing', 'upload', 'pending.csv', 3000, 4000)`, pending)
	require.NoError(t, err)
	_, err = s.w.ExecContext(ctx, `INSERT INTO run_files (run_id, name, content_type, size_bytes, sha256, storage_key, created_us)
		VALUES (?, 'pending.csv', 'text/csv', 3, ?, ?, 3000)`, pending, strings.Repeat("ef", 32), strings.Repeat("ef", 32))
	require.NoError(t, err)

	applied, err := s.Migrate(ctx)
	require.NoError(t, err)
	var want []int // every migration after the first
	for v := 2; v <= len(ms); v++ {
		want = append(want, v)
	}
	assert.Equal(t, want, applied)
	_, err = s.Job(ctx, id)
	require.ErrorIs(t, err, runstore.ErrNotFound, "a completed run gets no job")
	j, err := s.Job(ctx, pending)
	require.NoError(t, err)
	assert.Equal(t, runstore.JobAvailable, j.State)
	pf, err := s.Files(ctx, pending)
	require.NoError(t, err)
	assert.Equal(t, pf[0].ID, j.InputFile)
	l, err := s.Claim(ctx, runstore.Claim{Worker: "w", Lease: time.Minute})
	require.NoError(t, err)
	assert.Equal(t, pending, l.Run.ID)
	r, err := s.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "", r.Tenant)
	assert.Equal(t, "old.csv", r.Filename)
	assert.Equal(t, int64(3), r.Version)
	files, err := s.Files(ctx, id)
	require.NoError(t, err)
	require.Len(t, files, 1)
	assert.Equal(t, strings.Repeat("cd", 16), files[0].StorageKey)
	aps, err := s.Applies(ctx, id)
	require.NoError(t, err)
	assert.Empty(t, aps)
	p, err := s.List(ctx, runstore.Filter{Tenants: []string{""}})
	require.NoError(t, err)
	assert.Len(t, p.Runs, 2)
	require.NoError(t, s.Check(ctx))
}
