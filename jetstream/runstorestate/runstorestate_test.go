package runstorestate_test

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/jetstream"
	"github.com/dynoai/dynoai/jetstream/jetstreamtest"
	"github.com/dynoai/dynoai/jetstream/runstorestate"
	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/runstoretest"
	"github.com/dynoai/dynoai/runstore/sqlstore"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func TestStateRoundTrip(t *testing.T) {
	ctx := context.Background()
	rs := runstore.NewMemory(runstore.Options{})
	s := runstorestate.New(rs, runstorestate.Options{})
	run := jetstream.Run{ID: "JS-1", Timestamp: t0, Vehicle: "2021 FXLRST", DataPoints: 900}

	_, ok, err := s.RunState(ctx, "JS-1")
	require.NoError(t, err)
	assert.False(t, ok)

	steps := []struct {
		put  jetstream.RunState
		want jetstream.RunStatus
	}{
		{jetstream.RunState{Run: run, Status: jetstream.StatusQueued}, jetstream.StatusQueued},
		{jetstream.RunState{Run: run, Status: jetstream.StatusDownloading, Attempts: 1}, jetstream.StatusDownloading},
		{jetstream.RunState{Run: run, Status: jetstream.StatusQueued, Attempts: 1,
			Error: &jetstream.RunError{Stage: jetstream.StatusDownloading, Message: "HTTP 503", Retry: true}}, jetstream.StatusQueued},
		{jetstream.RunState{Run: run, Status: jetstream.StatusAnalyzing, Attempts: 2}, jetstream.StatusAnalyzing},
		{jetstream.RunState{Run: run, Status: jetstream.StatusDone, Attempts: 2,
			Outcome: &jetstream.Outcome{Rows: 900, Summary: map[string]float64{"peak_hp": 118.4, "peak_torque": 123.7}}}, jetstream.StatusDone},
		{jetstream.RunState{Run: run, Status: jetstream.StatusDone, Attempts: 2, Marked: true}, jetstream.StatusDone},
	}
	for i, st := range steps {
		require.NoError(t, s.PutRunState(ctx, st.put), "step %d", i)
		got, ok, err := s.RunState(ctx, "JS-1")
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, st.want, got.Status, "step %d", i)
		assert.Equal(t, run.ID, got.Run.ID)
		assert.True(t, run.Timestamp.Equal(got.Run.Timestamp))
		if st.want != jetstream.StatusDone {
			assert.Equal(t, st.put.Attempts, got.Attempts, "step %d", i)
		}
		if i == 2 {
			require.NotNil(t, got.Error)
			assert.Equal(t, "HTTP 503", got.Error.Message)
		}
	}
	page, err := rs.List(ctx, runstore.Filter{JetstreamID: "JS-1"})
	require.NoError(t, err)
	require.Len(t, page.Runs, 1, "one store run per Jetstream run")
	r := page.Runs[0]
	assert.Equal(t, runstore.StatusCompleted, r.Status)
	assert.Equal(t, runstore.SourceJetstream, r.Source)
	assert.Equal(t, "2021 FXLRST", r.Vehicle)
	require.NotNil(t, r.Stats.PeakHP)
	assert.Equal(t, 118.4, *r.Stats.PeakHP)
	got, _, _ := s.RunState(ctx, "JS-1")
	assert.Equal(t, 900, got.Outcome.Rows)
	hist, err := rs.History(ctx, r.ID)
	require.NoError(t, err)
	assert.Len(t, hist, 3, "created, processing, completed")

	// Failed and skipped runs.
	require.NoError(t, s.PutRunState(ctx, jetstream.RunState{Run: jetstream.Run{ID: "JS-2", Timestamp: t0.Add(time.Minute)}, Status: jetstream.StatusQueued}))
	require.NoError(t, s.PutRunState(ctx, jetstream.RunState{Run: jetstream.Run{ID: "JS-2", Timestamp: t0.Add(time.Minute)}, Status: jetstream.StatusFailed,
		Error: &jetstream.RunError{Stage: jetstream.StatusConverting, Message: "missing required columns: map"}}))
	require.NoError(t, s.PutRunState(ctx, jetstream.RunState{Run: jetstream.Run{ID: "JS-3", Timestamp: t0.Add(2 * time.Minute), Processed: true},
		Status: jetstream.StatusSkipped, Marked: true}))
	failed, err := s.RunStates(ctx, jetstream.StatusFailed)
	require.NoError(t, err)
	require.Len(t, failed, 1)
	assert.Equal(t, jetstream.StatusConverting, failed[0].Error.Stage)
	all, err := s.RunStates(ctx)
	require.NoError(t, err)
	require.Len(t, all, 3)
	assert.Equal(t, []string{"JS-1", "JS-2", "JS-3"}, []string{all[0].Run.ID, all[1].Run.ID, all[2].Run.ID}, "oldest first")
	assert.Equal(t, jetstream.StatusSkipped, all[2].Status)

	// The cursor, derived from the recorded runs.
	cur, err := runstorestate.New(rs, runstorestate.Options{}).Cursor(ctx)
	require.NoError(t, err)
	assert.True(t, cur.Equal(t0.Add(2*time.Minute)), "got %v", cur)
}

func TestCursorFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cursor.json")
	rs := runstore.NewMemory(runstore.Options{})
	s := runstorestate.New(rs, runstorestate.Options{CursorPath: path})
	cur, err := s.Cursor(ctx)
	require.NoError(t, err)
	assert.True(t, cur.IsZero())
	require.NoError(t, s.SetCursor(ctx, t0))
	cur, err = runstorestate.New(rs, runstorestate.Options{CursorPath: path}).Cursor(ctx)
	require.NoError(t, err)
	assert.True(t, cur.Equal(t0))
}

// peakHP is a processor that reads every sample and checks peak power
// against the metadata; it counts completions.
type peakHP struct {
	mu   sync.Mutex
	done map[string]int
}

func (p *peakHP) Process(ctx context.Context, run jetstream.RunMetadata, src dyno.Source) (jetstream.Outcome, error) {
	var s dyno.Sample
	peak := 0.0
	for {
		if err := src.Next(ctx, &s); err == io.EOF {
			break
		} else if err != nil {
			return jetstream.Outcome{}, err
		}
		peak = math.Max(peak, s.Torque*s.RPM/5252)
	}
	select { // analysis takes a moment: the restart below interrupts some
	case <-time.After(3 * time.Millisecond):
	case <-ctx.Done():
		return jetstream.Outcome{}, ctx.Err()
	}
	p.mu.Lock()
	p.done[run.ID]++
	p.mu.Unlock()
	return jetstream.Outcome{Summary: map[string]float64{"peak_hp": peak, "peak_torque": run.PeakTorque}}, nil
}

// The poller on SQLite, with faults, closed and reopened midway: every run
// ends completed exactly once in the run store.
func TestPollerOnSQLiteAcrossRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("SQLite end-to-end; skipped with -short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	dbPath, cursorPath := filepath.Join(dir, "runs.db"), filepath.Join(dir, "cursor.json")
	runs := jetstreamtest.GenerateRuns(30, t0, time.Minute, 30)
	srv := jetstreamtest.NewServer(jetstreamtest.Options{PageSize: 8, Chaos: jetstreamtest.Chaos{Seed: 5, Rate: 0.15, RetryAfter: "1",
		Kinds: []jetstreamtest.FaultKind{jetstreamtest.FaultStatus, jetstreamtest.FaultRateLimit, jetstreamtest.FaultTruncate, jetstreamtest.FaultDuplicate}}})
	defer srv.Close()
	srv.Add(runs[:20]...)
	proc := &peakHP{done: map[string]int{}}
	fast := func(ctx context.Context, d time.Duration) error {
		select {
		case <-time.After(d / 100):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	start := func(ctx context.Context) (*sqlstore.Store, *jetstream.Poller, chan error) {
		db, err := sqlstore.OpenSQLite(ctx, dbPath, sqlstore.Options{SQLiteSynchronous: "NORMAL"})
		require.NoError(t, err)
		c, err := jetstream.NewHTTPClient(jetstream.HTTPOptions{BaseURL: srv.URL, APIKey: "k", Sleep: fast})
		require.NoError(t, err)
		p, err := jetstream.NewPoller(c, runstorestate.New(db, runstorestate.Options{CursorPath: cursorPath}), proc,
			jetstream.PollerOptions{Interval: 10 * time.Millisecond, PageSize: 8, Concurrency: 3,
				Retry: jetstream.RetryPolicy{MaxAttempts: 20, BaseDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond}})
		require.NoError(t, err)
		errc := make(chan error, 1)
		go func() { errc <- p.Run(ctx) }()
		return db, p, errc
	}
	completed := func(db runstore.RunStore) int {
		page, err := db.List(ctx, runstore.Filter{Statuses: []runstore.Status{runstore.StatusCompleted}, Limit: 1000})
		require.NoError(t, err)
		return len(page.Runs)
	}

	ctx1, cancel1 := context.WithCancel(ctx)
	db1, _, errc1 := start(ctx1)
	require.Eventually(t, func() bool { return completed(db1) >= 8 }, 60*time.Second, 2*time.Millisecond)
	cancel1()
	require.NoError(t, <-errc1)
	require.NoError(t, db1.Close())

	srv.Add(runs[20:]...)
	ctx2, cancel2 := context.WithCancel(ctx)
	db2, _, errc2 := start(ctx2)
	defer db2.Close()
	require.Eventually(t, func() bool { return completed(db2) == 30 }, 60*time.Second, 5*time.Millisecond)
	cancel2()
	require.NoError(t, <-errc2)

	proc.mu.Lock()
	defer proc.mu.Unlock()
	for _, r := range runs {
		assert.Equal(t, 1, proc.done[r.ID], "run %s analyzed exactly once", r.ID)
		page, err := db2.List(ctx, runstore.Filter{JetstreamID: r.ID})
		require.NoError(t, err)
		require.Len(t, page.Runs, 1, "run %s recorded once", r.ID)
		got := page.Runs[0]
		assert.Equal(t, runstore.StatusCompleted, got.Status)
		require.NotNil(t, got.Stats.PeakHP)
		assert.InDelta(t, r.PeakHP, *got.Stats.PeakHP, 0.01*r.PeakHP)
	}
	t.Logf("faults injected: %v", srv.Injected())
}

func TestConformance(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		jetstreamtest.RunStateStore(t, func(*testing.T) jetstream.StateStore {
			return runstorestate.New(runstore.NewMemory(runstore.Options{}), runstorestate.Options{})
		})
	})
	t.Run("sqlite", func(t *testing.T) {
		jetstreamtest.RunStateStore(t, func(t *testing.T) jetstream.StateStore {
			db, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "runs.db"), sqlstore.Options{})
			require.NoError(t, err)
			t.Cleanup(func() { db.Close() })
			return runstorestate.New(db, runstorestate.Options{CursorPath: filepath.Join(t.TempDir(), "cursor.json")})
		})
	})
	t.Run("postgres", func(t *testing.T) {
		jetstreamtest.RunStateStore(t, func(t *testing.T) jetstream.StateStore {
			db, err := sqlstore.OpenPostgres(context.Background(), runstoretest.PostgresDSN(t), sqlstore.Options{})
			require.NoError(t, err)
			t.Cleanup(func() { db.Close() })
			return runstorestate.New(db, runstorestate.Options{})
		})
	})
}

