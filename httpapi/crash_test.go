package httpapi

// The apply crash test: a child process (this test binary) applies or
// rolls back VE corrections through the real handler on a real store and
// is killed with SIGKILL, either at a failpoint (between the blob writes,
// their syncs and renames, the directory syncs and the commit, so every
// critical window is hit for certain) or at a random moment of a loop of
// applies and rollbacks. After each kill the parent reopens the stores and
// checks that the state is exactly the previous one or the new one, every
// recorded file reads back with its checksum, and the latest apply still
// rolls back to its base exactly.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/runstoretest"
	"github.com/dynoai/dynoai/runstore/sqlstore"
	"github.com/dynoai/dynoai/ve"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// HeavyEnv, set to 1, runs the heavy tests (the apply crash test and the
// limiter flood): .ci/run runs them once, outside the race detector.
const HeavyEnv = "DYNOAI_HEAVY_TESTS"

func heavy(t *testing.T) {
	t.Helper()
	if os.Getenv(HeavyEnv) != "1" {
		t.Skipf("set %s=1 to run (CI runs it once, without -race)", HeavyEnv)
	}
}

// The child's environment.
const (
	crashChildEnv = "DYNOAI_APPLY_CRASH_CHILD" // "sqlite:<path>" or a postgres DSN
	crashFilesEnv = "DYNOAI_APPLY_CRASH_FILES" // the file store directory
	crashRunEnv   = "DYNOAI_APPLY_CRASH_RUN"   // run id and base file id, "id:n"
	crashAtEnv    = "DYNOAI_APPLY_CRASH_AT"    // "<op> <failpoint> <occurrence>" or "loop"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		if err := crashChild(); err != nil {
			fmt.Fprintln(os.Stderr, "apply crash child:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashStores opens the stores of a crash test; fail is their failpoint.
func crashStores(ctx context.Context, dsn, dir string, fail runstore.Failpoint) (*sqlstore.Store, *runstore.LocalFileStore, error) {
	rs, err := sqlstore.Open(ctx, dsn, sqlstore.Options{Failpoint: fail})
	if err != nil {
		return nil, nil, err
	}
	fs, err := runstore.NewLocalFileStore(dir, runstore.LocalFileStoreOptions{Failpoint: fail})
	if err != nil {
		rs.Close()
		return nil, nil, err
	}
	return rs, fs, nil
}

// crashOp applies (with base file baseID) or rolls back the front cylinder
// through the handler.
func crashOp(h http.Handler, runID string, baseID int64, op string) (int, []byte) {
	body := `{"cylinder":"front"}`
	if op == "apply" {
		body = fmt.Sprintf(`{"cylinder":"front","base_file_id":%d,"comment":"crash %d"}`, baseID, mrand.Int())
	}
	req := httptest.NewRequest("POST", "/api/runs/"+runID+"/"+op, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// nextOp is what the state calls for: rollback when the cylinder's latest
// record is an apply, else apply.
func nextOp(records []runstore.Apply) string {
	if head := latestApply(records, "Front"); head != nil && head.Kind == runstore.ApplyKindApply {
		return "rollback"
	}
	return "apply"
}

func crashChild() error {
	ctx := context.Background()
	runID, base, _ := strings.Cut(os.Getenv(crashRunEnv), ":")
	baseID, err := strconv.ParseInt(base, 10, 64)
	if err != nil {
		return err
	}
	var (
		armed             atomic.Bool
		killAt            string
		killN, hits       int
		mu                sync.Mutex
		op                string
		at                = strings.Fields(os.Getenv(crashAtEnv))
		loop              = len(at) == 1 && at[0] == "loop"
		deterministicKill = len(at) == 3
	)
	if deterministicKill {
		op, killAt = at[0], at[1]
		if killN, err = strconv.Atoi(at[2]); err != nil {
			return err
		}
	}
	fail := func(name string) {
		if !armed.Load() || name != killAt {
			return
		}
		mu.Lock()
		hits++
		n := hits
		mu.Unlock()
		if n == killN {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
	rs, fs, err := crashStores(ctx, os.Getenv(crashChildEnv), os.Getenv(crashFilesEnv), fail)
	if err != nil {
		return err
	}
	srv, err := New(Config{Runs: rs, Files: fs})
	if err != nil {
		return err
	}
	h := srv.Handler()
	if !loop {
		recs, err := rs.Applies(ctx, runID)
		if err != nil {
			return err
		}
		if nextOp(recs) != op {
			return fmt.Errorf("state calls for %s, asked for %s", nextOp(recs), op)
		}
		armed.Store(true)
		code, body := crashOp(h, runID, baseID, op)
		return fmt.Errorf("%s finished (%d %s) without reaching failpoint %s #%d", op, code, body, killAt, killN)
	}
	// The loop: acknowledge each committed operation on stdout; the
	// parent kills at a random moment.
	for {
		recs, err := rs.Applies(ctx, runID)
		if err != nil {
			return err
		}
		op := nextOp(recs)
		code, body := crashOp(h, runID, baseID, op)
		if code != 200 {
			return fmt.Errorf("%s: %d %s", op, code, body)
		}
		var res struct {
			ApplyID int64 `json:"apply_id"`
		}
		if err := json.Unmarshal(body, &res); err != nil {
			return err
		}
		fmt.Printf("ACK %s %d\n", op, res.ApplyID)
	}
}

// crashBackend is one store the crash test runs on.
type crashBackend struct {
	name string
	dsn  func(t *testing.T) string
}

// TestApplyCrash: see the comment at the top of this file. Budget: 4
// minutes for both backends on a 2-core machine (about 40 s measured).
func TestApplyCrash(t *testing.T) {
	heavy(t)
	const budget = 4 * time.Minute
	start := time.Now()
	for _, be := range []crashBackend{
		{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "runs.db") }},
		{"postgres", func(t *testing.T) string { return runstoretest.PostgresDSN(t) }},
	} {
		t.Run(be.name, func(t *testing.T) { runApplyCrash(t, be.dsn(t)) })
	}
	elapsed := time.Since(start)
	t.Logf("crash test took %v (budget %v)", elapsed.Round(time.Second), budget)
	assert.Less(t, elapsed, budget, "over its time budget")
}

// crashState is what the parent reads back after a kill.
type crashState struct {
	records []runstore.Apply
	files   []runstore.File
}

// verifiedUpTo is the highest record id whose files readCrashState has read
// back already (records never change once stored; a later check would fail
// if one did).
var verifiedUpTo atomic.Int64

func readCrashState(t *testing.T, ctx context.Context, dsn, dir, runID string) crashState {
	t.Helper()
	rs, fs, err := crashStores(ctx, dsn, dir, nil)
	require.NoError(t, err)
	defer rs.Close()
	defer fs.Close()
	if err := rs.Check(ctx); err != nil {
		t.Fatalf("database check after the kill: %v", err)
	}
	var st crashState
	st.records, err = rs.Applies(ctx, runID)
	require.NoError(t, err)
	st.files, err = rs.Files(ctx, runID)
	require.NoError(t, err)
	// Every recorded file reads back whole; every record is complete and
	// consistent; the latest apply rolls back to its base exactly.
	for _, rec := range st.records {
		require.Len(t, rec.Files, rec.Kind.Files(), "record %d", rec.ID)
		if rec.ID <= verifiedUpTo.Load() {
			continue
		}
		for _, f := range rec.Files {
			_, _, err := runstore.ReadFile(ctx, rs, fs, runID, f.ID)
			require.NoError(t, err, "record %d file %s", rec.ID, f.Name)
		}
		verifiedUpTo.Store(rec.ID)
	}
	if head := latestApply(st.records, "Front"); head != nil && head.Kind == runstore.ApplyKindApply {
		read := func(f runstore.File) []byte {
			_, data, err := runstore.ReadFile(ctx, rs, fs, runID, f.ID)
			require.NoError(t, err)
			return data
		}
		applied, err := ve.ReadTableCSV(bytes.NewReader(read(head.Files[0])), "applied")
		require.NoError(t, err)
		eff, err := ve.ReadTableCSV(bytes.NewReader(read(head.Files[1])), "effective")
		require.NoError(t, err)
		var m ve.Manifest
		require.NoError(t, json.Unmarshal(read(head.Files[2]), &m))
		restored, err := ve.Rollback(applied, eff, &m)
		require.NoError(t, err, "the latest apply (record %d) does not roll back", head.ID)
		assert.Equal(t, m.BaseSHA256, restored.Hash())
	}
	// No file of the apply kinds outside a record: nothing half-recorded.
	inRecord := map[int64]bool{}
	for _, rec := range st.records {
		for _, f := range rec.Files {
			inRecord[f.ID] = true
		}
	}
	for _, f := range st.files {
		if strings.HasPrefix(f.Name, "VE_Applied_") || strings.HasPrefix(f.Name, "VE_Effective_") ||
			strings.HasPrefix(f.Name, "VE_Apply_") || strings.HasPrefix(f.Name, "VE_Restored_") {
			assert.True(t, inRecord[f.ID], "file %d %s is not part of any apply record", f.ID, f.Name)
		}
	}
	return st
}

// sameOrNext checks that after is before, or before plus one record of op
// built on before's latest record.
func sameOrNext(t *testing.T, before, after crashState, op, where string) bool {
	t.Helper()
	switch len(after.records) {
	case len(before.records):
		assert.Equal(t, before.records, after.records, "%s: changed without a new record", where)
		assert.Equal(t, before.files, after.files, "%s: files changed without a new record", where)
		return false
	case len(before.records) + 1:
		assert.Equal(t, before.records, after.records[:len(before.records)], "%s: earlier records changed", where)
		rec := after.records[len(after.records)-1]
		assert.Equal(t, runstore.ApplyKind(op), rec.Kind, where)
		var parent int64
		if head := latestApply(before.records, "Front"); head != nil {
			parent = head.ID
		}
		assert.Equal(t, parent, rec.Parent, where)
		assert.Len(t, after.files, len(before.files)+len(rec.Files), "%s: files besides the record's", where)
		return true
	}
	t.Fatalf("%s: %d records before, %d after: neither the previous state nor the next", where, len(before.records), len(after.records))
	return false
}

func runApplyCrash(t *testing.T, dsn string) {
	ctx := context.Background()
	verifiedUpTo.Store(0)
	dir := filepath.Join(t.TempDir(), "files")
	exe, err := os.Executable()
	require.NoError(t, err)

	// A completed analysis with a base table, made through the server.
	rs, fs, err := crashStores(ctx, dsn, dir, nil)
	require.NoError(t, err)
	e := newEnv(t, func(c *Config) { c.Runs, c.Files = rs, fs })
	run := e.analyze(t, nil)
	require.Equal(t, runstore.StatusCompleted, run.Status)
	files, err := rs.Files(ctx, run.ID)
	require.NoError(t, err)
	cf, ok := latestNamed(files, "VE_Multiplier_Front.csv")
	require.True(t, ok)
	_, cdata, err := runstore.ReadFile(ctx, rs, fs, run.ID, cf.ID)
	require.NoError(t, err)
	corr, err := ve.ReadTableCSV(bytes.NewReader(cdata), cf.Name)
	require.NoError(t, err)
	up := e.uploadTable(t, run.ID, "base.csv", baseTable(t, corr.RPM, corr.MAP))
	require.Equal(t, http.StatusCreated, up.code, "%s", up.body)
	baseID := int64(up.json(t)["file"].(map[string]any)["id"].(float64))
	e.ts.Close()
	require.NoError(t, e.srv.Shutdown(ctx))
	require.NoError(t, rs.Close())
	require.NoError(t, fs.Close())

	// inProcess performs op without failpoints (to set up a state).
	inProcess := func(op string) {
		rs, fs, err := crashStores(ctx, dsn, dir, nil)
		require.NoError(t, err)
		defer rs.Close()
		defer fs.Close()
		srv, err := New(Config{Runs: rs, Files: fs})
		require.NoError(t, err)
		code, body := crashOp(srv.Handler(), run.ID, baseID, op)
		require.Equal(t, 200, code, "%s: %s", op, body)
	}
	child := func(at string) (*exec.Cmd, *bufio.Scanner) {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dsn, crashFilesEnv+"="+dir,
			crashRunEnv+"="+run.ID+":"+strconv.FormatInt(baseID, 10), crashAtEnv+"="+at)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		t.Cleanup(func() {
			if t.Failed() && stderr.Len() > 0 {
				t.Logf("child stderr: %s", stderr.String())
			}
		})
		return cmd, bufio.NewScanner(out)
	}
	killed := func(err error) bool {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return false
		}
		st, ok := ee.Sys().(syscall.WaitStatus)
		return ok && st.Signaled() && st.Signal() == syscall.SIGKILL
	}

	// Every failpoint of both operations: the blob steps of each of the
	// three files of an apply (one of a rollback) and the commit.
	type point struct {
		op, name string
		n        int
	}
	var points []point
	for _, op := range []string{"apply", "rollback"} {
		blobs := runstore.ApplyKind(op).Files()
		for n := 1; n <= blobs; n++ {
			for _, p := range []string{runstore.FailpointBlobWritten, runstore.FailpointBlobSynced,
				runstore.FailpointBlobRenamed, runstore.FailpointBlobDirSynced} {
				points = append(points, point{op, p, n})
			}
		}
		points = append(points, point{op, sqlstore.FailpointBeforeCommit, 1}, point{op, sqlstore.FailpointAfterCommit, 1})
	}
	const iterations = 100
	committed := map[string]int{}
	for i, p := range points {
		where := fmt.Sprintf("iteration %d (%s killed at %s #%d)", i, p.op, p.name, p.n)
		before := readCrashState(t, ctx, dsn, dir, run.ID)
		if nextOp(before.records) != p.op {
			inProcess(nextOp(before.records))
			before = readCrashState(t, ctx, dsn, dir, run.ID)
		}
		cmd, _ := child(fmt.Sprintf("%s %s %d", p.op, p.name, p.n))
		err := cmd.Wait()
		require.True(t, killed(err), "%s: the child was not killed at its failpoint: %v", where, err)
		after := readCrashState(t, ctx, dsn, dir, run.ID)
		if sameOrNext(t, before, after, p.op, where) {
			committed[p.name]++
		}
	}
	// A kill after the commit keeps the new state; one before it the old.
	assert.Equal(t, 2, committed[sqlstore.FailpointAfterCommit], "after-commit kills keep the new state")
	for _, p := range []string{sqlstore.FailpointBeforeCommit, runstore.FailpointBlobWritten, runstore.FailpointBlobSynced,
		runstore.FailpointBlobRenamed, runstore.FailpointBlobDirSynced} {
		assert.Zero(t, committed[p], "kills at %s keep the old state", p)
	}

	// Random moments of a loop of applies and rollbacks.
	acked := map[int64]string{}
	for i := len(points); i < iterations; i++ {
		before := readCrashState(t, ctx, dsn, dir, run.ID)
		cmd, out := child("loop")
		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			for out.Scan() {
				lines <- out.Text()
			}
		}()
		time.Sleep(time.Duration(50+mrand.IntN(400)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		var got []string
		for l := range lines {
			got = append(got, l)
		}
		err := cmd.Wait()
		require.True(t, killed(err), "iteration %d: the child ended by itself: %v", i, err)
		after := readCrashState(t, ctx, dsn, dir, run.ID)
		require.GreaterOrEqual(t, len(after.records), len(before.records))
		assert.Equal(t, before.records, after.records[:len(before.records)], "iteration %d: earlier records changed", i)
		byID := map[int64]runstore.Apply{}
		for _, rec := range after.records {
			byID[rec.ID] = rec
		}
		for _, l := range got {
			var op string
			var id int64
			_, err := fmt.Sscanf(l, "ACK %s %d", &op, &id)
			require.NoError(t, err, "child wrote %q", l)
			acked[id] = op
			rec, ok := byID[id]
			require.True(t, ok, "iteration %d: acknowledged %s %d is not stored", i, op, id)
			assert.Equal(t, runstore.ApplyKind(op), rec.Kind)
		}
		// The chain has no gap: each record builds on the one before.
		var prev int64
		for _, rec := range after.records {
			assert.Equal(t, prev, rec.Parent, "iteration %d: record %d", i, rec.ID)
			prev = rec.ID
		}
	}
	final := readCrashState(t, ctx, dsn, dir, run.ID)
	t.Logf("%d iterations: %d failpoints, %d records, %d acknowledged in the loop", iterations, len(points),
		len(final.records), len(acked))
	require.NotEmpty(t, acked, "the loop acknowledged nothing: it checked nothing")
	// And a rollback through the API works on the final state.
	if nextOp(final.records) != "rollback" {
		inProcess("apply")
	}
	inProcess("rollback")
}
