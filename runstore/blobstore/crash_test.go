package blobstore_test

// The crash test: a child process (this test binary) stores contents
// through a real store and is killed with SIGKILL, either at each of Put's
// failpoints or at a random moment of a loop of Puts. After each kill the
// parent checks, on the raw bucket, that every object under a content key
// holds exactly the bytes its key names (a crash never leaves a partial
// object under a content key), that every Put that returned is stored, and
// finally that the sweep removes every temporary object the kills left.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/blobstore"
	"github.com/dynoai/dynoai/runstore/runstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	crashChildEnv = "DYNOAI_BLOBSTORE_CRASH_URL"  // the store's URL
	crashAtEnv    = "DYNOAI_BLOBSTORE_CRASH_AT"   // a failpoint, or "loop"
	crashSeedEnv  = "DYNOAI_BLOBSTORE_CRASH_SEED" // seed of the contents
)

// crashData is the deterministic contents of seed: 2 MiB and a few bytes,
// enough for a kill to land inside an upload.
func crashData(seed uint64) []byte {
	r := mrand.New(mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)}))
	b := make([]byte, 2<<20+int(seed%1000))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func crashChild() {
	at := os.Getenv(crashAtEnv)
	seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	s, err := blobstore.Open(context.Background(), os.Getenv(crashChildEnv), blobstore.Options{Failpoint: func(name string) {
		if name == at {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Hour)
		}
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}
	fmt.Println("ready")
	for i := uint64(0); ; i++ {
		b, err := s.Put(context.Background(), bytes.NewReader(crashData(seed+i)))
		if err != nil {
			fmt.Fprintln(os.Stderr, "crash child: put:", err)
			os.Exit(3)
		}
		fmt.Println("stored", b.Key)
		if at != "loop" {
			os.Exit(0)
		}
	}
}

// runChild runs a child and kills it after delay from its "ready" (or lets
// a failpoint kill it when delay < 0). It returns the keys the child
// reported stored.
func runChild(t *testing.T, url, at string, seed uint64, delay time.Duration) []string {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+url, crashAtEnv+"="+at, crashSeedEnv+"="+strconv.FormatUint(seed, 10))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	ready := make(chan struct{})
	var mu sync.Mutex
	var stored []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if line == "ready" {
				close(ready)
			} else if k, ok := strings.CutPrefix(line, "stored "); ok {
				mu.Lock()
				stored = append(stored, k)
				mu.Unlock()
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	if delay >= 0 {
		select {
		case <-ready:
		case <-time.After(time.Minute):
			t.Fatalf("the child did not start: %s", stderr.String())
		}
		time.Sleep(delay)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	}
	<-done
	err = cmd.Wait()
	st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	require.True(t, ok && st.Signaled() && st.Signal() == syscall.SIGKILL, "the child was killed (%v): %s", err, stderr.String())
	mu.Lock()
	defer mu.Unlock()
	return stored
}

// checkContents reads every object of the bucket: each under a content
// key must hash to its key. It returns the content keys and the count of
// other objects.
func checkContents(t *testing.T, s *blobstore.Store) (map[string]bool, int) {
	t.Helper()
	ctx := context.Background()
	keys := map[string]bool{}
	others := 0
	it := s.Bucket().List(nil)
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		dir, key, _ := strings.Cut(obj.Key, "/")
		if runstore.CheckStorageKey(key) != nil || dir != key[:2] {
			others++
			continue
		}
		data, err := s.Bucket().ReadAll(ctx, obj.Key)
		require.NoError(t, err)
		sum := sha256.Sum256(data)
		require.Equal(t, key, hex.EncodeToString(sum[:]), "the object under content key %s holds other bytes (%d of them)", key, len(data))
		keys[key] = true
	}
	return keys, others
}

// settledContents is checkContents once the bucket has stopped changing:
// an S3 server may finish writing an object for a client that was killed
// mid-request after the client is gone, so the first listing can miss it.
func settledContents(t *testing.T, s *blobstore.Store) (map[string]bool, int) {
	t.Helper()
	keys, others := checkContents(t, s)
	for range 20 {
		time.Sleep(250 * time.Millisecond)
		k2, o2 := checkContents(t, s)
		if len(k2) == len(keys) && o2 == others {
			return k2, o2
		}
		keys, others = k2, o2
	}
	return keys, others
}

func crashTest(t *testing.T, url string, s *blobstore.Store) {
	if testing.Short() {
		t.Skip("the crash test runs child processes")
	}
	points := []struct {
		at     string
		stored bool
	}{{blobstore.FailpointTempWritten, false}, {blobstore.FailpointCopied, true}, {blobstore.FailpointTempDeleted, true}}
	for i, p := range points {
		seed := uint64(1000 + i)
		runChild(t, url, p.at, seed, -1)
		keys, _ := checkContents(t, s)
		sum := sha256.Sum256(crashData(seed))
		assert.Equal(t, p.stored, keys[hex.EncodeToString(sum[:])], "killed at %s", p.at)
	}
	rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var stored []string
	for i := range 8 {
		delay := time.Duration(rng.IntN(400)) * time.Millisecond
		stored = append(stored, runChild(t, url, "loop", uint64(i)*100, delay)...)
	}
	keys, others := settledContents(t, s)
	for _, k := range stored {
		assert.True(t, keys[k], "contents whose Put returned are stored")
	}
	t.Logf("%d kills at random moments: %d Puts returned, %d temporary objects left", 8, len(stored), others)
	st, err := s.SweepTemp(context.Background(), time.Now().Add(-runstore.MinUnreferencedAge))
	require.NoError(t, err)
	assert.Zero(t, st.Removed, "the sweep keeps young temporary objects")
	st, err = s.SweepTemp(context.Background(), time.Now().Add(runstore.MinUnreferencedAge+time.Minute))
	require.NoError(t, err)
	// A listing is a moment: a server may still finish a request of a
	// killed child after it, so the sweep may find more than was counted,
	// never fewer. What matters is that nothing temporary is left.
	assert.GreaterOrEqual(t, st.Removed, others, "the sweep removes every temporary object the kills left, once old")
	_, others = checkContents(t, s)
	assert.Zero(t, others)
}

func TestFileCrash(t *testing.T) {
	dir := t.TempDir()
	url := "file://" + dir
	s := openStore(t, url)
	crashTest(t, url, s)
	// Nothing but contents is left in the directory.
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := d.Name()
		if runstore.CheckStorageKey(name) != nil || filepath.Base(filepath.Dir(p)) != name[:2] {
			t.Errorf("left in the directory: %s", p)
		}
		return nil
	}))
}

func TestS3Crash(t *testing.T) {
	url := runstoretest.S3URL(t)
	s := openStore(t, url)
	t.Cleanup(func() {
		ctx := context.Background()
		it := s.Bucket().List(nil)
		for {
			obj, err := it.Next(ctx)
			if err != nil {
				break
			}
			_ = s.Bucket().Delete(ctx, obj.Key)
		}
	})
	crashTest(t, url, s)
}
