package jetstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/jetstream"
	"github.com/dynoai/dynoai/jetstream/jetstreamtest"
)

// peakProcessor is a real processor: it reads every sample, computes peak
// power from torque and RPM, and checks it against Jetstream's metadata and
// the row count against data_points. It records each successful completion.
type peakProcessor struct {
	mu        sync.Mutex
	completed map[string]int
	calls     map[string]int
	delay     time.Duration
	// holdOne, when set before the processor is used, receives the id of
	// the first run to reach analysis, which then waits for its context to
	// end: a test can stop the poller while that run is being analyzed.
	holdOne chan string
	held    atomic.Bool
}

func newPeakProcessor() *peakProcessor {
	return &peakProcessor{completed: map[string]int{}, calls: map[string]int{}}
}

func (p *peakProcessor) Process(ctx context.Context, run jetstream.RunMetadata, src dyno.Source) (jetstream.Outcome, error) {
	p.mu.Lock()
	p.calls[run.ID]++
	p.mu.Unlock()
	var s dyno.Sample
	rows, peak, peakRPM := 0, 0.0, 0.0
	for {
		err := src.Next(ctx, &s)
		if err == io.EOF {
			break
		}
		if err != nil {
			return jetstream.Outcome{}, err
		}
		rows++
		if hp := s.Torque * s.RPM / 5252; hp > peak {
			peak, peakRPM = hp, s.RPM
		}
	}
	if p.holdOne != nil && p.held.CompareAndSwap(false, true) {
		p.holdOne <- run.ID
		<-ctx.Done()
		return jetstream.Outcome{}, ctx.Err()
	}
	if p.delay > 0 {
		select {
		case <-time.After(p.delay):
		case <-ctx.Done():
			return jetstream.Outcome{}, ctx.Err()
		}
	}
	if run.DataPoints != 0 && rows != run.DataPoints {
		return jetstream.Outcome{}, fmt.Errorf("run %s: %d rows, metadata says %d", run.ID, rows, run.DataPoints)
	}
	if run.PeakHP != 0 && math.Abs(peak-run.PeakHP) > 0.01*run.PeakHP {
		return jetstream.Outcome{}, fmt.Errorf("run %s: peak %.1f HP, metadata says %.1f", run.ID, peak, run.PeakHP)
	}
	p.mu.Lock()
	p.completed[run.ID]++
	p.mu.Unlock()
	return jetstream.Outcome{Summary: map[string]float64{"peak_hp": peak, "peak_hp_rpm": peakRPM}}, nil
}

func (p *peakProcessor) snapshot() (completed, calls map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	completed, calls = map[string]int{}, map[string]int{}
	for k, v := range p.completed {
		completed[k] = v
	}
	for k, v := range p.calls {
		calls[k] = v
	}
	return
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type pollerFixture struct {
	srv   *jetstreamtest.Server
	store *jetstream.MemoryStore
	proc  *peakProcessor
	clk   *clock
	p     *jetstream.Poller
	runs  []jetstreamtest.Run
}

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func newPollerFixture(t *testing.T, n int, mod func(*jetstream.PollerOptions)) *pollerFixture {
	t.Helper()
	f := &pollerFixture{srv: jetstreamtest.NewServer(jetstreamtest.Options{APIKey: testKey, PageSize: 4}),
		store: jetstream.NewMemoryStore(), proc: newPeakProcessor(), clk: &clock{now: t0.Add(time.Hour)}}
	t.Cleanup(f.srv.Close)
	f.runs = jetstreamtest.GenerateRuns(n, t0, time.Minute, 9)
	f.srv.Add(f.runs...)
	c, _ := newClient(t, f.srv.URL, func(o *jetstream.HTTPOptions) { o.Retry.MaxAttempts = 1 })
	o := jetstream.PollerOptions{Now: f.clk.Now, Rand: func() float64 { return 0.5 },
		Retry: jetstream.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Second, NoJitter: true}}
	if mod != nil {
		mod(&o)
	}
	var err error
	f.p, err = jetstream.NewPoller(c, f.store, f.proc, o)
	require.NoError(t, err)
	return f
}

func (f *pollerFixture) state(t *testing.T, id string) jetstream.RunState {
	t.Helper()
	s, ok, err := f.store.RunState(context.Background(), id)
	require.NoError(t, err)
	require.True(t, ok, "no state for %s", id)
	return s
}

