package runstoretest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dynoai/dynoai/runstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// jobTests are the JobQueue part of the suite.
var jobTests = []struct {
	name string
	f    func(t *testing.T, open Opener)
}{
	{"JobSubmitClaimComplete", testJobSubmitClaimComplete},
	{"JobLeaseExpiry", testJobLeaseExpiry},
	{"JobAttemptsExhausted", testJobAttemptsExhausted},
	{"JobRetry", testJobRetry},
	{"JobFailPermanent", testJobFailPermanent},
	{"JobRelease", testJobRelease},
	{"JobConcurrentClaims", testJobConcurrentClaims},
	{"JobCancelledRun", testJobCancelledRun},
	{"JobDeletedRun", testJobDeletedRun},
	{"JobValidation", testJobValidation},
	{"JobKinds", testJobKinds},
	{"JobRecoverLeavesQueue", testJobRecoverLeavesQueue},
}

func inputMeta(name string) runstore.FileMeta {
	sum := sha256.Sum256([]byte(name))
	h := hex.EncodeToString(sum[:])
	return runstore.FileMeta{Name: name, ContentType: "text/csv", Size: int64(len(name)), SHA256: h, StorageKey: h}
}

func (e *env) submit(name string, maxAttempts int) runstore.Submitted {
	e.t.Helper()
	s, err := e.s.Submit(e.ctx, runstore.NewRun{Source: runstore.SourceUpload, Filename: name, Tenant: "shop-a"},
		runstore.NewJob{MaxAttempts: maxAttempts, Input: inputMeta(name)})
	require.NoError(e.t, err)
	return s
}

func (e *env) claim(worker string, lease time.Duration) runstore.Lease {
	e.t.Helper()
	l, err := e.s.Claim(e.ctx, runstore.Claim{Worker: worker, Lease: lease})
	require.NoError(e.t, err)
	return l
}

func (e *env) noJob() {
	e.t.Helper()
	_, err := e.s.Claim(e.ctx, runstore.Claim{Worker: "idle", Lease: time.Minute})
	require.ErrorIs(e.t, err, runstore.ErrNoJob)
}

func (e *env) job(runID string) runstore.Job {
	e.t.Helper()
	j, err := e.s.Job(e.ctx, runID)
	require.NoError(e.t, err)
	return j
}

