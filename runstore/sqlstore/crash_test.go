package sqlstore_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
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
	"github.com/dynoai/dynoai/runstore/sqlstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// crashChildEnv, when set to a directory, turns the test binary into the
// crash test's child: it writes runs and files there until killed.
const crashChildEnv = "DYNOAI_RUNSTORE_CRASH_CHILD"

// crashIterationsEnv overrides the number of kill/reopen iterations.
const crashIterationsEnv = "DYNOAI_CRASH_ITERATIONS"

func TestMain(m *testing.M) {
	if child, err := sqlstore.MigrateCrashChild(); child {
		fmt.Fprintln(os.Stderr, "migrate crash child:", err)
		os.Exit(2)
	}
	if dir := os.Getenv(crashChildEnv); dir != "" {
		if err := crashChild(dir); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashChild writes runs with 2 goroutines forever. It prints a line to
// stdout only after the call it acknowledges has returned:
//
//	C <id>                    created
//	F <id> <fileID> <sha256>  file attached
//	D <id>                    completed with results {"id": <id>, "n": <len>}
func crashChild(dir string) error {
	ctx := context.Background()
	s, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "runs.db"), sqlstore.Options{})
	if err != nil {
		return err
	}
	fs, err := runstore.NewLocalFileStore(filepath.Join(dir, "files"), runstore.LocalFileStoreOptions{})
	if err != nil {
		return err
	}
	var mu sync.Mutex // one line per write
	ack := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
		mu.Unlock()
	}
	errc := make(chan error, 2)
	for w := 0; w < 2; w++ {
		go func() {
			for i := 0; ; i++ {
				r, err := s.Create(ctx, runstore.NewRun{Source: runstore.SourceJetDrive, Filename: fmt.Sprintf("w%d-%d.csv", w, i), Vehicle: "crash test"})
				if err != nil {
					errc <- err
					return
				}
				ack("C %s", r.ID)
				if r, err = s.Update(ctx, r.ID, runstore.Update{Version: r.Version, Status: runstore.StatusProcessing}); err != nil {
					errc <- err
					return
				}
				buf := make([]byte, 4096+mrand.IntN(60000))
				rand.Read(buf)
				f, err := runstore.Attach(ctx, s, fs, r.ID, "capture.bin", "application/octet-stream", strings.NewReader(string(buf)))
				if err != nil {
					errc <- err
					return
				}
				ack("F %s %d %s", r.ID, f.ID, f.SHA256)
				res := fmt.Sprintf(`{"id":%q,"n":%d}`, r.ID, len(buf))
				if _, err = s.Complete(ctx, r.ID, r.Version, runstore.Result{Results: []byte(res), Stats: runstore.Stats{PeakHP: ptrF(float64(len(buf)))}}); err != nil {
					errc <- err
					return
				}
				ack("D %s", r.ID)
			}
		}()
	}
	return <-errc
}

func ptrF(v float64) *float64 { return &v }

func crashIterations(t *testing.T) int {
	if v := os.Getenv(crashIterationsEnv); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, crashIterationsEnv)
		return n
	}
	if testing.Short() {
		return 3
	}
	return 8
}

// TestCrashSafety kills a child process writing runs and files with SIGKILL
// at random points; after each kill the database must pass the integrity
// check and hold every run, file and completion the child acknowledged.
func TestCrashSafety(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	dir := t.TempDir()
	ctx := context.Background()
	acked := map[string]string{}    // id -> "C" or "D"
	files := map[string][2]string{} // id -> file id, sha
	iterations := crashIterations(t)
	total := 0
	for it := 0; it < iterations; it++ {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		// Odd iterations kill at a random time after start (possibly while
		// opening); even ones wait for the first acknowledgement so that a
		// loaded machine still kills mid-write. Either way a random while.
		var pending []string
		if it%2 == 0 {
			select {
			case line, ok := <-lines:
				if ok {
					pending = append(pending, line)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("the child acknowledged nothing within 60 s")
			}
		}
		time.Sleep(time.Duration(mrand.IntN(400)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		n := 0
		for line := range lines {
			pending = append(pending, line)
		}
		for _, line := range pending {
			f := strings.Fields(line)
			switch {
			case len(f) == 2 && f[0] == "C":
				if acked[f[1]] == "" {
					acked[f[1]] = "C"
				}
			case len(f) == 2 && f[0] == "D":
				acked[f[1]] = "D"
			case len(f) == 4 && f[0] == "F":
				files[f[1]] = [2]string{f[2], f[3]}
			default:
				t.Fatalf("child wrote %q", line)
			}
			n++
		}
		err = cmd.Wait()
		require.Error(t, err, "the child runs until killed")
		if ee, ok := err.(*exec.ExitError); ok {
			st, _ := ee.Sys().(syscall.WaitStatus)
			require.True(t, st.Signaled(), "child exited by itself: %v", err)
		}
		total += n

		// Reopen: integrity, then every acknowledged write.
		s, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "runs.db"), sqlstore.Options{})
		require.NoError(t, err, "iteration %d", it)
		require.NoError(t, s.Check(ctx), "iteration %d", it)
		fstore, err := runstore.NewLocalFileStore(filepath.Join(dir, "files"), runstore.LocalFileStoreOptions{})
		require.NoError(t, err)
		for id, state := range acked {
			r, err := s.Get(ctx, id)
			require.NoError(t, err, "iteration %d: acknowledged run %s", it, id)
			if state == "D" {
				require.Equal(t, runstore.StatusCompleted, r.Status, id)
				var res struct {
					ID string `json:"id"`
					N  int    `json:"n"`
				}
				require.NoError(t, json.Unmarshal(r.Results, &res))
				assert.Equal(t, id, res.ID)
				require.NotNil(t, r.Stats.PeakHP)
				assert.Equal(t, float64(res.N), *r.Stats.PeakHP)
			}
			if fm, ok := files[id]; ok {
				fid, _ := strconv.ParseInt(fm[0], 10, 64)
				f, data, err := runstore.ReadFile(ctx, s, fstore, id, fid)
				require.NoError(t, err, "iteration %d: acknowledged file of %s", it, id)
				assert.Equal(t, fm[1], f.SHA256)
				if state == "D" {
					var res struct{ N int }
					json.Unmarshal(r.Results, &res)
					assert.Len(t, data, res.N)
				}
			}
		}
		// Interrupted runs are recovered as failed; nothing else changes.
		rec, err := s.Recover(ctx, runstore.RunError{Code: "interrupted", Message: "killed"})
		require.NoError(t, err)
		for _, id := range rec {
			assert.NotEqual(t, "D", acked[id], "a completed run is never recovered")
		}
		require.NoError(t, s.Close())
	}
	t.Logf("%d iterations, %d acknowledged writes, %d runs, %d files", iterations, total, len(acked), len(files))
	require.NotEmpty(t, acked, "the child acknowledged nothing: the test checked nothing")
}
