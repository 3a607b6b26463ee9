package runstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynoai/dynoai/runstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLocalFileStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fs, err := runstore.NewLocalFileStore(dir)
	require.NoError(t, err)
	data := bytes.Repeat([]byte("dyno"), 10000)
	b, err := fs.Put(ctx, bytes.NewReader(data))
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	assert.Equal(t, hex.EncodeToString(sum[:]), b.SHA256)
	assert.Equal(t, int64(len(data)), b.Size)
	assert.Len(t, b.Key, 32)
	rc, err := fs.Open(ctx, b.Key)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	assert.Equal(t, data, got)
	// The contents live inside the directory under the key.
	matches, err := filepath.Glob(filepath.Join(dir, "*", b.Key))
	require.NoError(t, err)
	assert.Len(t, matches, 1)

	require.NoError(t, fs.Delete(ctx, b.Key))
	_, err = fs.Open(ctx, b.Key)
	assert.ErrorIs(t, err, runstore.ErrNotFound)
	require.NoError(t, fs.Delete(ctx, b.Key), "deleting twice is fine")
}

func TestLocalFileStoreRejectsForeignKeys(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	secret := filepath.Join(filepath.Dir(dir), "secret.txt")
	require.NoError(t, os.WriteFile(secret, []byte("x"), 0o600))
	fs, err := runstore.NewLocalFileStore(filepath.Join(dir, "files"))
	require.NoError(t, err)
	for _, key := range []string{"../secret.txt", "../../etc/passwd", "/etc/passwd", "", "ab/../../x",
		strings.Repeat("A", 32), strings.Repeat("a", 31) + "/", strings.Repeat("a", 33), "..\\..\\x"} {
		_, err := fs.Open(ctx, key)
		assert.ErrorIs(t, err, runstore.ErrInvalid, "%q", key)
		assert.ErrorIs(t, fs.Delete(ctx, key), runstore.ErrInvalid, "%q", key)
	}
	_, err = os.Stat(secret)
	assert.NoError(t, err, "nothing outside the store was touched")
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("upload interrupted")
	}
	r.n--
	return copy(p, "abcdefgh"), nil
}

func TestLocalFileStorePutFailureLeavesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fs, err := runstore.NewLocalFileStore(dir)
	require.NoError(t, err)
	_, err = fs.Put(ctx, &failingReader{n: 3})
	require.ErrorContains(t, err, "upload interrupted")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = fs.Put(cctx, strings.NewReader("data"))
	require.ErrorIs(t, err, context.Canceled)
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	assert.Empty(t, files)
}

func TestOpenFileVerifiesChecksum(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fs, err := runstore.NewLocalFileStore(dir)
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