func testJobSubmitClaimComplete(t *testing.T, open Opener) {
	e := newEnv(t, open)
	sub := e.submit("pull1.csv", 0)
	assert.Equal(t, runstore.StatusQueued, sub.Run.Status)
	assert.Equal(t, "shop-a", sub.Run.Tenant)
	assert.Equal(t, runstore.JobAvailable, sub.Job.State)
	assert.Equal(t, runstore.DefaultMaxAttempts, sub.Job.MaxAttempts)
	assert.Equal(t, runstore.JobKindAnalyze, sub.Job.Kind)
	assert.Equal(t, sub.Input.ID, sub.Job.InputFile)
	files, err := e.s.Files(e.ctx, sub.Run.ID)
	require.NoError(t, err)
	require.Len(t, files, 1)
	assert.Equal(t, sub.Input, files[0])
	stored := e.job(sub.Run.ID)
	assert.Equal(t, sub.Job, stored)

	e.clock.Advance(time.Second)
	l := e.claim("replica-a/1", 30*time.Second)
	assert.Equal(t, sub.Job.ID, l.Job.ID)
	assert.Equal(t, runstore.JobRunning, l.Job.State)
	assert.Equal(t, 1, l.Job.Attempt)
	assert.Equal(t, int64(1), l.Job.Token)
	assert.Equal(t, "replica-a/1", l.Job.Worker)
	assert.Equal(t, e.clock.Now().Add(30*time.Second).Truncate(time.Microsecond), l.Job.LeaseUntil)
	assert.Equal(t, runstore.StatusProcessing, l.Run.Status)
	assert.Greater(t, l.Run.Version, sub.Run.Version)
	assert.Equal(t, l.Job, e.job(sub.Run.ID))
	e.noJob() // held by a live lease

	e.clock.Advance(20 * time.Second)
	l2, err := e.s.Heartbeat(e.ctx, l, 30*time.Second)
	require.NoError(t, err)
	assert.Equal(t, e.clock.Now().Add(30*time.Second).Truncate(time.Microsecond), l2.Job.LeaseUntil)
	e.clock.Advance(20 * time.Second) // past the first lease, inside the renewed one
	e.noJob()

	// Progress goes through Update with the run's version as usual.
	r, err := e.s.Update(e.ctx, sub.Run.ID, runstore.Update{Version: l.Run.Version, Progress: ptr(0.5)})
	require.NoError(t, err)
	out := []runstore.FileMeta{inputMeta("VE_Correction_Delta_DYNO.csv"), inputMeta("result.json")}
	done, err := e.s.CompleteJob(e.ctx, l2, runstore.Result{Results: []byte(`{"cells":3}`), Message: "analyzed"}, out)
	require.NoError(t, err)
	assert.Equal(t, runstore.StatusCompleted, done.Status)
	assert.Greater(t, done.Version, r.Version)
	assert.JSONEq(t, `{"cells":3}`, string(done.Results))
	files, err = e.s.Files(e.ctx, sub.Run.ID)
	require.NoError(t, err)
	require.Len(t, files, 3)
	assert.Equal(t, out[0], files[1].FileMeta)
	assert.Equal(t, out[1], files[2].FileMeta)
	j := e.job(sub.Run.ID)
	assert.Equal(t, runstore.JobCompleted, j.State)
	assert.Zero(t, j.LateWrites)

	// The same lease cannot write twice: the result is stored once.
	_, err = e.s.CompleteJob(e.ctx, l2, runstore.Result{}, out)
	require.ErrorIs(t, err, runstore.ErrLeaseLost)
	files, err = e.s.Files(e.ctx, sub.Run.ID)
	require.NoError(t, err)
	assert.Len(t, files, 3)
	assert.Equal(t, int64(1), e.job(sub.Run.ID).LateWrites)
	e.noJob()
	h, err := e.s.History(e.ctx, sub.Run.ID)
	require.NoError(t, err)
	require.Len(t, h, 3)
	assert.Equal(t, runstore.StatusProcessing, h[1].To)
	assert.Contains(t, h[1].Reason, "replica-a/1")
	assert.Contains(t, h[1].Reason, "attempt 1 of 3")
}

func testJobLeaseExpiry(t *testing.T, open Opener) {
	e := newEnv(t, open)
	sub := e.submit("pull1.csv", 3)
	a := e.claim("replica-a/1", 10*time.Second)
	e.clock.Advance(10*time.Second + time.Microsecond)
	b := e.claim("replica-b/1", 10*time.Second)
	assert.Equal(t, sub.Job.ID, b.Job.ID)
	assert.Equal(t, 2, b.Job.Attempt)
	assert.Equal(t, int64(2), b.Job.Token)
	assert.Contains(t, b.Job.LastError, "replica-a/1")
	assert.Contains(t, b.Run.Message, "previous worker stopped")
	assert.Equal(t, runstore.StatusProcessing, b.Run.Status)
	h, err := e.s.History(e.ctx, sub.Run.ID)
	require.NoError(t, err)
	require.Len(t, h, 3, "creation, the first claim and the second")
	assert.Equal(t, runstore.StatusChange{From: runstore.StatusProcessing, To: runstore.StatusProcessing,
		At: e.clock.Now().Truncate(time.Microsecond), Reason: "claimed by replica-b/1 (attempt 2 of 3)"}, h[2])

	// The stalled worker wakes up: every write it tries is refused.
	_, err = e.s.Heartbeat(e.ctx, a, time.Minute)
	require.ErrorIs(t, err, runstore.ErrLeaseLost)
	_, err = e.s.CompleteJob(e.ctx, a, runstore.Result{Message: "late"}, []runstore.FileMeta{inputMeta("late.csv")})
	require.ErrorIs(t, err, runstore.ErrLeaseLost)
	_, err = e.s.FailJob(e.ctx, a, runstore.RunError{Code: "X", Message: "late"}, false)
	require.ErrorIs(t, err, runstore.ErrLeaseLost)
	require.ErrorIs(t, e.s.ReleaseJob(e.ctx, a, "late"), runstore.ErrLeaseLost)
	// A stale run version is refused too (the claim bumped it).
	_, err = e.s.Update(e.ctx, sub.Run.ID, runstore.Update{Version: a.Run.Version, Progress: ptr(0.9)})
	require.ErrorIs(t, err, runstore.ErrConflict)
	j := e.job(sub.Run.ID)
	assert.Equal(t, int64(4), j.LateWrites)
	assert.Equal(t, "replica-b/1", j.Worker)
	files, err := e.s.Files(e.ctx, sub.Run.ID)
	require.NoError(t, err)
	assert.Len(t, files, 1)

	done, err := e.s.CompleteJob(e.ctx, b, runstore.Result{Message: "on time"}, []runstore.FileMeta{inputMeta("out.csv")})
	require.NoError(t, err)
	assert.Equal(t, "on time", done.Message)
	files, err = e.s.Files(e.ctx, sub.Run.ID)
	require.NoError(t, err)
	assert.Len(t, files, 2)
}

