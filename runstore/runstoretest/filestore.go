package runstoretest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/url"
	"strings"
	"sync"
	"testing"

	"time"

	"github.com/dynoai/dynoai/internal/services"

	"github.com/dynoai/dynoai/runstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// S3Env is the environment variable holding the URL of an S3-compatible
// bucket for tests, in the form blobstore.Open takes, e.g.
// s3://bucket?endpoint=http://127.0.0.1:57070&region=us-east-1&use_path_style=true
// (credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
const S3Env = "DYNOAI_TEST_S3_URL"

// S3URL returns $DYNOAI_TEST_S3_URL with a prefix of its own (prefix=t-<random>/),
// so that each test sees an empty store; the caller removes what it
// stored. Without the variable the test is skipped, except under
// DYNOAI_SERVICES_REQUIRED=1 (set by .ci/run) where it fails.
func S3URL(t testing.TB) string {
	t.Helper()
	base := services.Need(t, S3Env, "S3 tests; run .ci/s3.sh as root and source /tmp/dynoai-ci-s3.env")
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "s3" {
		t.Fatalf("%s is not an s3:// URL", S3Env)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	q := u.Query()
	q.Set("prefix", q.Get("prefix")+"t-"+hex.EncodeToString(b[:])+"/")
	u.RawQuery = q.Encode()
	return u.String()
}

// FileHarness is a file store under test, with what the suite may do to it
// behind its back.
type FileHarness struct {
	// Store is a fresh, empty store.
	Store runstore.FileStore
	// Alter replaces the bytes stored under key with data without going
	// through the store (in its directory or bucket), as a disk or an
	// operator might, so that the suite can prove runstore.OpenFile
	// detects it. Nil skips that test.
	Alter func(key string, data []byte) error
	// Crash leaves data in the store the way a Put killed after writing its
	// temporary object leaves it: never renamed or copied to its key.
	// Typically it runs Put on a second store over the same storage with a
	// failpoint that panics at that step. Nil skips the crashed-write
	// tests; a store whose writes leave temporary objects should have it
	// and be a runstore.TempSweeper.
	Crash func(t *testing.T, data []byte)
	// ModTimeStep is how finely the store stamps modification times; 0
	// means a second (an S3 server's Last-Modified). The suite waits this
	// long to see a Put refresh an object's time.
	ModTimeStep time.Duration
}

// FileOpener returns a fresh, empty file store and its harness.
type FileOpener func(t *testing.T) FileHarness

// RunFileStore runs the conformance suite of runstore.FileStore against the
// stores open returns: content addressing, round trips, Stat, List, Delete,
// foreign keys, large contents, failed and cancelled writes, concurrent
// writers of the same contents, a Put refreshing the modification time of
// contents already stored, Probe, checksum mismatches detected by
// runstore.OpenFile, and sweeping (unreferenced contents and the
// temporary objects of crashed writes) with a fake clock.
func RunFileStore(t *testing.T, open FileOpener) {
	tests := []struct {
		name string
		f    func(t *testing.T, h FileHarness)
	}{
		{"RoundTrip", testBlobRoundTrip},
		{"ContentAddressed", testBlobContentAddressed},
		{"ForeignKeys", testBlobForeignKeys},
		{"Large", testBlobLarge},
		{"FailedPut", testBlobFailedPut},
		{"ConcurrentSameContents", testBlobConcurrent},
		{"PutRefreshesModTime", testBlobRefresh},
		{"Probe", func(t *testing.T, h FileHarness) { require.NoError(t, h.Store.Probe(context.Background())) }},
		{"ChecksumMismatch", testBlobChecksum},
		{"Sweep", testBlobSweep},
		{"CrashedWrite", testBlobCrashedWrite},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, open(t)) })
	}
}

// crash is the panic value of a CrashAt failpoint.
type crash struct{ step string }

// CrashAt returns a failpoint that stops a write at step, as if the
// process were killed there, by panicking; run the write with
// SurviveCrash. Deferred clean-ups of the write still run, so this stands
// in for a kill only where the write defers nothing that undoes the step
// (true of LocalFileStore and blobstore.Store); crash tests that kill a
// process prove the rest.
func CrashAt(step string) runstore.Failpoint {
	return func(name string) {
		if name == step {
			panic(crash{step})
		}
	}
}

