package blobstore_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/blobstore"
	"github.com/dynoai/dynoai/runstore/runstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		crashChild()
		return
	}
	// Never let the AWS SDK look for credentials at the EC2 metadata
	// address: tests reach loopback only.
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Exit(m.Run())
}

// harness wraps s for the conformance suite: Alter writes the object
// directly into the bucket, Crash runs Put on a second store over the same
// bucket that stops once the temporary object is written.
func harness(s *blobstore.Store, step time.Duration) runstoretest.FileHarness {
	return runstoretest.FileHarness{
		Store: s,
		Alter: func(key string, data []byte) error {
			return s.Bucket().WriteAll(context.Background(), blobstore.ObjectKey(key), data, nil)
		},
		Crash: func(t *testing.T, data []byte) {
			crashing := blobstore.New(s.Bucket(), blobstore.Options{Failpoint: runstoretest.CrashAt(blobstore.FailpointTempWritten)})
			runstoretest.SurviveCrash(t, func() { _, _ = crashing.Put(context.Background(), bytes.NewReader(data)) })
		},
		ModTimeStep: step,
	}
}

func openStore(t testing.TB, url string) *blobstore.Store {
	t.Helper()
	s, err := blobstore.Open(context.Background(), url, blobstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// openS3 opens a store under a prefix of its own in the test bucket and
// removes everything under that prefix when the test ends.
func openS3(t testing.TB) *blobstore.Store {
	t.Helper()
	url := runstoretest.S3URL(t)
	s, err := blobstore.Open(context.Background(), url, blobstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() {
		defer s.Close()
		ctx := context.Background()
		it := s.Bucket().List(nil)
		for {
			obj, err := it.Next(ctx)
			if err != nil {
				break
			}
			if err := s.Bucket().Delete(ctx, obj.Key); err != nil {
				t.Errorf("cleaning up %s: %v", obj.Key, err)
			}
		}
	})
	return s
}

func TestMemConformance(t *testing.T) {
	runstoretest.RunFileStore(t, func(t *testing.T) runstoretest.FileHarness {
		return harness(openStore(t, "mem://"), 10*time.Millisecond)
	})
}

func TestFileConformance(t *testing.T) {
	runstoretest.RunFileStore(t, func(t *testing.T) runstoretest.FileHarness {
		return harness(openStore(t, "file://"+t.TempDir()), 10*time.Millisecond)
	})
}

func TestS3Conformance(t *testing.T) {
	runstoretest.S3URL(t) // skips, or fails under CI, without a server
	runstoretest.RunFileStore(t, func(t *testing.T) runstoretest.FileHarness {
		return harness(openS3(t), 0)
	})
}

func TestOpenURLs(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ url, want string }{
		{"gs://bucket", `unsupported URL scheme "gs"`},
		{"http://127.0.0.1:9000/bucket", `unsupported URL scheme "http"`},
		{"/var/lib/dynoai/files", `unsupported URL scheme ""`},
		{"s3://AKIAEXAMPLE:secret@bucket?region=us-east-1", "credentials do not belong in the URL"},
		{"s3://?region=us-east-1", "without a bucket"},
		{"file://", "without a directory"},
		{"file:///", "without a directory"},
		{"s3://bucket?region=us-east-1&bogus=1", `unknown query parameter "bogus"`},
		{"file:///tmp/x?bogus=1", `invalid query parameter "bogus"`},
		{"s3://bu%zzcket", "does not parse"},
	} {
		_, err := blobstore.Open(ctx, tc.url, blobstore.Options{})
		require.Error(t, err, tc.url)
		if cerr := blobstore.CheckURL(tc.url); cerr != nil {
			assert.Equal(t, err.Error(), cerr.Error(), "CheckURL refuses as Open does")
		} else {
			assert.Contains(t, tc.want, "query parameter", "CheckURL leaves only the drivers' parameters to Open")
		}
		assert.Contains(t, err.Error(), tc.want, tc.url)
		assert.NotContains(t, err.Error(), "secret", "errors never repeat credentials")
	}

	dir := t.TempDir()
	for _, tc := range []struct{ url, name string }{
		{"mem://", "mem://"},
		{"file://" + dir + "/files?prefix=a/", "file://" + dir + "/files prefix a/"},
		{"s3://bucket?region=us-east-1&endpoint=http://127.0.0.1:1/path&use_path_style=true&prefix=dynoai/",
			"s3://bucket prefix dynoai/ at http://127.0.0.1:1"},
	} {
		require.NoError(t, blobstore.CheckURL(tc.url))
		s := openStore(t, tc.url)
		assert.Equal(t, tc.name, s.String())
	}
	fi, err := os.Stat(filepath.Join(dir, "files"))
	require.NoError(t, err, "file:// creates its directory")
	assert.Equal(t, os.FileMode(0o750), fi.Mode().Perm())
}

// TestFileLayout: file:// stores contents where LocalFileStore does, with
// no metadata files, so either store reads the other's directory.
func TestFileLayout(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, "file://"+dir)
	b, err := s.Put(ctx, strings.NewReader("shared layout"))
	require.NoError(t, err)
	var files []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, rel)
		}
		return err
	}))
	assert.Equal(t, []string{filepath.Join(b.Key[:2], b.Key)}, files, "one file under its key, no temporary or metadata file")
	local, err := runstore.NewLocalFileStore(dir, runstore.LocalFileStoreOptions{})
	require.NoError(t, err)
	defer local.Close()
	rc, err := local.Open(ctx, b.Key)
	require.NoError(t, err)
	rc.Close()
	lb, err := local.Put(ctx, strings.NewReader("written by LocalFileStore"))
	require.NoError(t, err)
	_, err = s.Stat(ctx, lb.Key)
	require.NoError(t, err)
}