func testJobAttemptsExhausted(t *testing.T, open Opener) {
	e := newEnv(t, open)
	sub := e.submit("crashes-the-worker.csv", 2)
	e.claim("a/1", 5*time.Second)
	e.clock.Advance(6 * time.Second)
	e.claim("b/1", 5*time.Second)
	e.clock.Advance(6 * time.Second)
	e.noJob() // the last attempt's lease expired: failed, not handed out
	r, err := e.s.Get(e.ctx, sub.Run.ID)
	require.NoError(t, err)
	assert.Equal(t, runstore.StatusFailed, r.Status)
	require.NotNil(t, r.Error)
	assert.Equal(t, "ATTEMPTS_EXHAUSTED", r.Error.Code)
	assert.Contains(t, r.Error.Message, "interrupted 2 times")
	assert.Contains(t, r.Error.Detail, "b/1")
	j := e.job(sub.Run.ID)
	assert.Equal(t, runstore.JobFailed, j.State)
	assert.Equal(t, 2, j.Attempt)
	c, err := e.s.JobCounts(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, runstore.JobCounts{Failed: 1}, c)
}

func testJobRetry(t *testing.T, open Opener) {
	e := newEnv(t, open)
	sub := e.submit("flaky.csv", 2)
	l := e.claim("a/1", time.Minute)
	r, err := e.s.FailJob(e.ctx, l, runstore.RunError{Stage: "writing", Code: "STORE_ERROR", Message: "the file store refused a write"}, true)
	require.NoError(t, err)
	assert.Equal(t, runstore.StatusProcessing, r.Status)
	assert.Equal(t, "retrying", r.Stage)
	assert.Contains(t, r.Message, "attempt 1 of 2 failed")
	j := e.job(sub.Run.ID)
	assert.Equal(t, runstore.JobAvailable, j.State)
	assert.Equal(t, e.clock.Now().Add(runstore.RetryDelay(1)).Truncate(time.Microsecond), j.RunAt)
	assert.Equal(t, "STORE_ERROR: the file store refused a write", j.LastError)
	c, err := e.s.JobCounts(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, runstore.JobCounts{Available: 1}, c)
	e.noJob() // backing off
	e.clock.Advance(runstore.RetryDelay(1))
	c, err = e.s.JobCounts(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, runstore.JobCounts{Available: 1, Due: 1}, c)
	l2 := e.claim("b/1", time.Minute)
	assert.Equal(t, 2, l2.Job.Attempt)
	// The last attempt fails for good even when retry is asked.
	r, err = e.s.FailJob(e.ctx, l2, runstore.RunError{Stage: "writing", Code: "STORE_ERROR", Message: "still refused"}, true)
	require.NoError(t, err)
	assert.Equal(t, runstore.StatusFailed, r.Status)
	assert.Equal(t, "still refused", r.Error.Message)
	assert.Equal(t, runstore.JobFailed, e.job(sub.Run.ID).State)
	e.clock.Advance(time.Hour)
	e.noJob()
}

func testJobFailPermanent(t *testing.T, open Opener) {
	e := newEnv(t, open)
	sub := e.submit("bad.csv", 3)
	l := e.claim("a/1", time.Minute)
	r, err := e.s.FailJob(e.ctx, l, runstore.RunError{Stage: "analysis", Code: "CSV_PARSING_ERROR", Message: "bad.csv:3:7: not a number"}, false)
	require.NoError(t, err)
	assert.Equal(t, runstore.StatusFailed, r.Status)
	assert.Equal(t, "CSV_PARSING_ERROR", r.Error.Code)
	j := e.job(sub.Run.ID)
	assert.Equal(t, runstore.JobFailed, j.State)
	assert.Equal(t, 1, j.Attempt)
	e.clock.Advance(time.Hour)
	e.noJob()
}