// SurviveCrash runs f, which a CrashAt failpoint must stop; the test fails
// if f returns normally.
func SurviveCrash(t *testing.T, f func()) {
	t.Helper()
	stopped := func() (stopped bool) {
		defer func() {
			if v := recover(); v != nil {
				if _, ok := v.(crash); !ok {
					panic(v)
				}
				stopped = true
			}
		}()
		f()
		return false
	}()
	if !stopped {
		t.Fatal("the write was not stopped at its failpoint")
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

func sha(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func readAll(t *testing.T, fs runstore.FileStore, key string) []byte {
	t.Helper()
	rc, err := fs.Open(context.Background(), key)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	return got
}

func testBlobRoundTrip(t *testing.T, h FileHarness) {
	ctx, fs := context.Background(), h.Store
	data := bytes.Repeat([]byte("dyno"), 10000)
	b, err := fs.Put(ctx, bytes.NewReader(data))
	require.NoError(t, err)
	assert.Equal(t, sha(data), b.SHA256)
	assert.Equal(t, b.SHA256, b.Key)
	assert.Equal(t, int64(len(data)), b.Size)
	assert.Equal(t, data, readAll(t, fs, b.Key))
	st, err := fs.Stat(ctx, b.Key)
	require.NoError(t, err)
	assert.Equal(t, b.Key, st.Key)
	assert.Equal(t, b.Size, st.Size)
	assert.False(t, st.ModTime.IsZero())
	assert.WithinDuration(t, time.Now(), st.ModTime, 5*time.Minute, "the modification time is the time of Put")
	empty, err := fs.Put(ctx, strings.NewReader(""))
	require.NoError(t, err)
	assert.Zero(t, empty.Size)
	assert.Empty(t, readAll(t, fs, empty.Key))
	listed := keys(t, fs)
	assert.Len(t, listed, 2)
	assert.Equal(t, b.Size, listed[b.Key].Size)
	assert.Equal(t, int64(0), listed[empty.Key].Size)
	assert.WithinDuration(t, st.ModTime, listed[b.Key].ModTime, time.Second)

	require.NoError(t, fs.Delete(ctx, b.Key))
	_, err = fs.Open(ctx, b.Key)
	assert.ErrorIs(t, err, runstore.ErrNotFound)
	_, err = fs.Stat(ctx, b.Key)
	assert.ErrorIs(t, err, runstore.ErrNotFound)
	require.NoError(t, fs.Delete(ctx, b.Key), "deleting twice is fine")
	require.NoError(t, fs.Delete(ctx, strings.Repeat("e", 64)), "deleting a key never stored is fine")
	assert.Len(t, keys(t, fs), 1)
	// List stops at the first error of its callback.
	stop := errors.New("stop")
	assert.ErrorIs(t, fs.List(ctx, func(runstore.BlobInfo) error { return stop }), stop)
}

func testBlobContentAddressed(t *testing.T, h FileHarness) {
	ctx, fs := context.Background(), h.Store
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

func testBlobForeignKeys(t *testing.T, h FileHarness) {
	ctx, fs := context.Background(), h.Store
	for _, key := range []string{"../secret.txt", "../../etc/passwd", "/etc/passwd", "", "ab/../../x",
		strings.Repeat("A", 32), strings.Repeat("a", 31) + "/", strings.Repeat("a", 33), strings.Repeat("a", 63),
		strings.Repeat("a", 65), "..\\..\\x", strings.Repeat("g", 64), "tmp/" + strings.Repeat("a", 32),
		"aa/" + strings.Repeat("a", 64)} {
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
		_, err = fs.Stat(ctx, key)
		assert.ErrorIs(t, err, runstore.ErrNotFound, key)
	}
}

// testBlobLarge stores contents larger than an S3 upload part (8 MiB), so
// that multipart uploads are covered too.
func testBlobLarge(t *testing.T, h FileHarness) {
	ctx, fs := context.Background(), h.Store
	data := make([]byte, 9<<20+123)
	_, _ = rand.Read(data)
	// A reader without WriterTo, so the store sees a plain stream.
	b, err := fs.Put(ctx, io.LimitReader(bytes.NewReader(data), int64(len(data))))
	require.NoError(t, err)
	assert.Equal(t, sha(data), b.Key)
	assert.Equal(t, int64(len(data)), b.Size)
	assert.True(t, bytes.Equal(data, readAll(t, fs, b.Key)), "large contents read back unchanged")
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("upload interrupted")
	}
	r.n--
	return copy(p, "abcdefgh"), nil
}

// noTemp asserts the store holds no temporary object, however young.
func noTemp(t *testing.T, fs runstore.FileStore) {
	t.Helper()
	if ts, ok := fs.(runstore.TempSweeper); ok {
		st, err := ts.SweepTemp(context.Background(), time.Now().Add(24*time.Hour))
		require.NoError(t, err)
		assert.Zero(t, st.Removed, "a temporary object was left behind")
	}
}

func testBlobFailedPut(t *testing.T, h FileHarness) {
	ctx, fs := context.Background(), h.Store
	_, err := fs.Put(ctx, &failingReader{n: 3})
	require.ErrorContains(t, err, "upload interrupted")
	assert.NotErrorIs(t, err, runstore.ErrUnavailable, "the reader's failure is not the store's")
	// A reader failing after more than an S3 part.
	big := io.MultiReader(io.LimitReader(rand.Reader, 9<<20), &failingReader{n: 1})
	_, err = fs.Put(ctx, big)
	require.ErrorContains(t, err, "upload interrupted")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = fs.Put(cctx, strings.NewReader("data"))
	require.ErrorIs(t, err, context.Canceled)
	// Cancelled while streaming.
	cctx, cancel = context.WithCancel(ctx)
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte("partial contents"))
		cancel()
		_, _ = pw.Write([]byte("more"))
		pw.Close()
	}()
	_, err = fs.Put(cctx, pr)
	pr.Close() // releases the writer
	require.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, keys(t, fs), "a failed Put leaves nothing behind")
	for _, data := range []string{"partial contents", "partial contentsmore", "abcdefghabcdefghabcdefgh"} {
		_, err := fs.Stat(ctx, sha([]byte(data)))
		assert.ErrorIs(t, err, runstore.ErrNotFound, "no contents under the key of what was read")
	}
	noTemp(t, fs)
}

