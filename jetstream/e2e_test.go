package jetstream_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/jetstream"
	"github.com/dynoai/dynoai/jetstream/jetstreamtest"
)

// scaledSleep waits d/scale: retry and Retry-After logic runs as in
// production, fifty times faster.
func scaledSleep(scale time.Duration) func(ctx context.Context, d time.Duration) error {
	return func(ctx context.Context, d time.Duration) error {
		t := time.NewTimer(d / scale)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

type e2eRig struct {
	srv   *jetstreamtest.Server
	store *jetstream.MemoryStore
	proc  *peakProcessor
}

func (r *e2eRig) start(t *testing.T, ctx context.Context) (*jetstream.Poller, chan error) {
	t.Helper()
	c, err := jetstream.NewHTTPClient(jetstream.HTTPOptions{BaseURL: r.srv.URL, APIKey: testKey,
		Timeout: 300 * time.Millisecond, DownloadTimeout: time.Second,
		Retry: jetstream.RetryPolicy{MaxAttempts: 3, BaseDelay: 50 * time.Millisecond},
		Sleep: scaledSleep(50)})
	require.NoError(t, err)
	p, err := jetstream.NewPoller(c, r.store, r.proc, jetstream.PollerOptions{
		Interval: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, PageSize: 7, Concurrency: 4,
		Retry: jetstream.RetryPolicy{MaxAttempts: 20, BaseDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond},
		Sleep: scaledSleep(1)})
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	return p, errc
}

func (r *e2eRig) count(t *testing.T, st jetstream.RunStatus) int {
	states, err := r.store.RunStates(context.Background(), st)
	require.NoError(t, err)
	return len(states)
}

func stopPoller(t *testing.T, cancel context.CancelFunc, errc chan error) {
	t.Helper()
	cancel()
	select {
	case err := <-errc:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("the poller did not stop")
	}
}

// TestEndToEndExactlyOnce: 50 runs behind a fake server that fails one
// request in five (5xx, stalls past the client timeout, 429 with
// Retry-After, truncated downloads, dropped connections, duplicated list
// items), runs that appear late with timestamps older than runs already
// seen, and a poller restarted midway. Every run must be analyzed exactly
// once and marked processed; none may be skipped.
func TestEndToEndExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end with real timeouts; skipped with -short")
	}
	runs := jetstreamtest.GenerateRuns(50, t0, time.Minute, 50)
	rig := &e2eRig{
		srv: jetstreamtest.NewServer(jetstreamtest.Options{APIKey: testKey, PageSize: 7,
			Chaos: jetstreamtest.Chaos{Seed: 2026, Rate: 0.2, RetryAfter: "1"}}),
		store: jetstream.NewMemoryStore(), proc: newPeakProcessor()}
	defer rig.srv.Close()
	rig.proc.delay = 5 * time.Millisecond   // analysis takes time: the restart may cut more short
	rig.proc.holdOne = make(chan string, 1) // and it cuts one short for certain
	publish := func(idx ...int) {
		for _, i := range idx {
			rig.srv.Add(runs[i])
		}
	}
	// One of each fault for certain, on top of the random ones.
	rig.srv.Inject(
		jetstreamtest.Fault{Kind: jetstreamtest.FaultDuplicate, Times: 3},
		jetstreamtest.Fault{Kind: jetstreamtest.FaultTruncate, RunID: runs[1].ID},
		jetstreamtest.Fault{Kind: jetstreamtest.FaultStall, Endpoint: jetstreamtest.EndpointDownload, RunID: runs[2].ID},
		jetstreamtest.Fault{Kind: jetstreamtest.FaultRateLimit, Endpoint: jetstreamtest.EndpointRun, RunID: runs[3].ID, Times: 3},
		jetstreamtest.Fault{Kind: jetstreamtest.FaultStatus, Endpoint: jetstreamtest.EndpointMark, RunID: runs[4].ID, Times: 5},
		jetstreamtest.Fault{Kind: jetstreamtest.FaultDrop, Endpoint: jetstreamtest.EndpointDownload, RunID: runs[5].ID, Times: 4},
	)
	late1 := []int{22, 25, 27}
	late2 := []int{44, 47}
	for i := range 30 {
		if !slices.Contains(late1, i) {
			publish(i)
		}
	}
	start := time.Now()

	// First poller: stopped midway.
	ctx1, cancel1 := context.WithCancel(context.Background())
	_, errc1 := rig.start(t, ctx1)
	require.Eventually(t, func() bool { return rig.count(t, jetstream.StatusDone) >= 12 }, 60*time.Second, 2*time.Millisecond)
	// Stop while a run is being analyzed (the processor holds one until its
	// context ends): the restart cuts it short.
	var heldRun string
	select {
	case heldRun = <-rig.proc.holdOne:
	case <-time.After(60 * time.Second):
		t.Fatal("no run reached analysis")
	}
	stopPoller(t, cancel1, errc1)
	doneAtRestart := rig.count(t, jetstream.StatusDone)
	t.Logf("restart after %d runs done", doneAtRestart)
	require.Less(t, doneAtRestart, 27, "the restart must happen midway")

	// Late runs (older than the newest already listed) and new ones.
	publish(late1...)
	for i := 30; i < 50; i++ {
		if !slices.Contains(late2, i) {
			publish(i)
		}
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	p2, errc2 := rig.start(t, ctx2)
	require.Eventually(t, func() bool { return rig.count(t, jetstream.StatusDone) >= 40 }, 60*time.Second, 2*time.Millisecond)
	publish(late2...)
	require.Eventually(t, func() bool {
		states, _ := rig.store.RunStates(context.Background(), jetstream.StatusDone)
		marked := 0
		for _, s := range states {
			if s.Marked {
				marked++
			}
		}
		return marked == 50
	}, 60*time.Second, 2*time.Millisecond)
	elapsed := time.Since(start)
	st := p2.Status()
	stopPoller(t, cancel2, errc2)

	completed, calls := rig.proc.snapshot()
	assert.Len(t, completed, 50)
	extraCalls := 0
	for _, r := range runs {
		assert.Equal(t, 1, completed[r.ID], "run %s analyzed exactly once", r.ID)
		extraCalls += calls[r.ID] - 1
		s, ok, err := rig.store.RunState(context.Background(), r.ID)
		require.NoError(t, err)
		require.True(t, ok, "run %s skipped", r.ID)
		assert.Equal(t, jetstream.StatusDone, s.Status)
		assert.Equal(t, r.DataPoints, s.Outcome.Rows)
		assert.True(t, rig.srv.Processed(r.ID))
		assert.Equal(t, 1, rig.srv.Marks(r.ID), "run %s marked once", r.ID)
	}
	assert.Zero(t, rig.count(t, jetstream.StatusFailed))
	assert.GreaterOrEqual(t, calls[heldRun], 2, "run %s, cut short by the restart, was analyzed again", heldRun)
	assert.Positive(t, extraCalls)
	inj := rig.srv.Injected()
	t.Logf("50 runs in %v (%.1f runs/s) through %d injected faults %v; %d processor calls cut short and retried; poller 2: %d retries, %d relisted",
		elapsed.Round(time.Millisecond), 50/elapsed.Seconds(), total(inj), inj, extraCalls, st.Retried, st.Relisted)
	for _, k := range []jetstreamtest.FaultKind{jetstreamtest.FaultStatus, jetstreamtest.FaultRateLimit,
		jetstreamtest.FaultStall, jetstreamtest.FaultTruncate, jetstreamtest.FaultDrop, jetstreamtest.FaultDuplicate} {
		assert.Positive(t, inj[k], "fault %v was never injected", k)
	}
}

func total(m map[jetstreamtest.FaultKind]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// BenchmarkEndToEnd measures runs per second from a fault-free fake server
// through the poller, the converter and a processor that reads every sample.
func BenchmarkEndToEnd(b *testing.B) {
	const n = 50
	runs := jetstreamtest.GenerateRuns(n, t0, time.Minute, 77)
	b.ReportAllocs()
	var rows int
	for b.Loop() {
		srv := jetstreamtest.NewServer(jetstreamtest.Options{PageSize: 100})
		srv.Add(runs...)
		c, err := jetstream.NewHTTPClient(jetstream.HTTPOptions{BaseURL: srv.URL, APIKey: testKey})
		if err != nil {
			b.Fatal(err)
		}
		proc := newPeakProcessor()
		p, err := jetstream.NewPoller(c, jetstream.NewMemoryStore(), proc, jetstream.PollerOptions{Concurrency: 2})
		if err != nil {
			b.Fatal(err)
		}
		res, err := p.Poll(context.Background())
		if err != nil || len(res.Processed) != n {
			b.Fatalf("processed %d, err %v", len(res.Processed), err)
		}
		srv.Close()
		for _, r := range runs {
			rows += r.DataPoints
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "runs/s")
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
