package runstoretest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/dynoai/dynoai/runstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FileOpener returns a fresh, empty file store.
type FileOpener func(t *testing.T) runstore.FileStore

// RunFileStore runs the conformance suite of runstore.FileStore against the
// stores open returns: content addressing, round trips, Stat, List, Delete,
// foreign keys, failed and cancelled writes, concurrent writers of the same
// contents, and Probe.
func RunFileStore(t *testing.T, open FileOpener) {
	tests := []struct {
		name string
		f    func(t *testing.T, fs runstore.FileStore)
	}{
		{"RoundTrip", testBlobRoundTrip},
		{"ContentAddressed", testBlobContentAddressed},
		{"ForeignKeys", testBlobForeignKeys},
		{"FailedPut", testBlobFailedPut},
		{"ConcurrentSameContents", testBlobConcurrent},
		{"Probe", func(t *testing.T, fs runstore.FileStore) { require.NoError(t, fs.Probe(context.Background())) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, open(t)) })
	}
}

func keys(t *testing.T, fs runstore.FileStore) map[string]runstore.BlobInfo {
	t.Helper()
	out := map[string]runstore.BlobInfo{}
	require.NoError(t, fs.List(context.Background(), func(in runstore.BlobInfo) error {
		out[in.Key] = in
		return nil
	}))
	return out
}

func testBlobRoundTrip(t *testing.T, fs runstore.FileStore) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("dyno"), 10000)
	b, err := fs.Put(ctx, bytes.NewReader(data))
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	assert.Equal(t, hex.EncodeToString(sum[:]), b.SHA256)
	assert.Equal(t, b.SHA256, b.Key)
	assert.Equal(t, int64(len(data)), b.Size)
	rc, err := fs.Open(ctx, b.Key)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	assert.Equal(t, data, got)
	st, err := fs.Stat(ctx, b.Key)
	require.NoError(t, err)
	assert.Equal(t, b.Key, st.Key)
	assert.Equal(t, b.Size, st.Size)
	assert.False(t, st.ModTime.IsZero())
	empty, err := fs.Put(ctx, strings.NewReader(""))
	require.NoError(t, err)
	assert.Zero(t, empty.Size)
	listed := keys(t, fs)
	assert.Len(t, listed, 2)
	assert.Equal(t, b.Size, listed[b.Key].Size)

	require.NoError(t, fs.Delete(ctx, b.Key))
	_, err = fs.Open(ctx, b.Key)
	assert.ErrorIs(t, err, runstore.ErrNotFound)
	_, err = fs.Stat(ctx, b.Key)
	assert.ErrorIs(t, err, runstore.ErrNotFound)
	require.NoError(t, fs.Delete(ctx, b.Key), "deleting twice is fine")
	assert.Len(t, keys(t, fs), 1)
	// List stops at the first error of its callback.
	stop := errors.New("stop")
	assert.ErrorIs(t, fs.List(ctx, func(runstore.BlobInfo) error { return stop }), stop)
}

func testBlobContentAddressed(t *testing.T, fs runstore.FileStore) {
	ctx := context.Background()
	a, err := fs.Put(ctx, strings.NewReader("same bytes"))
	require.NoError(t, err)
	b, err := fs.Put(ctx, strings.NewReader("same bytes"))
	require.NoError(t, err)
	assert.Equal(t, a, b, "the same contents get the same key")
	c, err := fs.Put(ctx, strings.NewReader("other bytes"))
	require.NoError(t, err)
	assert.NotEqual(t, a.Key, c.Key)
	assert.Len(t, keys(t, fs), 2)
}

func testBlobForeignKeys(t *testing.T, fs runstore.FileStore) {
	ctx := context.Background()
	for _, key := range []string{"../secret.txt", "../../etc/passwd", "/etc/passwd", "", "ab/../../x",
		strings.Repeat("A", 32), strings.Repeat("a", 31) + "/", strings.Repeat("a", 33), strings.Repeat("a", 63),
		strings.Repeat("a", 65), "..\\..\\x", strings.Repeat("g", 64)} {
		_, err := fs.Open(ctx, key)
		assert.ErrorIs(t, err, runstore.ErrInvalid, "%q", key)
		_, err = fs.Stat(ctx, key)
		assert.ErrorIs(t, err, runstore.ErrInvalid, "%q", key)
		assert.ErrorIs(t, fs.Delete(ctx, key), runstore.ErrInvalid, "%q", key)
	}
	// Keys of both forms the store can have made are accepted.
	for _, key := range []string{strings.Repeat("a", 32), strings.Repeat("b", 64)} {
		_, err := fs.Open(ctx, key)
		assert.ErrorIs(t, err, runstore.ErrNotFound, key)
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("upload interrupted")
	}
	r.n--
	return copy(p, "abcdefgh"), nil
}

func testBlobFailedPut(t *testing.T, fs runstore.FileStore) {
	ctx := context.Background()
	_, err := fs.Put(ctx, &failingReader{n: 3})
	require.ErrorContains(t, err, "upload interrupted")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = fs.Put(cctx, strings.NewReader("data"))
	require.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, keys(t, fs), "a failed Put leaves nothing behind")
}

func testBlobConcurrent(t *testing.T, fs runstore.FileStore) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			b, err := fs.Put(ctx, bytes.NewReader(data))
			if err == nil {
				var rc io.ReadCloser
				if rc, err = fs.Open(ctx, b.Key); err == nil {
					var got []byte
					got, err = io.ReadAll(rc)
					rc.Close()
					if err == nil && !bytes.Equal(got, data) {
						err = errors.New("read different bytes")
					}
				}
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Len(t, keys(t, fs), 1)
}