func testBlobConcurrent(t *testing.T, h FileHarness) {
	ctx, fs := context.Background(), h.Store
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
	noTemp(t, fs)
}

// testBlobRefresh: storing contents already stored refreshes their
// modification time, which the sweeping rule relies on (see
// runstore.MinUnreferencedAge).
func testBlobRefresh(t *testing.T, h FileHarness) {
	ctx, fs := context.Background(), h.Store
	step := h.ModTimeStep
	if step == 0 {
		step = time.Second
	}
	b, err := fs.Put(ctx, strings.NewReader("stored twice"))
	require.NoError(t, err)
	first, err := fs.Stat(ctx, b.Key)
	require.NoError(t, err)
	time.Sleep(step + step/10)
	_, err = fs.Put(ctx, strings.NewReader("stored twice"))
	require.NoError(t, err)
	second, err := fs.Stat(ctx, b.Key)
	require.NoError(t, err)
	assert.True(t, second.ModTime.After(first.ModTime), "Put refreshes the time: %v then %v", first.ModTime, second.ModTime)
}

func testBlobChecksum(t *testing.T, h FileHarness) {
	if h.Alter == nil {
		t.Skip("the harness cannot alter stored bytes behind the store's back")
	}
	ctx, fs := context.Background(), h.Store
	rs := runstore.NewMemory(runstore.Options{})
	r, err := rs.Create(ctx, runstore.NewRun{Source: runstore.SourceUpload})
	require.NoError(t, err)
	content := []byte("RPM,MAP,AFR\n" + strings.Repeat("3000,80,13.1\n", 1000))
	f, err := runstore.Attach(ctx, rs, fs, r.ID, "log.csv", "text/csv", bytes.NewReader(content))
	require.NoError(t, err)
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
			require.NoError(t, h.Alter(f.StorageKey, tc.modify(bytes.Clone(content))))
			_, _, err := runstore.ReadFile(ctx, rs, fs, r.ID, f.ID)
			assert.ErrorIs(t, err, runstore.ErrChecksum)
		})
	}
	require.NoError(t, h.Alter(f.StorageKey, content))
	_, got, err := runstore.ReadFile(ctx, rs, fs, r.ID, f.ID)
	require.NoError(t, err)
	assert.Equal(t, content, got)
	require.NoError(t, fs.Delete(ctx, f.StorageKey))
	_, _, err = runstore.ReadFile(ctx, rs, fs, r.ID, f.ID)
	assert.ErrorIs(t, err, runstore.ErrNotFound)
}