func TestPollerProcessesAndMarks(t *testing.T) {
	f := newPollerFixture(t, 6, nil)
	events, stop := f.p.Subscribe(100)
	res, err := f.p.Poll(context.Background())
	require.NoError(t, err)
	stop()
	assert.Len(t, res.New, 6)
	assert.Len(t, res.Processed, 6)
	for _, r := range f.runs {
		s := f.state(t, r.ID)
		assert.Equal(t, jetstream.StatusDone, s.Status)
		assert.True(t, s.Marked)
		assert.Equal(t, r.DataPoints, s.Outcome.Rows)
		assert.InDelta(t, r.PeakHP, s.Outcome.Summary["peak_hp"], 0.01*r.PeakHP)
		assert.True(t, f.srv.Processed(r.ID))
		assert.Equal(t, 1, f.srv.Marks(r.ID))
	}
	cur, _ := f.store.Cursor(context.Background())
	assert.True(t, cur.Equal(f.runs[5].Timestamp), "cursor = newest listed timestamp, got %v", cur)

	var seq []jetstream.RunStatus
	for e := range events {
		if e.RunID == f.runs[0].ID {
			seq = append(seq, e.Status)
		}
	}
	assert.Equal(t, []jetstream.RunStatus{jetstream.StatusQueued, jetstream.StatusDownloading,
		jetstream.StatusConverting, jetstream.StatusAnalyzing, jetstream.StatusDone}, seq)

	st := f.p.Status()
	assert.True(t, st.Connected)
	assert.Equal(t, 6, st.Done)
	assert.Empty(t, st.Error)

	// A second poll lists the overlap again and does nothing.
	res, err = f.p.Poll(context.Background())
	require.NoError(t, err)
	assert.Empty(t, res.New)
	assert.Empty(t, res.Processed)
	completed, _ := f.proc.snapshot()
	for _, r := range f.runs {
		assert.Equal(t, 1, completed[r.ID])
	}
}

// The predecessor's worst defect: a failed list looked like "no runs" and
// moved the cursor, skipping runs created during the outage.
func TestPollerListFailureKeepsCursor(t *testing.T) {
	f := newPollerFixture(t, 3, nil)
	_, err := f.p.Poll(context.Background())
	require.NoError(t, err)
	cur0, _ := f.store.Cursor(context.Background())

	late := jetstreamtest.GenerateRuns(10, t0, time.Minute, 9)[3:] // runs 3..9 appear during an outage
	f.srv.Add(late...)
	f.srv.Inject(jetstreamtest.Fault{Kind: jetstreamtest.FaultStatus, Endpoint: jetstreamtest.EndpointList, Status: 503, Times: 3})
	for range 3 {
		res, err := f.p.Poll(context.Background())
		assert.ErrorIs(t, err, jetstream.ErrServer)
		assert.Empty(t, res.New)
		cur, _ := f.store.Cursor(context.Background())
		assert.True(t, cur.Equal(cur0), "a failed list must not move the cursor")
	}
	st := f.p.Status()
	assert.False(t, st.Connected)
	assert.Equal(t, 3, st.ConsecutiveFailures)
	assert.Contains(t, st.Error, "HTTP 503")

	res, err := f.p.Poll(context.Background())
	require.NoError(t, err)
	assert.Len(t, res.New, 7)
	assert.Len(t, res.Processed, 7)
	assert.Zero(t, f.p.Status().ConsecutiveFailures)
}

// A failure on a later page keeps what earlier pages recorded and does not
// move the cursor.
func TestPollerPartialListing(t *testing.T) {
	f := newPollerFixture(t, 10, func(o *jetstream.PollerOptions) { o.RecordOnly = true })
	// Page 1 (4 runs) passes, page 2 fails.
	f.srv.Inject(jetstreamtest.Fault{Kind: jetstreamtest.FaultStatus, Endpoint: jetstreamtest.EndpointList, After: 1})
	res, err := f.p.Poll(context.Background())
	require.ErrorIs(t, err, jetstream.ErrServer)
	assert.Len(t, res.New, 4, "what page 1 listed is recorded")
	cur, _ := f.store.Cursor(context.Background())
	assert.True(t, cur.IsZero(), "but the cursor does not move")
	res, err = f.p.Poll(context.Background())
	require.NoError(t, err)
	assert.Len(t, res.New, 6)
	assert.Empty(t, res.Processed, "RecordOnly records without processing")
	queued, _ := f.store.RunStates(context.Background(), jetstream.StatusQueued)
	assert.Len(t, queued, 10)
	cur, _ = f.store.Cursor(context.Background())
	assert.True(t, cur.Equal(f.runs[9].Timestamp))
}

