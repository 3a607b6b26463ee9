package httpapi

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynoai/dynoai/metrics"
	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/ve"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// flakyFiles refuses its failAt-th Put, as a storage service that is
// briefly down would.
type flakyFiles struct {
	runstore.FileStore
	failAt int64
	n      atomic.Int64
}

func (f *flakyFiles) Put(ctx context.Context, r io.Reader) (runstore.Blob, error) {
	if f.n.Add(1) == f.failAt {
		return runstore.Blob{}, errors.New("file store: connection reset (simulated)")
	}
	return f.FileStore.Put(ctx, r)
}

// TestWorkerRetriesStorageError: an attempt that fails on storing its
// results is tried again after a back-off and completes; the run is never
// failed in between.
func TestWorkerRetriesStorageError(t *testing.T) {
	// The upload is stored (Put 1); its first result file is not (Put 2).
	files := &flakyFiles{FileStore: runstore.NewMemFileStore(), failAt: 2}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Options{Registerer: reg})
	require.NoError(t, err)
	e := newEnv(t, func(c *Config) { c.Files = files; c.Metrics = m; c.JobPoll = 20 * time.Millisecond })
	r := e.upload(t, "a.csv", testLog(t), nil, nil)
	require.Equal(t, 202, r.code)
	id := r.json(t)["run_id"].(string)
	run := e.wait(t, id)
	require.Equal(t, runstore.StatusCompleted, run.Status, "%+v", run.Error)
	j, err := e.runs.Job(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, 2, j.Attempt)
	h, err := e.runs.History(context.Background(), id)
	require.NoError(t, err)
	for _, ch := range h {
		assert.NotEqual(t, runstore.StatusFailed, ch.To)
	}
	assert.Equal(t, 1.0, testutil.ToFloat64(m.JobEvents(metrics.JobRetryScheduled)))
	require.Eventually(t, func() bool { return testutil.ToFloat64(m.JobEvents(metrics.JobCompleted)) == 1 },
		10*time.Second, 5*time.Millisecond, "the worker records the completion just after committing it")
}

// stallStore blocks lease renewals until released, as a process paused by
// the kernel (SIGSTOP, a frozen VM) would: its worker neither renews its
// lease nor notices losing it.
type stallStore struct {
	runstore.RunStore
	release chan struct{}
}

func (s stallStore) Heartbeat(ctx context.Context, l runstore.Lease, d time.Duration) (runstore.Lease, error) {
	<-s.release
	// The renewal the process was making when it was paused arrives late,
	// whatever its deadline said.
	return s.RunStore.Heartbeat(context.WithoutCancel(ctx), l, d)
}

// TestStalledWorkerWritesNothing: replica A stalls mid-analysis past its
// lease; replica B takes the job and completes it; when A wakes up and
// tries to store its result, the store refuses (the lease's token is
// stale), so the run has one result and one set of files.
func TestStalledWorkerWritesNothing(t *testing.T) {
	shared := runstore.NewMemory(runstore.Options{})
	files := runstore.NewMemFileStore()
	stall := stallStore{RunStore: shared, release: make(chan struct{})}
	var once sync.Once
	wake := func() { once.Do(func() { close(stall.release) }) }
	t.Cleanup(wake)
	gate := newGate(t)
	regA := prometheus.NewRegistry()
	mA, err := metrics.New(metrics.Options{Registerer: regA})
	require.NoError(t, err)
	a := newEnv(t, func(c *Config) {
		c.Runs, c.Files, c.Replica, c.Metrics = stall, files, "replica-a", mA
		c.JobLease, c.JobHeartbeat, c.JobPoll = 300*time.Millisecond, 100*time.Millisecond, 20*time.Millisecond
		c.NewAnalyzer = func(ve.Options) (ve.Analyzer, error) { return gate, nil }
	})
	r := a.upload(t, "a.csv", testLog(t), nil, nil)
	require.Equal(t, 202, r.code)
	id := r.json(t)["run_id"].(string)
	<-gate.started // A holds the job, and stalls

	b := newEnv(t, func(c *Config) {
		c.Runs, c.Files, c.Replica = shared, files, "replica-b"
		c.JobLease, c.JobHeartbeat, c.JobPoll = 300*time.Millisecond, 100*time.Millisecond, 20*time.Millisecond
	})
	run := b.wait(t, id)
	require.Equal(t, runstore.StatusCompleted, run.Status)
	j, err := shared.Job(context.Background(), id)
	require.NoError(t, err)
	assert.Contains(t, j.Worker, "replica-b/")
	filesBefore, err := shared.Files(context.Background(), id)
	require.NoError(t, err)

	// A wakes up and finishes its analysis: every write it tries is refused.
	wake()
	close(gate.release)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(mA.JobEvents(metrics.JobLeaseLost)) >= 1
	}, 10*time.Second, 10*time.Millisecond)
	j, err = shared.Job(context.Background(), id)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, j.LateWrites, int64(1), "the refused writes are counted")
	filesAfter, err := shared.Files(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, filesBefore, filesAfter, "one set of files")
	final, err := shared.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, run.Results, final.Results, "one result, B's")
}
