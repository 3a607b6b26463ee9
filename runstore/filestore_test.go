package runstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/runstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMemFileStoreConformance(t *testing.T) {
	runstoretest.RunFileStore(t, func(t *testing.T) runstoretest.FileHarness {
		fs := runstore.NewMemFileStore()
		return runstoretest.FileHarness{
			Store: fs,
			Alter: func(key string, data []byte) error {
				if !fs.Replace(key, data) {
					return fmt.Errorf("no contents under %s", key)
				}
				return nil
			},
			ModTimeStep: 10 * time.Millisecond,
		}
	})
}

func TestLocalFileStoreConformance(t *testing.T) {
	runstoretest.RunFileStore(t, func(t *testing.T) runstoretest.FileHarness {
		dir := t.TempDir()
		fs, err := runstore.NewLocalFileStore(dir, runstore.LocalFileStoreOptions{})
		require.NoError(t, err)
		t.Cleanup(func() { fs.Close() })
		return runstoretest.FileHarness{
			Store: fs,
			Alter: func(key string, data []byte) error {
				return os.WriteFile(filepath.Join(dir, key[:2], key), data, 0o600)
			},
			Crash: func(t *testing.T, data []byte) {
				crashing, err := runstore.NewLocalFileStore(dir, runstore.LocalFileStoreOptions{
					Failpoint: runstoretest.CrashAt(runstore.FailpointBlobSynced)})
				require.NoError(t, err)
				defer crashing.Close()
				runstoretest.SurviveCrash(t, func() { _, _ = crashing.Put(context.Background(), bytes.NewReader(data)) })
			},
			ModTimeStep: 10 * time.Millisecond,
		}
	})
}

// TestLocalFileStoreLayout: contents live inside the directory under their
// key, temporary files of a failed Put do not survive it, and keys of the
// random form stored before content addressing are still read.
func TestLocalFileStoreLayout(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fs, err := runstore.NewLocalFileStore(dir, runstore.LocalFileStoreOptions{})
	require.NoError(t, err)
	b, err := fs.Put(ctx, strings.NewReader("dyno"))
	require.NoError(t, err)
	matches, err := filepath.Glob(filepath.Join(dir, b.Key[:2], b.Key))
	require.NoError(t, err)
	assert.Len(t, matches, 1)
	_, err = fs.Put(ctx, &failingReader{n: 2})
	require.Error(t, err)
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	assert.Equal(t, matches, files)
	legacy := strings.Repeat("3c", 16)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "3c"), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "3c", legacy), []byte("old"), 0o600))
	rc, err := fs.Open(ctx, legacy)
	require.NoError(t, err)
	got, _ := io.ReadAll(rc)
	rc.Close()
	assert.Equal(t, "old", string(got))
}

// TestLocalFileStoreFailpoints: Put passes its steps in order: written,
// synced, renamed, directory synced.
func TestLocalFileStoreFailpoints(t *testing.T) {
	var steps []string
	fs, err := runstore.NewLocalFileStore(t.TempDir(), runstore.LocalFileStoreOptions{
		Failpoint: func(name string) { steps = append(steps, name) }})
	require.NoError(t, err)
	_, err = fs.Put(context.Background(), strings.NewReader("x"))
	require.NoError(t, err)
	assert.Equal(t, []string{runstore.FailpointBlobWritten, runstore.FailpointBlobSynced,
		runstore.FailpointBlobRenamed, runstore.FailpointBlobDirSynced}, steps)
}

// TestLocalFileStoreDirectoryGone: a store whose directory was deleted (or
// replaced) while running refuses to store or probe with ErrUnavailable and
// does not quietly recreate an empty directory.
func TestLocalFileStoreDirectoryGone(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "files")
	fs, err := runstore.NewLocalFileStore(dir, runstore.LocalFileStoreOptions{})
	require.NoError(t, err)
	require.NoError(t, fs.Probe(ctx))
	require.NoError(t, os.RemoveAll(dir))
	_, err = fs.Put(ctx, strings.NewReader("x"))
	assert.ErrorIs(t, err, runstore.ErrUnavailable)
	assert.ErrorIs(t, fs.Probe(ctx), runstore.ErrUnavailable)
	_, err = os.Stat(dir)
	assert.ErrorIs(t, err, os.ErrNotExist, "the directory was not recreated")
	require.NoError(t, os.MkdirAll(dir, 0o750)) // replaced by another directory
	assert.ErrorIs(t, fs.Probe(ctx), runstore.ErrUnavailable)
	_, err = fs.Put(ctx, strings.NewReader("x"))
	assert.ErrorIs(t, err, runstore.ErrUnavailable)
}

func TestOpenFileVerifiesChecksum(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fs, err := runstore.NewLocalFileStore(dir, runstore.LocalFileStoreOptions{})
	require.NoError(t, err)
	s := runstore.NewMemory(runstore.Options{})
	r, err := s.Create(ctx, runstore.NewRun{Source: runstore.SourceUpload})
	require.NoError(t, err)
	content := "RPM,MAP,AFR\n" + strings.Repeat("3000,80,13.1\n", 1000)
	f, err := runstore.Attach(ctx, s, fs, r.ID, "log.csv", "text/csv", strings.NewReader(content))
	require.NoError(t, err)
	path := filepath.Join(dir, f.StorageKey[:2], f.StorageKey)

	cases := []struct {
		name   string
		modify func([]byte) []byte
	}{
		{"flipped byte", func(b []byte) []byte { b[100] ^= 1; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
		{"extended", func(b []byte) []byte { return append(b, '\n') }},
		{"emptied", func(b []byte) []byte { return nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(path, tc.modify([]byte(content)), 0o600))
			_, _, err := runstore.ReadFile(ctx, s, fs, r.ID, f.ID)
			assert.ErrorIs(t, err, runstore.ErrChecksum)
		})
	}
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	_, got, err := runstore.ReadFile(ctx, s, fs, r.ID, f.ID)
	require.NoError(t, err)
	assert.Equal(t, content, string(got))
	require.NoError(t, os.Remove(path))
	_, _, err = runstore.ReadFile(ctx, s, fs, r.ID, f.ID)
	assert.ErrorIs(t, err, runstore.ErrNotFound)
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("upload interrupted")
	}
	r.n--
	return copy(p, "abcdefgh"), nil
}