// TestPollerStateInSettings: the poller's status and attempt count live in
// the run's Settings, not in its display Stage; runs recorded before (state
// only in the Stage text) still read back, and a state that cannot be read
// is an error naming the run, never a silent zero.
func TestPollerStateInSettings(t *testing.T) {
	ctx := context.Background()
	rs := runstore.NewMemory(runstore.Options{})
	s := runstorestate.New(rs, runstorestate.Options{})
	run := jetstream.Run{ID: "JS-7", Timestamp: t0}
	require.NoError(t, s.PutRunState(ctx, jetstream.RunState{Run: run, Status: jetstream.StatusConverting, Attempts: 3}))

	page, err := rs.List(ctx, runstore.Filter{})
	require.NoError(t, err)
	require.Len(t, page.Runs, 1)
	r := page.Runs[0]
	var set struct {
		Poller struct {
			Status   string `json:"status"`
			Attempts int    `json:"attempts"`
		} `json:"poller"`
	}
	require.NoError(t, json.Unmarshal(r.Settings, &set))
	assert.Equal(t, "converting", set.Poller.Status)
	assert.Equal(t, 3, set.Poller.Attempts)
	assert.Equal(t, "converting (attempt 3)", r.Stage, "the Stage still shows it")

	// Someone rewords the Stage: the state does not change.
	stage := "converting, third try"
	_, err = rs.Update(ctx, r.ID, runstore.Update{Version: r.Version, Stage: &stage})
	require.NoError(t, err)
	got, ok, err := s.RunState(ctx, "JS-7")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, jetstream.StatusConverting, got.Status)
	assert.Equal(t, 3, got.Attempts)

	legacy := func(id, stage, settings string) string {
		t.Helper()
		r, err := rs.Create(ctx, runstore.NewRun{Source: runstore.SourceJetstream, JetstreamID: id, Settings: []byte(settings)})
		require.NoError(t, err)
		_, err = rs.Update(ctx, r.ID, runstore.Update{Version: r.Version, Stage: &stage})
		require.NoError(t, err)
		return r.ID
	}
	legacy("JS-old", "downloading (attempt 2)", `{"jetstream":{"id":"JS-old"}}`)
	got, ok, err = runstorestate.New(rs, runstorestate.Options{}).RunState(ctx, "JS-old")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, jetstream.StatusDownloading, got.Status)
	assert.Equal(t, 2, got.Attempts)

	for _, tc := range []struct{ id, stage, settings, want string }{
		{"JS-big", "downloading (attempt 99999999999999999999)", `{"jetstream":{"id":"JS-big"}}`, "attempt count"},
		{"JS-neg", "", `{"jetstream":{"id":"JS-neg"},"poller":{"status":"queued","attempts":-1}}`, "attempts is -1"},
	} {
		rid := legacy(tc.id, tc.stage, tc.settings)
		_, _, err := runstorestate.New(rs, runstorestate.Options{}).RunState(ctx, tc.id)
		require.Error(t, err, tc.id)
		assert.Contains(t, err.Error(), rid)
		assert.Contains(t, err.Error(), tc.want)
	}
}
