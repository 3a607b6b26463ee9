package runstore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/runstoretest"
	"github.com/stretchr/testify/require"
)

func TestMemoryConformance(t *testing.T) {
	runstoretest.Run(t, func(t *testing.T, now func() time.Time) runstore.RunStore {
		return runstore.NewMemory(runstore.Options{Now: now})
	})
}

func openSQLite(t testing.TB, now func() time.Time) *runstore.SQLStore {
	t.Helper()
	s, err := runstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "runs.db"), runstore.Options{Now: now})
	require.NoError(t, err)
	return s
}

func openPostgres(t testing.TB, now func() time.Time) *runstore.SQLStore {
	t.Helper()
	s, err := runstore.OpenPostgres(context.Background(), runstoretest.PostgresDSN(t), runstore.Options{Now: now})
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

func reopenCheck(s *runstore.SQLStore) error {
	path := s.DSN()
	s2, err := runstore.OpenSQLite(context.Background(), path, runstore.Options{})
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