func TestPollerDeduplicates(t *testing.T) {
	f := newPollerFixture(t, 5, func(o *jetstream.PollerOptions) { o.PageSize = 2 })
	f.srv.Inject(jetstreamtest.Fault{Kind: jetstreamtest.FaultDuplicate, Times: -1})
	f.srv.Add(f.runs[2]) // re-published with the same id
	res, err := f.p.Poll(context.Background())
	require.NoError(t, err)
	assert.Len(t, res.New, 5)
	assert.Len(t, res.Processed, 5)
	assert.Positive(t, f.p.Status().Relisted)
	completed, calls := f.proc.snapshot()
	for _, r := range f.runs {
		assert.Equal(t, 1, completed[r.ID])
		assert.Equal(t, 1, calls[r.ID])
	}
}

func TestPollerRunFailures(t *testing.T) {
	f := newPollerFixture(t, 4, nil)
	bad := f.runs[1]
	bad.Data = jetstreamtest.Pull{PeakHP: 80, PeakTorque: 90, Dialect: jetstreamtest.DialectNoMAP}.CSV()
	f.srv.Add(bad)
	f.srv.Inject(
		jetstreamtest.Fault{Kind: jetstreamtest.FaultStatus, Endpoint: jetstreamtest.EndpointDownload, RunID: f.runs[2].ID, Times: -1},
		jetstreamtest.Fault{Kind: jetstreamtest.FaultTruncate, RunID: f.runs[3].ID},
	)
	res, err := f.p.Poll(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{f.runs[0].ID}, res.Processed)
	assert.Equal(t, []string{f.runs[1].ID}, res.Failed)
	assert.ElementsMatch(t, []string{f.runs[2].ID, f.runs[3].ID}, res.Retrying)

	s := f.state(t, f.runs[1].ID)
	assert.Equal(t, jetstream.StatusFailed, s.Status)
	assert.Equal(t, jetstream.StatusConverting, s.Error.Stage)
	assert.Contains(t, s.Error.Message, "missing required columns")
	assert.Contains(t, s.Error.Message, "map")
	assert.False(t, f.srv.Processed(f.runs[1].ID))

	s = f.state(t, f.runs[3].ID)
	assert.Equal(t, jetstream.StatusQueued, s.Status)
	assert.Contains(t, []jetstream.RunStatus{jetstream.StatusConverting, jetstream.StatusAnalyzing}, s.Error.Stage)
	assert.Contains(t, s.Error.Message, "truncated")
	assert.Equal(t, t0.Add(time.Hour+time.Second), s.NextAttempt)

	// Not due yet: nothing happens.
	res, err = f.p.Poll(context.Background())
	require.NoError(t, err)
	assert.Empty(t, res.Processed)
	f.clk.Advance(time.Second)
	res, err = f.p.Poll(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{f.runs[3].ID}, res.Processed, "the truncated download succeeds on retry")
	assert.Equal(t, []string{f.runs[2].ID}, res.Retrying)
	f.clk.Advance(2 * time.Second)
	res, err = f.p.Poll(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{f.runs[2].ID}, res.Failed, "given up after MaxAttempts")
	s = f.state(t, f.runs[2].ID)
	assert.Equal(t, 3, s.Attempts)
	assert.Contains(t, s.Error.Message, "HTTP 500")
	assert.Equal(t, 2, f.p.Status().Failed)
}

func TestPollerMarkFailureRetriedWithoutReprocessing(t *testing.T) {
	f := newPollerFixture(t, 2, nil)
	f.srv.Inject(jetstreamtest.Fault{Kind: jetstreamtest.FaultStatus, Endpoint: jetstreamtest.EndpointMark, Times: 2})
	_, err := f.p.Poll(context.Background())
	require.NoError(t, err)
	for _, r := range f.runs {
		assert.Equal(t, jetstream.StatusDone, f.state(t, r.ID).Status)
		assert.False(t, f.state(t, r.ID).Marked)
	}
	_, err = f.p.Poll(context.Background())
	require.NoError(t, err)
	_, calls := f.proc.snapshot()
	for _, r := range f.runs {
		assert.True(t, f.state(t, r.ID).Marked)
		assert.True(t, f.srv.Processed(r.ID))
		assert.Equal(t, 1, calls[r.ID])
	}
}