func testJobRelease(t *testing.T, open Opener) {
	e := newEnv(t, open)
	sub := e.submit("pull.csv", 1)
	l := e.claim("a/1", time.Minute)
	require.NoError(t, e.s.ReleaseJob(e.ctx, l, "replica a is shutting down"))
	j := e.job(sub.Run.ID)
	assert.Equal(t, runstore.JobAvailable, j.State)
	assert.Equal(t, 0, j.Attempt, "a release does not use up the attempt")
	r, err := e.s.Get(e.ctx, sub.Run.ID)
	require.NoError(t, err)
	assert.Contains(t, r.Message, "shutting down")
	// Due at once, for anyone; the single attempt is still there.
	l2 := e.claim("b/1", time.Minute)
	assert.Equal(t, 1, l2.Job.Attempt)
	assert.Equal(t, int64(2), l2.Job.Token)
	_, err = e.s.CompleteJob(e.ctx, l, runstore.Result{}, nil)
	require.ErrorIs(t, err, runstore.ErrLeaseLost)
	_, err = e.s.CompleteJob(e.ctx, l2, runstore.Result{}, nil)
	require.NoError(t, err)
}

func testJobConcurrentClaims(t *testing.T, open Opener) {
	e := newEnv(t, open)
	const jobs, workers = 40, 8
	want := map[string]bool{}
	for i := range jobs {
		want[e.submit(fmt.Sprintf("pull%02d.csv", i), 0).Run.ID] = true
	}
	var (
		mu      sync.Mutex
		claimed = map[string]int{}
		wg      sync.WaitGroup
		errs    = make(chan error, workers)
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				l, err := e.s.Claim(e.ctx, runstore.Claim{Worker: fmt.Sprintf("w/%d", w), Lease: time.Minute})
				if errors.Is(err, runstore.ErrNoJob) {
					return
				}
				if errors.Is(err, runstore.ErrConflict) || errors.Is(err, runstore.ErrUnavailable) {
					continue // a busy store; try again
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				claimed[l.Run.ID]++
				mu.Unlock()
				if _, err := e.s.CompleteJob(e.ctx, l, runstore.Result{}, []runstore.FileMeta{inputMeta("out-" + l.Run.ID)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, claimed, jobs)
	for id, n := range claimed {
		assert.True(t, want[id])
		assert.Equal(t, 1, n, "run %s claimed %d times", id, n)
		files, err := e.s.Files(e.ctx, id)
		require.NoError(t, err)
		assert.Len(t, files, 2)
	}
	c, err := e.s.JobCounts(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, runstore.JobCounts{Completed: jobs}, c)
}

func testJobCancelledRun(t *testing.T, open Opener) {
	e := newEnv(t, open)
	sub := e.submit("pull.csv", 0)
	_, err := e.s.Update(e.ctx, sub.Run.ID, runstore.Update{Version: sub.Run.Version, Status: runstore.StatusCancelled, Reason: "tuner cancelled"})
	require.NoError(t, err)
	e.noJob()
	assert.Equal(t, runstore.JobCancelled, e.job(sub.Run.ID).State)
}

func testJobDeletedRun(t *testing.T, open Opener) {
	e := newEnv(t, open)
	sub := e.submit("pull.csv", 0)
	l := e.claim("a/1", time.Minute)
	require.NoError(t, e.s.Delete(e.ctx, sub.Run.ID))
	_, err := e.s.Job(e.ctx, sub.Run.ID)
	require.ErrorIs(t, err, runstore.ErrNotFound)
	_, err = e.s.CompleteJob(e.ctx, l, runstore.Result{}, []runstore.FileMeta{inputMeta("x.csv")})
	require.ErrorIs(t, err, runstore.ErrLeaseLost)
	e.noJob()
	c, err := e.s.JobCounts(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, runstore.JobCounts{}, c)
}

func testJobValidation(t *testing.T, open Opener) {
	e := newEnv(t, open)
	ok := runstore.NewRun{Source: runstore.SourceUpload, Filename: "a.csv"}
	for name, j := range map[string]runstore.NewJob{
		"no input":      {},
		"bad checksum":  {Input: runstore.FileMeta{Name: "a.csv", SHA256: "abc", StorageKey: "k"}},
		"bad kind":      {Kind: "Analyze Now", Input: inputMeta("a.csv")},
		"many attempts": {MaxAttempts: runstore.MaxMaxAttempts + 1, Input: inputMeta("a.csv")},
		"neg attempts":  {MaxAttempts: -1, Input: inputMeta("a.csv")},
	} {
		_, err := e.s.Submit(e.ctx, ok, j)
		assert.ErrorIs(t, err, runstore.ErrInvalid, name)
	}
	_, err := e.s.Submit(e.ctx, runstore.NewRun{Source: "carrier-pigeon"}, runstore.NewJob{Input: inputMeta("a.csv")})
	assert.ErrorIs(t, err, runstore.ErrInvalid)
	page, err := e.s.List(e.ctx, runstore.Filter{})
	require.NoError(t, err)
	assert.Empty(t, page.Runs, "nothing half-stored")
	for name, c := range map[string]runstore.Claim{
		"no worker": {Lease: time.Second},
		"no lease":  {Worker: "a"},
		"newline":   {Worker: "a\nb", Lease: time.Second},
		"bad kind":  {Worker: "a", Lease: time.Second, Kinds: []string{"A B"}},
	} {
		_, err := e.s.Claim(e.ctx, c)
		assert.ErrorIs(t, err, runstore.ErrInvalid, name)
	}
	sub := e.submit("a.csv", 0)
	l := e.claim("a/1", time.Minute)
	_, err = e.s.Heartbeat(e.ctx, l, 0)
	assert.ErrorIs(t, err, runstore.ErrInvalid)
	_, err = e.s.Heartbeat(e.ctx, runstore.Lease{}, time.Second)
	assert.ErrorIs(t, err, runstore.ErrInvalid)
	_, err = e.s.Job(e.ctx, "nope")
	assert.ErrorIs(t, err, runstore.ErrInvalid)
	plain := e.create(runstore.NewRun{})
	_, err = e.s.Job(e.ctx, plain.ID)
	assert.ErrorIs(t, err, runstore.ErrNotFound)
	// A forged token is a lost lease, not someone else's job.
	forged := l
	forged.Job.Token = 99
	_, err = e.s.CompleteJob(e.ctx, forged, runstore.Result{}, nil)
	assert.ErrorIs(t, err, runstore.ErrLeaseLost)
	assert.Equal(t, runstore.JobRunning, e.job(sub.Run.ID).State)
}

func testJobKinds(t *testing.T, open Opener) {
	e := newEnv(t, open)
	_, err := e.s.Submit(e.ctx, runstore.NewRun{Source: runstore.SourceAPI}, runstore.NewJob{Kind: "replay", Input: inputMeta("r.csv")})
	require.NoError(t, err)
	_, err = e.s.Claim(e.ctx, runstore.Claim{Worker: "a", Lease: time.Minute, Kinds: []string{runstore.JobKindAnalyze}})
	require.ErrorIs(t, err, runstore.ErrNoJob)
	l, err := e.s.Claim(e.ctx, runstore.Claim{Worker: "a", Lease: time.Minute, Kinds: []string{"replay", runstore.JobKindAnalyze}})
	require.NoError(t, err)
	assert.Equal(t, "replay", l.Job.Kind)
}

func testJobRecoverLeavesQueue(t *testing.T, open Opener) {
	e := newEnv(t, open)
	sub := e.submit("queued.csv", 0)
	e.claim("a/1", time.Minute)
	plain := e.start(e.create(runstore.NewRun{}))
	ids, err := e.s.Recover(e.ctx, runstore.RunError{Code: "INTERRUPTED", Message: "restarted"})
	require.NoError(t, err)
	assert.Equal(t, []string{plain.ID}, ids)
	r, err := e.s.Get(e.ctx, sub.Run.ID)
	require.NoError(t, err)
	assert.Equal(t, runstore.StatusProcessing, r.Status, "the queue's runs are left to the queue")
}