// testBlobSweep: SweepFiles removes contents no file refers to once they
// are runstore.MinUnreferencedAge old on the sweep's clock, and only them.
func testBlobSweep(t *testing.T, h FileHarness) {
	ctx, fs := context.Background(), h.Store
	clock := NewClock(time.Now())
	rs := runstore.NewMemory(runstore.Options{Now: clock.Now})
	r, err := rs.Create(ctx, runstore.NewRun{Source: runstore.SourceUpload})
	require.NoError(t, err)
	kept, err := runstore.Attach(ctx, rs, fs, r.ID, "kept.csv", "text/csv", strings.NewReader("referenced"))
	require.NoError(t, err)
	orphan, err := fs.Put(ctx, strings.NewReader("an upload whose run never committed"))
	require.NoError(t, err)

	st, err := runstore.SweepFiles(ctx, rs, fs, clock.Now())
	require.NoError(t, err)
	assert.Equal(t, 2, st.Seen)
	assert.Zero(t, st.Removed, "young contents are kept: a writer may be about to record them")
	clock.Advance(runstore.MinUnreferencedAge / 2)
	st, err = runstore.SweepFiles(ctx, rs, fs, clock.Now())
	require.NoError(t, err)
	assert.Zero(t, st.Removed, "still inside the grace period")

	clock.Advance(runstore.MinUnreferencedAge/2 + time.Minute)
	st, err = runstore.SweepFiles(ctx, rs, fs, clock.Now())
	require.NoError(t, err)
	assert.Equal(t, 1, st.Removed, "the unreferenced contents go after the grace period")
	assert.Equal(t, orphan.Size, st.Bytes)
	_, err = fs.Stat(ctx, orphan.Key)
	assert.ErrorIs(t, err, runstore.ErrNotFound)
	_, data, err := runstore.ReadFile(ctx, rs, fs, r.ID, kept.ID)
	require.NoError(t, err, "referenced contents are never swept")
	assert.Equal(t, "referenced", string(data))

	// Deleting the run leaves its contents to the sweep while they are
	// young, and the sweep removes them once they are old.
	require.NoError(t, runstore.DeleteRun(ctx, rs, fs, r.ID))
	_, err = fs.Stat(ctx, kept.StorageKey)
	require.NoError(t, err)
	st, err = runstore.SweepFiles(ctx, rs, fs, clock.Now())
	require.NoError(t, err)
	assert.Equal(t, 1, st.Removed)
	assert.Empty(t, keys(t, fs))
}

// testBlobCrashedWrite: a write killed after its temporary object was
// written leaves nothing under a content key, and its temporary object is
// swept only after the grace period.
func testBlobCrashedWrite(t *testing.T, h FileHarness) {
	if h.Crash == nil {
		t.Skip("the harness cannot crash a write")
	}
	ctx, fs := context.Background(), h.Store
	data := []byte("contents of a write killed before they reached their key")
	h.Crash(t, data)
	assert.Empty(t, keys(t, fs), "no contents are listed")
	_, err := fs.Stat(ctx, sha(data))
	assert.ErrorIs(t, err, runstore.ErrNotFound, "nothing under the contents' key")
	ts, ok := fs.(runstore.TempSweeper)
	require.True(t, ok, "a store whose writes leave temporary objects sweeps them (runstore.TempSweeper)")
	rs := runstore.NewMemory(runstore.Options{})
	now := time.Now()
	st, err := runstore.SweepFiles(ctx, rs, fs, now)
	require.NoError(t, err)
	assert.Zero(t, st.TempRemoved, "a young temporary object may belong to a write in flight")
	st, err = runstore.SweepFiles(ctx, rs, fs, now.Add(runstore.MinUnreferencedAge+time.Minute))
	require.NoError(t, err)
	assert.Equal(t, 1, st.TempRemoved, "the crashed write's temporary object goes after the grace period")
	assert.Equal(t, int64(len(data)), st.TempBytes)
	again, err := ts.SweepTemp(ctx, now.Add(24*time.Hour))
	require.NoError(t, err)
	assert.Zero(t, again.Removed)
	// The store still works.
	b, err := fs.Put(ctx, bytes.NewReader(data))
	require.NoError(t, err)
	assert.Equal(t, data, readAll(t, fs, b.Key))
}