func TestPollerSkipsRunsAlreadyProcessed(t *testing.T) {
	f := newPollerFixture(t, 2, nil)
	done := f.runs[0]
	done.Processed = true
	f.srv.Add(done)
	res, err := f.p.Poll(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{f.runs[1].ID}, res.New)
	assert.Equal(t, jetstream.StatusSkipped, f.state(t, f.runs[0].ID).Status)
}

// A run a crashed process left mid-pipeline is requeued and processed.
func TestPollerRecoversInterruptedRuns(t *testing.T) {
	f := newPollerFixture(t, 1, nil)
	ctx := context.Background()
	require.NoError(t, f.store.PutRunState(ctx, jetstream.RunState{Run: f.runs[0].Run, Status: jetstream.StatusAnalyzing, Attempts: 1}))
	require.NoError(t, f.store.SetCursor(ctx, f.runs[0].Timestamp))
	res, err := f.p.Poll(ctx)
	require.NoError(t, err)
	assert.Empty(t, res.New)
	assert.Equal(t, []string{f.runs[0].ID}, res.Processed)
	assert.Equal(t, 2, f.state(t, f.runs[0].ID).Attempts)
}

func TestPollerCancelRequeues(t *testing.T) {
	f := newPollerFixture(t, 2, nil)
	f.proc.delay = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	events, stop := f.p.Subscribe(50)
	defer stop()
	done := make(chan error, 1)
	go func() { _, err := f.p.Poll(ctx); done <- err }()
	for e := range events {
		if e.Status == jetstream.StatusAnalyzing {
			break
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Poll did not stop on cancellation")
	}
	for _, r := range f.runs {
		s := f.state(t, r.ID)
		assert.Equal(t, jetstream.StatusQueued, s.Status)
		assert.Zero(t, s.Attempts, "an interrupted attempt does not count")
	}
	completed, _ := f.proc.snapshot()
	assert.Empty(t, completed)
}

func TestPollerRunStopsOnCancel(t *testing.T) {
	f := newPollerFixture(t, 3, func(o *jetstream.PollerOptions) { o.Interval = 10 * time.Millisecond; o.Now = nil })
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- f.p.Run(ctx) }()
	require.Eventually(t, func() bool { return f.p.Status().Done == 3 }, 10*time.Second, 5*time.Millisecond)
	assert.True(t, f.p.Status().Running)
	assert.Error(t, f.p.Run(ctx), "Run twice at once")
	cancel()
	select {
	case err := <-errc:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
	assert.False(t, f.p.Status().Running)
}

// A poll backs off after list failures, honouring Retry-After.
func TestPollerBacksOff(t *testing.T) {
	var waits []time.Duration
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newPollerFixture(t, 1, func(o *jetstream.PollerOptions) {
		o.Interval = time.Second
		o.MaxBackoff = 5 * time.Second
		o.Sleep = func(_ context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			waits = append(waits, d)
			if len(waits) == 6 {
				cancel()
				return context.Canceled
			}
			return nil
		}
	})
	f.srv.Inject(
		jetstreamtest.Fault{Kind: jetstreamtest.FaultStatus, Endpoint: jetstreamtest.EndpointList, Times: 4},
		jetstreamtest.Fault{Kind: jetstreamtest.FaultRateLimit, Endpoint: jetstreamtest.EndpointList, RetryAfter: "30"},
	)
	require.NoError(t, f.p.Run(ctx))
	assert.Equal(t, []time.Duration{2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second, 30 * time.Second, time.Second}, waits)
}

func TestNewPollerValidates(t *testing.T) {
	_, err := jetstream.NewPoller(nil, jetstream.NewMemoryStore(), nil, jetstream.PollerOptions{})
	assert.Error(t, err)
	c, _ := newClient(t, "http://127.0.0.1:1", nil)
	_, err = jetstream.NewPoller(c, jetstream.NewMemoryStore(), nil, jetstream.PollerOptions{})
	assert.ErrorContains(t, err, "processor")
	_, err = jetstream.NewPoller(c, jetstream.NewMemoryStore(), nil, jetstream.PollerOptions{RecordOnly: true})
	assert.NoError(t, err)
}

// failingStore fails writes after a number of them.
type failingStore struct {
	*jetstream.MemoryStore
	left int
}

func (s *failingStore) PutRunState(ctx context.Context, st jetstream.RunState) error {
	if s.left <= 0 {
		return errors.New("disk full")
	}
	s.left--
	return s.MemoryStore.PutRunState(ctx, st)
}

func TestPollerStopsOnStoreFailure(t *testing.T) {
	srv := jetstreamtest.NewServer(jetstreamtest.Options{})
	defer srv.Close()
	srv.Add(jetstreamtest.GenerateRuns(3, t0, time.Minute, 4)...)
	c, _ := newClient(t, srv.URL, nil)
	st := &failingStore{MemoryStore: jetstream.NewMemoryStore(), left: 2}
	p, err := jetstream.NewPoller(c, st, newPeakProcessor(), jetstream.PollerOptions{Interval: time.Millisecond})
	require.NoError(t, err)
	err = p.Run(context.Background())
	assert.ErrorContains(t, err, "disk full")
	cur, _ := st.Cursor(context.Background())
	assert.True(t, cur.IsZero(), "the cursor never passes a run that was not recorded")
}

// A run that appears later than Overlap behind the newest is missed by the
// windowed list, and found by the periodic full scan.
func TestPollerFullScanFindsVeryLateRuns(t *testing.T) {
	for _, every := range []int{0, 3} {
		t.Run(fmt.Sprint("every ", every), func(t *testing.T) {
			f := newPollerFixture(t, 0, func(o *jetstream.PollerOptions) {
				o.Overlap = 5 * time.Minute
				o.FullScanEvery = every
			})
			runs := jetstreamtest.GenerateRuns(30, t0, time.Minute, 8)
			f.srv.Add(runs[1:]...)
			for range 2 {
				_, err := f.p.Poll(context.Background())
				require.NoError(t, err)
			}
			f.srv.Add(runs[0]) // 29 minutes older than the newest
			var found bool
			for range 4 {
				res, err := f.p.Poll(context.Background())
				require.NoError(t, err)
				found = found || slices.Contains(res.Processed, runs[0].ID)
			}
			assert.Equal(t, every > 0, found)
		})
	}
}

func TestPollerStatusJSON(t *testing.T) {
	b, err := json.Marshal(jetstream.PollerStatus{Connected: true, LastPoll: t0, Queued: 2, Active: []string{"JS-1"}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"running":false,"connected":true,"last_poll":"2026-03-01T10:00:00Z","consecutive_failures":0,
		"pending_runs":2,"processing_runs":["JS-1"],"done":0,"failed":0,"retried":0,"relisted":0}`, string(b))
}

// TestPollerHooks: the hooks see every listing with its outcome and every
// event, even those a full subscription drops, and never a listing the
// caller's context cut short.
func TestPollerHooks(t *testing.T) {
	type listing struct {
		d   time.Duration
		err error
	}
	var (
		mu       sync.Mutex
		listings []listing
		events   []jetstream.Event
	)
	f := newPollerFixture(t, 4, func(o *jetstream.PollerOptions) {
		o.Hooks = jetstream.PollerHooks{
			Listed: func(d time.Duration, err error) {
				mu.Lock()
				defer mu.Unlock()
				listings = append(listings, listing{d, err})
			},
			Event: func(e jetstream.Event) {
				mu.Lock()
				defer mu.Unlock()
				events = append(events, e)
			},
		}
	})
	bad := f.runs[1]
	bad.Data = jetstreamtest.Pull{PeakHP: 80, PeakTorque: 90, Dialect: jetstreamtest.DialectNoMAP}.CSV()
	f.srv.Add(bad)
	_, drop := f.p.Subscribe(0) // a subscriber with no room misses every event
	defer drop()

	_, err := f.p.Poll(context.Background())
	require.NoError(t, err)
	f.srv.Inject(jetstreamtest.Fault{Kind: jetstreamtest.FaultStatus, Endpoint: jetstreamtest.EndpointList, Status: 503})
	_, err = f.p.Poll(context.Background())
	require.ErrorIs(t, err, jetstream.ErrServer)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _ = f.p.Poll(ctx)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, listings, 2, "the cancelled poll's listing is not reported")
	assert.NoError(t, listings[0].err)
	assert.Positive(t, listings[0].d)
	assert.ErrorIs(t, listings[1].err, jetstream.ErrServer)
	assert.Positive(t, f.p.Status().DroppedEvents, "the subscriber missed events")
	count := map[jetstream.RunStatus]int{}
	for _, e := range events {
		count[e.Status]++
	}
	assert.Equal(t, map[jetstream.RunStatus]int{jetstream.StatusQueued: 4, jetstream.StatusDownloading: 4,
		jetstream.StatusConverting: 4, jetstream.StatusAnalyzing: 3, jetstream.StatusDone: 3, jetstream.StatusFailed: 1}, count)
}