// TestFileDirectoryGone: a file:// store whose directory was deleted or
// replaced fails with ErrUnavailable instead of recreating it.
func TestFileDirectoryGone(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "files")
	s := openStore(t, "file://"+dir)
	require.NoError(t, s.Probe(ctx))
	require.NoError(t, os.RemoveAll(dir))
	assert.ErrorIs(t, s.Probe(ctx), runstore.ErrUnavailable)
	_, err := s.Put(ctx, strings.NewReader("x"))
	assert.ErrorIs(t, err, runstore.ErrUnavailable)
	_, err = os.Stat(dir)
	assert.ErrorIs(t, err, os.ErrNotExist, "the directory was not recreated")
	require.NoError(t, os.MkdirAll(dir, 0o750))
	assert.ErrorIs(t, s.Probe(ctx), runstore.ErrUnavailable, "a directory made in its place is not the store's")
	_, err = s.SweepTemp(ctx, time.Now())
	assert.ErrorIs(t, err, runstore.ErrUnavailable)
}

// TestFileSweepsCopyLeftovers: on file://, a copy killed before its rename
// leaves <object>.<hex>.tmp next to its target; the sweep removes it once
// old, and nothing that merely looks like it.
func TestFileSweepsCopyLeftovers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, "file://"+dir)
	key := strings.Repeat("ab", 32)
	old := time.Now().Add(-2 * runstore.MinUnreferencedAge)
	write := func(rel string, mod time.Time) {
		p := filepath.Join(dir, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o750))
		require.NoError(t, os.WriteFile(p, []byte("partial"), 0o600))
		require.NoError(t, os.Chtimes(p, mod, mod))
	}
	write("ab/"+key+".18f3a2b4c5d6e7f8.tmp", old) // a killed copy
	write("tmp/0123.18f3a2b4c5d6e7f8.tmp", old)   // a killed upload
	write("ab/"+key+".18f3a2b4c5d6e7f9.tmp", time.Now())
	write("ab/"+key+".notes.tmp", old)
	write("ab/unrelated.1.tmp", old)
	st, err := s.SweepTemp(ctx, time.Now().Add(-runstore.MinUnreferencedAge))
	require.NoError(t, err)
	assert.Equal(t, 2, st.Removed)
	assert.Equal(t, int64(2*len("partial")), st.Bytes)
	for rel, gone := range map[string]bool{"ab/" + key + ".18f3a2b4c5d6e7f8.tmp": true, "tmp/0123.18f3a2b4c5d6e7f8.tmp": true,
		"ab/" + key + ".18f3a2b4c5d6e7f9.tmp": false, "ab/" + key + ".notes.tmp": false, "ab/unrelated.1.tmp": false} {
		_, err := os.Stat(filepath.Join(dir, rel))
		assert.Equal(t, gone, os.IsNotExist(err), rel)
	}
}

// TestListSkipsForeignObjects: in a bucket shared without a prefix, List
// reports contents only.
func TestListSkipsForeignObjects(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "mem://")
	b, err := s.Put(ctx, strings.NewReader("mine"))
	require.NoError(t, err)
	for _, k := range []string{"README", "backups/db.sql", "cd/" + strings.Repeat("ab", 32), b.Key, "tmp/x"} {
		require.NoError(t, s.Bucket().WriteAll(ctx, k, []byte("other"), nil))
	}
	var got []string
	require.NoError(t, s.List(ctx, func(in runstore.BlobInfo) error { got = append(got, in.Key); return nil }))
	assert.Equal(t, []string{b.Key}, got)
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// TestS3Unreachable: a server that does not answer makes every operation
// fail with ErrUnavailable, never ErrNotFound. (The SDK retries each call
// three times with backoff, so the calls run at once.)
func TestS3Unreachable(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	s := openStore(t, "s3://bucket?region=us-east-1&use_path_style=true&endpoint=http://"+closedPort(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key := strings.Repeat("c", 64)
	ops := map[string]func() error{
		"Probe":  func() error { return s.Probe(ctx) },
		"Put":    func() error { _, err := s.Put(ctx, strings.NewReader("x")); return err },
		"Open":   func() error { _, err := s.Open(ctx, key); return err },
		"Stat":   func() error { _, err := s.Stat(ctx, key); return err },
		"Delete": func() error { return s.Delete(ctx, key) },
		"List":   func() error { return s.List(ctx, func(runstore.BlobInfo) error { return nil }) },
	}
	var mu sync.Mutex
	errs := map[string]error{}
	var wg sync.WaitGroup
	for name, op := range ops {
		wg.Go(func() {
			err := op()
			mu.Lock()
			errs[name] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	require.NoError(t, ctx.Err())
	for name, err := range errs {
		assert.ErrorIs(t, err, runstore.ErrUnavailable, name)
		assert.NotErrorIs(t, err, runstore.ErrNotFound, name)
	}
}

// TestS3MissingBucket: a bucket that does not exist is the store being
// unavailable, not the contents missing.
func TestS3MissingBucket(t *testing.T) {
	url := runstoretest.S3URL(t)
	url = strings.Replace(url, "s3://", "s3://dynoai-no-such-bucket-", 1)
	s := openStore(t, url)
	ctx := context.Background()
	assert.ErrorIs(t, s.Probe(ctx), runstore.ErrUnavailable)
	key := strings.Repeat("d", 64)
	_, err := s.Open(ctx, key)
	assert.ErrorIs(t, err, runstore.ErrUnavailable)
	assert.NotErrorIs(t, err, runstore.ErrNotFound)
	_, err = s.Stat(ctx, key)
	assert.ErrorIs(t, err, runstore.ErrUnavailable)
	assert.ErrorIs(t, s.Delete(ctx, key), runstore.ErrUnavailable)
	_, err = s.Put(ctx, strings.NewReader("x"))
	assert.ErrorIs(t, err, runstore.ErrUnavailable)
}

// TestPutFailpoints: Put passes its steps in order.
func TestPutFailpoints(t *testing.T) {
	b, err := blob.OpenBucket(context.Background(), "mem://")
	require.NoError(t, err)
	var steps []string
	s := blobstore.New(b, blobstore.Options{Failpoint: func(name string) { steps = append(steps, name) }})
	defer s.Close()
	_, err = s.Put(context.Background(), strings.NewReader("x"))
	require.NoError(t, err)
	assert.Equal(t, []string{blobstore.FailpointTempWritten, blobstore.FailpointCopied, blobstore.FailpointTempDeleted}, steps)
	assert.Equal(t, "blob bucket", s.String())
}
