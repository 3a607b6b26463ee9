// Package runstoretest is the conformance suite every runstore.RunStore
// implementation runs: create, get, list with every filter, cursor
// pagination under concurrent inserts, optimistic concurrency, status
// transitions and history, file metadata and cascade, JSON round trips, time
// zones, large documents, unicode and recovery of interrupted runs.
//
// An implementation's test calls Run with an Opener that returns a fresh,
// empty store driven by the given clock.
package runstoretest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynoai/dynoai/runstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Opener returns a fresh, empty store whose clock is now. The suite closes
// the store when the test ends.
type Opener func(t *testing.T, now func() time.Time) runstore.RunStore

// Clock is a settable clock for tests, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock reading t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set sets the clock.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// epoch is the suite's starting time.
var epoch = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)

type env struct {
	t     *testing.T
	ctx   context.Context
	clock *Clock
	s     runstore.RunStore
}

func newEnv(t *testing.T, open Opener) *env {
	t.Helper()
	c := NewClock(epoch)
	s := open(t, c.Now)
	t.Cleanup(func() { s.Close() })
	return &env{t: t, ctx: context.Background(), clock: c, s: s}
}

func (e *env) create(n runstore.NewRun) runstore.Run {
	e.t.Helper()
	if n.Source == "" {
		n.Source = runstore.SourceUpload
	}
	r, err := e.s.Create(e.ctx, n)
	require.NoError(e.t, err)
	return r
}

func (e *env) start(r runstore.Run) runstore.Run {
	e.t.Helper()
	r, err := e.s.Update(e.ctx, r.ID, runstore.Update{Version: r.Version, Status: runstore.StatusProcessing})
	require.NoError(e.t, err)
	return r
}

func ptr[T any](v T) *T { return &v }

// Run runs the conformance suite against the stores open returns.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		f    func(t *testing.T, open Opener)
	}{
		{"CreateGet", testCreateGet},
		{"Validation", testValidation},
		{"NotFound", testNotFound},
		{"Lifecycle", testLifecycle},
		{"Transitions", testTransitions},
		{"Conflict", testConflict},
		{"NoLostUpdate", testNoLostUpdate},
		{"ConcurrentMixed", testConcurrentMixed},
		{"ListFilters", testListFilters},
		{"Pagination", testPagination},
		{"SortPeakHP", testSortPeakHP},
		{"PaginationConcurrentInserts", testPaginationConcurrentInserts},
		{"Files", testFiles},
		{"FreshContentsKept", testFreshContentsKept},
		{"Tenants", testTenants},
		{"Applies", testApplies},
		{"ApplyRace", testApplyRace},
		{"Probe", testProbe},
		{"Cascade", testCascade},
		{"JSONRoundTrip", testJSONRoundTrip},
		{"UpdateSettings", testUpdateSettings},
		{"TimeZones", testTimeZones},
		{"LargeResults", testLargeResults},
		{"Unicode", testUnicode},
		{"Recover", testRecover},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, open) })
	}
	for _, tc := range jobTests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, open) })
	}
	runLeaseTests(t, open)
	runImportTests(t, open)
}

func testCreateGet(t *testing.T, open Opener) {
	e := newEnv(t, open)
	r := e.create(runstore.NewRun{Source: runstore.SourceJetstream, Filename: "pull3.csv", InputSize: 12345,
		Vehicle: "2021 Road Glide M8-114", JetstreamID: "JS-ALPHA-001", Settings: []byte(`{"smooth_passes":2}`)})
	assert.True(t, runstore.ValidID(r.ID), "id %q", r.ID)
	assert.Equal(t, int64(1), r.Version)
	assert.Equal(t, runstore.StatusQueued, r.Status)
	assert.Equal(t, epoch.Truncate(time.Microsecond), r.CreatedAt)
	assert.Equal(t, r.CreatedAt, r.UpdatedAt)
	assert.True(t, r.CompletedAt.IsZero())
	got, err := e.s.Get(e.ctx, r.ID)
	require.NoError(t, err)
	assert.JSONEq(t, `{"smooth_passes":2}`, string(got.Settings))
	got.Settings, r.Settings = nil, nil
	assert.Equal(t, r, got)
	assert.Equal(t, time.UTC, got.CreatedAt.Location())

	h, err := e.s.History(e.ctx, r.ID)
	require.NoError(t, err)
	require.Len(t, h, 1)
	assert.Equal(t, runstore.StatusChange{To: runstore.StatusQueued, At: r.CreatedAt, Reason: "created"}, h[0])

	// Ids are unique and sort by creation.
	var prev string
	for i := 0; i < 50; i++ {
		if i%10 == 0 {
			e.clock.Advance(time.Millisecond)
		}
		r := e.create(runstore.NewRun{})
		assert.Greater(t, r.ID, prev)
		prev = r.ID
	}
	// Ids made at the same instant are not neighbours: their random parts
	// differ by far more than one, so one id does not give away the next.
	a, b := e.create(runstore.NewRun{}), e.create(runstore.NewRun{})
	assert.Equal(t, a.ID[:12], b.ID[:12], "same millisecond")
	da, _ := new(big.Int).SetString(a.ID[12:], 16)
	db, _ := new(big.Int).SetString(b.ID[12:], 16)
	assert.True(t, new(big.Int).Sub(db, da).Cmp(big.NewInt(1<<32)) >= 0, "ids %s and %s are neighbours", a.ID, b.ID)
	files, err := e.s.Files(e.ctx, r.ID)
	require.NoError(t, err)
	assert.Empty(t, files)
	require.NoError(t, e.s.Ping(e.ctx))
}

func testValidation(t *testing.T, open Opener) {
	e := newEnv(t, open)
	r := e.create(runstore.NewRun{})
	okID := r.ID
	cases := []struct {
		name  string
		field string
		call  func() error
	}{
		{"unknown source", "source", func() error { _, err := e.s.Create(e.ctx, runstore.NewRun{Source: "ftp"}); return err }},
		{"empty source", "source", func() error { _, err := e.s.Create(e.ctx, runstore.NewRun{}); return err }},
		{"filename with path", "filename", func() error {
			_, err := e.s.Create(e.ctx, runstore.NewRun{Source: runstore.SourceUpload, Filename: "../../etc/passwd"})
			return err
		}},
		{"filename with backslash", "filename", func() error {
			_, err := e.s.Create(e.ctx, runstore.NewRun{Source: runstore.SourceUpload, Filename: `..\boot.ini`})
			return err
		}},
		{"filename dotdot", "filename", func() error {
			_, err := e.s.Create(e.ctx, runstore.NewRun{Source: runstore.SourceUpload, Filename: ".."})
			return err
		}},
		{"vehicle NUL", "vehicle", func() error {
			_, err := e.s.Create(e.ctx, runstore.NewRun{Source: runstore.SourceUpload, Vehicle: "a\x00b"})
			return err
		}},
		{"vehicle invalid utf8", "vehicle", func() error {
			_, err := e.s.Create(e.ctx, runstore.NewRun{Source: runstore.SourceUpload, Vehicle: "\xff\xfe"})
			return err
		}},
		{"negative size", "input_size", func() error {
			_, err := e.s.Create(e.ctx, runstore.NewRun{Source: runstore.SourceUpload, InputSize: -1})
			return err
		}},
		{"settings not JSON", "settings", func() error {
			_, err := e.s.Create(e.ctx, runstore.NewRun{Source: runstore.SourceUpload, Settings: []byte(`{"a":`)})
			return err
		}},
		{"settings with U+0000", "settings", func() error {
			_, err := e.s.Create(e.ctx, runstore.NewRun{Source: runstore.SourceUpload, Settings: []byte(`{"a":["x\u0000"]}`)})
			return err
		}},
		{"progress above 1", "progress", func() error {
			_, err := e.s.Update(e.ctx, okID, runstore.Update{Version: 1, Progress: ptr(1.5)})
			return err
		}},
		{"progress negative", "progress", func() error {
			_, err := e.s.Update(e.ctx, okID, runstore.Update{Version: 1, Progress: ptr(-0.1)})
			return err
		}},
		{"version zero", "version", func() error { _, err := e.s.Update(e.ctx, okID, runstore.Update{}); return err }},
		{"unknown status", "status", func() error {
			_, err := e.s.Update(e.ctx, okID, runstore.Update{Version: 1, Status: "running"})
			return err
		}},
		{"id traversal", "id", func() error { _, err := e.s.Get(e.ctx, "../../etc/passwd"); return err }},
		{"id uppercase", "id", func() error { _, err := e.s.Get(e.ctx, strings.ToUpper(okID)); return err }},
		{"delete bad id", "id", func() error { return e.s.Delete(e.ctx, "x") }},
		{"results not JSON", "results", func() error {
			_, err := e.s.Complete(e.ctx, okID, 1, runstore.Result{Results: []byte("nan")})
			return err
		}},
		{"stats NaN", "stats.peak_hp", func() error {
			_, err := e.s.Complete(e.ctx, okID, 1, runstore.Result{Stats: runstore.Stats{PeakHP: ptr(nanValue())}})
			return err
		}},
		{"fail without message", "error", func() error { _, err := e.s.Fail(e.ctx, okID, 1, runstore.RunError{}); return err }},
		{"file without name", "file.name", func() error {
			_, err := e.s.AddFile(e.ctx, okID, runstore.FileMeta{SHA256: strings.Repeat("a", 64), StorageKey: "k"})
			return err
		}},
		{"file bad sha", "file.sha256", func() error {
			_, err := e.s.AddFile(e.ctx, okID, runstore.FileMeta{Name: "a.csv", SHA256: "abc", StorageKey: "k"})
			return err
		}},
		{"filter limit", "filter.limit", func() error { _, err := e.s.List(e.ctx, runstore.Filter{Limit: runstore.MaxLimit + 1}); return err }},
		{"filter cursor", "cursor", func() error { _, err := e.s.List(e.ctx, runstore.Filter{Cursor: "not-a-cursor"}); return err }},
		{"filter status", "filter.statuses", func() error {
			_, err := e.s.List(e.ctx, runstore.Filter{Statuses: []runstore.Status{"done"}})
			return err
		}},
		{"filter text newline", "filter.text", func() error { _, err := e.s.List(e.ctx, runstore.Filter{Text: "a\nb"}); return err }},
		{"filter sort", "filter.sort", func() error { _, err := e.s.List(e.ctx, runstore.Filter{Sort: "fastest"}); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			require.ErrorIs(t, err, runstore.ErrInvalid)
			var ie *runstore.InvalidError
			require.ErrorAs(t, err, &ie)
			assert.Equal(t, tc.field, ie.Field, "%v", err)
		})
	}
	// Nothing above changed the run.
	got, err := e.s.Get(e.ctx, okID)
	require.NoError(t, err)
	assert.Equal(t, r, got)
}

func nanValue() float64 {
	var zero float64
	return zero / zero
}

func testNotFound(t *testing.T, open Opener) {
	e := newEnv(t, open)
	e.create(runstore.NewRun{})
	missing := strings.Repeat("0", 31) + "1"
	calls := map[string]func() error{
		"Get": func() error { _, err := e.s.Get(e.ctx, missing); return err },
		"Update": func() error {
			_, err := e.s.Update(e.ctx, missing, runstore.Update{Version: 1, Stage: ptr("x")})
			return err
		},
		"Complete": func() error { _, err := e.s.Complete(e.ctx, missing, 1, runstore.Result{}); return err },
		"Fail":     func() error { _, err := e.s.Fail(e.ctx, missing, 1, runstore.RunError{Message: "x"}); return err },
		"Delete":   func() error { return e.s.Delete(e.ctx, missing) },
		"History":  func() error { _, err := e.s.History(e.ctx, missing); return err },
		"Files":    func() error { _, err := e.s.Files(e.ctx, missing); return err },
		"File":     func() error { _, err := e.s.File(e.ctx, missing, 1); return err },
		"AddFile": func() error {
			_, err := e.s.AddFile(e.ctx, missing, runstore.FileMeta{Name: "a", SHA256: strings.Repeat("0", 64), StorageKey: "k"})
			return err
		},
	}
	for name, call := range calls {
		assert.ErrorIs(t, call(), runstore.ErrNotFound, name)
	}
}

func testLifecycle(t *testing.T, open Opener) {
	e := newEnv(t, open)
	r := e.create(runstore.NewRun{Filename: "run.csv"})
	e.clock.Advance(time.Second)
	r, err := e.s.Update(e.ctx, r.ID, runstore.Update{Version: r.Version, Status: runstore.StatusProcessing, Stage: ptr("validate"), Reason: "worker 1"})
	require.NoError(t, err)
	assert.Equal(t, int64(2), r.Version)
	assert.Equal(t, epoch.Add(time.Second).Truncate(time.Microsecond), r.UpdatedAt)
	e.clock.Advance(time.Second)
	r, err = e.s.Update(e.ctx, r.ID, runstore.Update{Version: r.Version, Stage: ptr("analyze"), Progress: ptr(0.5), Message: ptr("binning")})
	require.NoError(t, err)
	assert.Equal(t, runstore.StatusProcessing, r.Status)
	assert.Equal(t, 0.5, r.Progress)
	e.clock.Advance(time.Second)
	stats := runstore.Stats{PeakHP: ptr(118.4), PeakTorque: ptr(122.9), AFRMean: ptr(13.2), AFRStd: ptr(0.41),
		CorrectedCells: ptr(int64(37)), MaxCorrectionPct: ptr(-6.5)}
	r, err = e.s.Complete(e.ctx, r.ID, r.Version, runstore.Result{Results: []byte(`{"ok":true}`), Stats: stats, Message: "done"})
	require.NoError(t, err)
	assert.Equal(t, runstore.StatusCompleted, r.Status)
	assert.Equal(t, 1.0, r.Progress)
	assert.Equal(t, epoch.Add(3*time.Second).Truncate(time.Microsecond), r.CompletedAt)
	got, err := e.s.Get(e.ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, stats, got.Stats)
	assert.Equal(t, "analyze", got.Stage)
	assert.Equal(t, "done", got.Message)
	assert.Equal(t, int64(4), got.Version)
	assert.Equal(t, r.CompletedAt, got.CompletedAt)

	h, err := e.s.History(e.ctx, r.ID)
	require.NoError(t, err)
	require.Len(t, h, 3)
	assert.Equal(t, []runstore.Status{runstore.StatusQueued, runstore.StatusProcessing, runstore.StatusCompleted},
		[]runstore.Status{h[0].To, h[1].To, h[2].To})
	assert.Equal(t, runstore.StatusQueued, h[1].From)
	assert.Equal(t, "worker 1", h[1].Reason)
	assert.Equal(t, epoch.Add(time.Second).Truncate(time.Microsecond), h[1].At)

	// A completed run cannot change.
	_, err = e.s.Update(e.ctx, r.ID, runstore.Update{Version: got.Version, Stage: ptr("again")})
	assert.ErrorIs(t, err, runstore.ErrConflict)
	_, err = e.s.Fail(e.ctx, r.ID, got.Version, runstore.RunError{Message: "late"})
	assert.ErrorIs(t, err, runstore.ErrConflict)

	// Failing keeps a structured error.
	f := e.start(e.create(runstore.NewRun{}))
	f, err = e.s.Fail(e.ctx, f.ID, f.Version, runstore.RunError{Stage: "parse", Code: "bad_csv", Message: "line 3: missing RPM", Detail: "strconv: x"})
	require.NoError(t, err)
	got, err = e.s.Get(e.ctx, f.ID)
	require.NoError(t, err)
	assert.Equal(t, runstore.StatusFailed, got.Status)
	require.NotNil(t, got.Error)
	assert.Equal(t, runstore.RunError{Stage: "parse", Code: "bad_csv", Message: "line 3: missing RPM", Detail: "strconv: x"}, *got.Error)
	assert.False(t, got.CompletedAt.IsZero())
	assert.Nil(t, got.Results)

	// Complete requires processing.
	q := e.create(runstore.NewRun{})
	_, err = e.s.Complete(e.ctx, q.ID, q.Version, runstore.Result{})
	assert.ErrorIs(t, err, runstore.ErrConflict)
}

func testTransitions(t *testing.T, open Opener) {
	e := newEnv(t, open)
	// reach returns a run in status st.
	reach := func(st runstore.Status) runstore.Run {
		r := e.create(runstore.NewRun{})
		path := map[runstore.Status][]runstore.Status{
			runstore.StatusQueued:     nil,
			runstore.StatusProcessing: {runstore.StatusProcessing},
			runstore.StatusCompleted:  {runstore.StatusProcessing, runstore.StatusCompleted},
			runstore.StatusFailed:     {runstore.StatusFailed},
			runstore.StatusCancelled:  {runstore.StatusCancelled},
		}[st]
		for _, s := range path {
			var err error
			r, err = e.s.Update(e.ctx, r.ID, runstore.Update{Version: r.Version, Status: s})
			require.NoError(t, err)
		}
		require.Equal(t, st, r.Status)
		return r
	}
	for _, from := range runstore.Statuses() {
		for _, to := range runstore.Statuses() {
			if from == to {
				continue
			}
			t.Run(fmt.Sprintf("%s-%s", from, to), func(t *testing.T) {
				r := reach(from)
				got, err := e.s.Update(e.ctx, r.ID, runstore.Update{Version: r.Version, Status: to})
				if runstore.CanTransition(from, to) {
					require.NoError(t, err)
					assert.Equal(t, to, got.Status)
					assert.Equal(t, to.Terminal(), !got.CompletedAt.IsZero())
				} else {
					require.ErrorIs(t, err, runstore.ErrConflict)
					now, err := e.s.Get(e.ctx, r.ID)
					require.NoError(t, err)
					assert.Equal(t, r, now, "a refused transition changes nothing")
				}
			})
		}
	}
	// Setting the same status is not a change and records no history.
	r := reach(runstore.StatusProcessing)
	r2, err := e.s.Update(e.ctx, r.ID, runstore.Update{Version: r.Version, Status: runstore.StatusProcessing, Progress: ptr(0.25)})
	require.NoError(t, err)
	assert.Equal(t, 0.25, r2.Progress)
	h, err := e.s.History(e.ctx, r.ID)
	require.NoError(t, err)
	assert.Len(t, h, 2)
}

func testConflict(t *testing.T, open Opener) {
	e := newEnv(t, open)
	r := e.create(runstore.NewRun{})
	a, err := e.s.Update(e.ctx, r.ID, runstore.Update{Version: r.Version, Stage: ptr("a")})
	require.NoError(t, err)
	_, err = e.s.Update(e.ctx, r.ID, runstore.Update{Version: r.Version, Stage: ptr("b")})
	require.ErrorIs(t, err, runstore.ErrConflict)
	_, err = e.s.Update(e.ctx, r.ID, runstore.Update{Version: a.Version + 1, Stage: ptr("c")})
	require.ErrorIs(t, err, runstore.ErrConflict, "a future version is stale too")
	_, err = e.s.Fail(e.ctx, r.ID, r.Version, runstore.RunError{Message: "x"})
	require.ErrorIs(t, err, runstore.ErrConflict)
	got, err := e.s.Get(e.ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, "a", got.Stage)
	assert.Equal(t, a.Version, got.Version)
	assert.Equal(t, runstore.StatusQueued, got.Status)
}

func testNoLostUpdate(t *testing.T, open Opener) {
	e := newEnv(t, open)
	r := e.start(e.create(runstore.NewRun{}))
	const workers, each = 8, 12
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; {
				cur, err := e.s.Get(e.ctx, r.ID)
				if err != nil {
					errs <- err
					return
				}
				var n int
				fmt.Sscan(cur.Stage, &n)
				_, err = e.s.Update(e.ctx, r.ID, runstore.Update{Version: cur.Version, Stage: ptr(fmt.Sprint(n + 1))})
				switch {
				case errors.Is(err, runstore.ErrConflict):
					continue // someone else won; read again
				case err != nil:
					errs <- err
					return
				}
				i++
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got, err := e.s.Get(e.ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprint(workers*each), got.Stage, "every successful update counted once")
	assert.Equal(t, r.Version+workers*each, got.Version)
}

func testConcurrentMixed(t *testing.T, open Opener) {
	e := newEnv(t, open)
	const workers, each = 6, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers*each*4)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r, err := e.s.Create(e.ctx, runstore.NewRun{Source: runstore.SourceAPI, Filename: fmt.Sprintf("w%d-%d.csv", w, i)})
				if err != nil {
					errs <- err
					continue
				}
				r, err = e.s.Update(e.ctx, r.ID, runstore.Update{Version: r.Version, Status: runstore.StatusProcessing, Progress: ptr(0.5)})
				if err != nil {
					errs <- err
					continue
				}
				if _, err := e.s.Complete(e.ctx, r.ID, r.Version, runstore.Result{Stats: runstore.Stats{PeakHP: ptr(float64(i))}}); err != nil {
					errs <- err
				}
				if _, err := e.s.List(e.ctx, runstore.Filter{Statuses: []runstore.Status{runstore.StatusCompleted}, Limit: 10}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err, "no error may surface under concurrency (e.g. database is locked)")
	}
	all := listAll(t, e, runstore.Filter{Statuses: []runstore.Status{runstore.StatusCompleted}, Limit: 7})
	assert.Len(t, all, workers*each)
}

func listAll(t *testing.T, e *env, f runstore.Filter) []runstore.Run {
	t.Helper()
	var out []runstore.Run
	for i := 0; ; i++ {
		require.Less(t, i, 100000, "pagination does not end")
		p, err := e.s.List(e.ctx, f)
		require.NoError(t, err)
		out = append(out, p.Runs...)
		if p.Next == "" {
			return out
		}
		f.Cursor = p.Next
	}
}

func ids(runs []runstore.Run) []string {
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = r.ID
	}
	return out
}

func testListFilters(t *testing.T, open Opener) {
	e := newEnv(t, open)
	type spec struct {
		src      runstore.RunSource
		file     string
		vehicle  string
		finalSt  runstore.Status
		peak     *float64
		jsID     string
		advanceS int
	}
	specs := []spec{
		{runstore.SourceUpload, "pull1.csv", "Road Glide", runstore.StatusQueued, nil, "", 0},
		{runstore.SourceUpload, "PULL2.CSV", "Street Glide", runstore.StatusCompleted, ptr(95.0), "", 10},
		{runstore.SourceJetstream, "js_100%_run.csv", "Fat Bob", runstore.StatusCompleted, ptr(120.5), "JS-1", 10},
		{runstore.SourceJetstream, "js_b.csv", "Road King", runstore.StatusFailed, nil, "JS-2", 10},
		{runstore.SourceSimulator, "sim.csv", "M8-131 sim", runstore.StatusProcessing, nil, "", 10},
		{runstore.SourceJetDrive, "live_capture", "Road Glide", runstore.StatusCancelled, nil, "", 0},
		{runstore.SourceAPI, "a_b.csv", "", runstore.StatusCompleted, ptr(101.0), "", 10},
	}
	var all []runstore.Run
	for _, s := range specs {
		e.clock.Advance(time.Duration(s.advanceS) * time.Second)
		r := e.create(runstore.NewRun{Source: s.src, Filename: s.file, Vehicle: s.vehicle, JetstreamID: s.jsID})
		var err error
		switch s.finalSt {
		case runstore.StatusProcessing:
			r = e.start(r)
		case runstore.StatusCompleted:
			r = e.start(r)
			r, err = e.s.Complete(e.ctx, r.ID, r.Version, runstore.Result{Stats: runstore.Stats{PeakHP: s.peak}})
		case runstore.StatusFailed:
			r, err = e.s.Fail(e.ctx, r.ID, r.Version, runstore.RunError{Message: "x"})
		case runstore.StatusCancelled:
			r, err = e.s.Update(e.ctx, r.ID, runstore.Update{Version: r.Version, Status: runstore.StatusCancelled})
		}
		require.NoError(t, err)
		all = append(all, r)
	}
	// Expected order: newest first by (created, id).
	want := func(pred func(i int) bool) []string {
		var out []string
		for i := len(all) - 1; i >= 0; i-- {
			if pred(i) {
				out = append(out, all[i].ID)
			}
		}
		return out
	}
	t0 := epoch
	cases := []struct {
		name string
		f    runstore.Filter
		want []string
	}{
		{"all", runstore.Filter{}, want(func(int) bool { return true })},
		{"completed", runstore.Filter{Statuses: []runstore.Status{runstore.StatusCompleted}}, want(func(i int) bool { return specs[i].finalSt == runstore.StatusCompleted })},
		{"failed or cancelled", runstore.Filter{Statuses: []runstore.Status{runstore.StatusFailed, runstore.StatusCancelled}},
			want(func(i int) bool {
				return specs[i].finalSt == runstore.StatusFailed || specs[i].finalSt == runstore.StatusCancelled
			})},
		{"jetstream", runstore.Filter{Sources: []runstore.RunSource{runstore.SourceJetstream}}, want(func(i int) bool { return specs[i].src == runstore.SourceJetstream })},
		{"jetstream completed", runstore.Filter{Sources: []runstore.RunSource{runstore.SourceJetstream}, Statuses: []runstore.Status{runstore.StatusCompleted}}, []string{all[2].ID}},
		{"text case-insensitive", runstore.Filter{Text: "pull"}, []string{all[1].ID, all[0].ID}},
		{"text in vehicle", runstore.Filter{Text: "road"}, []string{all[5].ID, all[3].ID, all[0].ID}},
		{"text percent is literal", runstore.Filter{Text: "100%"}, []string{all[2].ID}},
		{"text underscore is literal", runstore.Filter{Text: "a_b"}, []string{all[6].ID}},
		{"text no match", runstore.Filter{Text: "zzz"}, nil},
		{"created after (inclusive)", runstore.Filter{CreatedAfter: t0.Add(30 * time.Second)}, []string{all[6].ID, all[5].ID, all[4].ID, all[3].ID}},
		{"created before (exclusive)", runstore.Filter{CreatedBefore: t0.Add(20 * time.Second)}, []string{all[1].ID, all[0].ID}},
		{"time window", runstore.Filter{CreatedAfter: t0.Add(10 * time.Second), CreatedBefore: t0.Add(40 * time.Second)}, []string{all[3].ID, all[2].ID, all[1].ID}},
		{"jetstream id", runstore.Filter{JetstreamID: "JS-2"}, []string{all[3].ID}},
		{"min peak hp", runstore.Filter{MinPeakHP: ptr(100.0)}, []string{all[6].ID, all[2].ID}},
		{"sort by peak hp", runstore.Filter{Sort: runstore.SortPeakHP}, []string{all[2].ID, all[6].ID, all[1].ID}},
		{"sort by peak hp, filtered", runstore.Filter{Sort: runstore.SortPeakHP, Sources: []runstore.RunSource{runstore.SourceUpload}}, []string{all[1].ID}},
		{"limit", runstore.Filter{Limit: 2}, want(func(i int) bool { return i >= 5 })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := e.s.List(e.ctx, tc.f)
			require.NoError(t, err)
			got := ids(p.Runs)
			if len(got) == 0 {
				got = nil
			}
			assert.Equal(t, tc.want, got)
		})
	}
	p, err := e.s.List(e.ctx, runstore.Filter{})
	require.NoError(t, err)
	assert.Empty(t, p.Next)
	for i, r := range p.Runs {
		orig := all[len(all)-1-i]
		assert.Equal(t, orig.Status, r.Status)
		assert.Equal(t, orig.Stats, r.Stats)
	}
}

func testPagination(t *testing.T, open Opener) {
	e := newEnv(t, open)
	var want []string
	for i := 0; i < 23; i++ {
		if i%4 == 0 {
			e.clock.Advance(time.Millisecond) // several runs share a timestamp
		}
		want = append(want, e.create(runstore.NewRun{}).ID)
	}
	slices.Reverse(want)
	for _, limit := range []int{1, 5, 23, 100} {
		got := ids(listAll(t, e, runstore.Filter{Limit: limit}))
		assert.Equal(t, want, got, "limit %d", limit)
	}
	p, err := e.s.List(e.ctx, runstore.Filter{Limit: 23})
	require.NoError(t, err)
	assert.Empty(t, p.Next, "an exactly full last page has no next cursor")
}

func testSortPeakHP(t *testing.T, open Opener) {
	e := newEnv(t, open)
	peaks := []float64{100, 90.25, 100, 110, -1, 90.25, 100, 0, 1e-9, 100, 250.125, -1, 90.25}
	type entry struct {
		id   string
		peak float64
	}
	var want []entry
	for i, p := range peaks {
		if i%3 == 0 {
			e.clock.Advance(time.Second) // some runs share a timestamp
		}
		r := e.start(e.create(runstore.NewRun{}))
		var stats runstore.Stats
		if p >= 0 {
			stats.PeakHP = ptr(p)
			want = append(want, entry{r.ID, p})
		}
		_, err := e.s.Complete(e.ctx, r.ID, r.Version, runstore.Result{Stats: stats})
		require.NoError(t, err)
	}
	// Highest first; ties newest first (ids grow with creation).
	slices.SortFunc(want, func(a, b entry) int {
		if a.peak != b.peak {
			if a.peak > b.peak {
				return -1
			}
			return 1
		}
		return strings.Compare(b.id, a.id)
	})
	var wantIDs []string
	for _, w := range want {
		wantIDs = append(wantIDs, w.id)
	}
	for _, limit := range []int{1, 2, 4, 50} {
		got := listAll(t, e, runstore.Filter{Sort: runstore.SortPeakHP, Limit: limit})
		assert.Equal(t, wantIDs, ids(got), "limit %d", limit)
	}
	// A cursor of one order is refused by the other.
	p, err := e.s.List(e.ctx, runstore.Filter{Sort: runstore.SortPeakHP, Limit: 1})
	require.NoError(t, err)
	_, err = e.s.List(e.ctx, runstore.Filter{Cursor: p.Next})
	assert.ErrorIs(t, err, runstore.ErrInvalid)
	p, err = e.s.List(e.ctx, runstore.Filter{Limit: 1})
	require.NoError(t, err)
	_, err = e.s.List(e.ctx, runstore.Filter{Sort: runstore.SortPeakHP, Cursor: p.Next})
	assert.ErrorIs(t, err, runstore.ErrInvalid)
}

func testPaginationConcurrentInserts(t *testing.T, open Opener) {
	e := newEnv(t, open)
	var want []string
	for i := 0; i < 40; i++ {
		e.clock.Advance(time.Millisecond)
		want = append(want, e.create(runstore.NewRun{Source: runstore.SourceUpload}).ID)
	}
	slices.Reverse(want)
	// Page through while other goroutines insert newer runs.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var insertErr error
	var mu sync.Mutex
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				e.clock.Advance(time.Microsecond)
				if _, err := e.s.Create(e.ctx, runstore.NewRun{Source: runstore.SourceJetstream}); err != nil {
					mu.Lock()
					insertErr = err
					mu.Unlock()
					return
				}
			}
		}()
	}
	first, err := e.s.List(e.ctx, runstore.Filter{Sources: []runstore.RunSource{runstore.SourceUpload}, Limit: 6})
	require.NoError(t, err)
	got := ids(first.Runs)
	f := runstore.Filter{Limit: 6, Cursor: first.Next}
	for f.Cursor != "" {
		p, err := e.s.List(e.ctx, f)
		require.NoError(t, err)
		got = append(got, ids(p.Runs)...)
		f.Cursor = p.Next
	}
	close(stop)
	wg.Wait()
	require.NoError(t, insertErr)
	assert.Equal(t, want, got, "every run present before paging is seen exactly once, in order, and no newer run appears")
}

func testFiles(t *testing.T, open Opener) {
	e := newEnv(t, open)
	fs := runstore.NewMemFileStore()
	// Contents stored long ago, so that deleting them is allowed (see
	// runstore.MinUnreferencedAge).
	fs.SetClock(func() time.Time { return time.Now().Add(-2 * runstore.MinUnreferencedAge) })
	r := e.create(runstore.NewRun{})
	other := e.create(runstore.NewRun{})
	contents := map[string]string{"VE_Correction_Delta_DYNO.csv": "RPM,MAP\n1000,1.02\n", "manifest.json": `{"run":"x"}`, "empty.txt": ""}
	names := []string{"VE_Correction_Delta_DYNO.csv", "manifest.json", "empty.txt"}
	var files []runstore.File
	for _, n := range names {
		f, err := runstore.Attach(e.ctx, e.s, fs, r.ID, n, "text/plain", strings.NewReader(contents[n]))
		require.NoError(t, err)
		assert.Equal(t, int64(len(contents[n])), f.Size)
		assert.Equal(t, f.SHA256, f.StorageKey, "contents are addressed by their SHA-256")
		files = append(files, f)
	}
	listed, err := e.s.Files(e.ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, files, listed)
	for _, f := range files {
		got, data, err := runstore.ReadFile(e.ctx, e.s, fs, r.ID, f.ID)
		require.NoError(t, err)
		assert.Equal(t, contents[f.Name], string(data))
		assert.Equal(t, f, got)
	}
	// A file id of another run is not found through this run.
	_, err = e.s.File(e.ctx, other.ID, files[0].ID)
	assert.ErrorIs(t, err, runstore.ErrNotFound)
	// The other run holds the same bytes as the first file: deleting the
	// first run must not take them away.
	shared, err := runstore.Attach(e.ctx, e.s, fs, other.ID, "copy.csv", "text/csv", strings.NewReader(contents[names[0]]))
	require.NoError(t, err)
	assert.Equal(t, files[0].StorageKey, shared.StorageKey)
	unref, err := e.s.Unreferenced(e.ctx, []string{files[0].StorageKey, strings.Repeat("0", 64), files[1].StorageKey})
	require.NoError(t, err)
	assert.Equal(t, []string{strings.Repeat("0", 64)}, unref)
	// Recording a file on a missing run fails.
	_, err = runstore.Attach(e.ctx, e.s, fs, strings.Repeat("f", 32), "x.csv", "text/csv", strings.NewReader("data"))
	assert.ErrorIs(t, err, runstore.ErrNotFound)
	// DeleteRun removes the contents nobody else refers to.
	require.NoError(t, runstore.DeleteRun(e.ctx, e.s, fs, r.ID))
	for _, f := range files[1:] {
		_, err := fs.Open(e.ctx, f.StorageKey)
		assert.ErrorIs(t, err, runstore.ErrNotFound, f.Name)
	}
	_, data, err := runstore.ReadFile(e.ctx, e.s, fs, other.ID, shared.ID)
	require.NoError(t, err, "shared contents survive the other run's deletion")
	assert.Equal(t, contents[names[0]], string(data))
	// The refused "data" is unreferenced: a sweep removes it, and only it.
	st, err := runstore.SweepFiles(e.ctx, e.s, fs, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, 1, st.Removed)
	assert.Equal(t, 1, fs.Len())
	// Corrupted contents fail the checksum.
	require.True(t, fs.Corrupt(shared.StorageKey))
	_, _, err = runstore.ReadFile(e.ctx, e.s, fs, other.ID, shared.ID)
	assert.ErrorIs(t, err, runstore.ErrChecksum)
}

// testFreshContentsKept: contents stored moments ago are not removed even
// when unreferenced: a writer may be about to record them.
func testFreshContentsKept(t *testing.T, open Opener) {
	e := newEnv(t, open)
	fs := runstore.NewMemFileStore()
	r := e.create(runstore.NewRun{})
	f, err := runstore.Attach(e.ctx, e.s, fs, r.ID, "a.csv", "text/csv", strings.NewReader("fresh"))
	require.NoError(t, err)
	require.NoError(t, runstore.DeleteRun(e.ctx, e.s, fs, r.ID))
	_, err = fs.Stat(e.ctx, f.StorageKey)
	require.NoError(t, err, "fresh contents are left for a later sweep")
	st, err := runstore.SweepFiles(e.ctx, e.s, fs, time.Now())
	require.NoError(t, err)
	assert.Zero(t, st.Removed)
	st, err = runstore.SweepFiles(e.ctx, e.s, fs, time.Now().Add(runstore.MinUnreferencedAge+time.Minute))
	require.NoError(t, err)
	assert.Equal(t, 1, st.Removed)
	assert.Zero(t, fs.Len())
}

func testTenants(t *testing.T, open Opener) {
	e := newEnv(t, open)
	a := e.create(runstore.NewRun{Tenant: "shop-a", Filename: "a.csv"})
	b := e.create(runstore.NewRun{Tenant: "shop_b:2", Filename: "b.csv"})
	none := e.create(runstore.NewRun{Filename: "n.csv"})
	got, err := e.s.Get(e.ctx, a.ID)
	require.NoError(t, err)
	assert.Equal(t, "shop-a", got.Tenant)
	got, err = e.s.Get(e.ctx, none.ID)
	require.NoError(t, err)
	assert.Empty(t, got.Tenant)
	ids := func(f runstore.Filter) []string {
		p, err := e.s.List(e.ctx, f)
		require.NoError(t, err)
		var out []string
		for _, r := range p.Runs {
			out = append(out, r.ID)
		}
		return out
	}
	assert.Equal(t, []string{a.ID}, ids(runstore.Filter{Tenants: []string{"shop-a"}}))
	assert.Equal(t, []string{none.ID, a.ID}, ids(runstore.Filter{Tenants: []string{"shop-a", ""}}))
	assert.Equal(t, []string{none.ID}, ids(runstore.Filter{Tenants: []string{""}}))
	assert.Equal(t, []string{none.ID, b.ID, a.ID}, ids(runstore.Filter{}))
	assert.Empty(t, ids(runstore.Filter{Tenants: []string{"shop-c"}}))
	for _, bad := range []string{"-x", "a b", strings.Repeat("t", 65), "é", "a/b"} {
		_, err := e.s.Create(e.ctx, runstore.NewRun{Source: runstore.SourceAPI, Tenant: bad})
		var ie *runstore.InvalidError
		require.ErrorAs(t, err, &ie, "%q", bad)
		assert.Equal(t, "tenant", ie.Field)
		_, err = e.s.List(e.ctx, runstore.Filter{Tenants: []string{bad}})
		require.ErrorAs(t, err, &ie, "%q", bad)
		assert.Equal(t, "filter.tenants", ie.Field)
	}
}

func applyFiles(n int, tag string) []runstore.FileMeta {
	names := []string{"VE_Applied_Front.csv", "VE_Effective_Front.csv", "VE_Apply_Front.manifest.json"}
	if n == 1 {
		names = []string{"VE_Restored_Front.csv"}
	}
	out := make([]runstore.FileMeta, n)
	for i := range out {
		sum := sha256.Sum256([]byte(tag + names[i]))
		h := hex.EncodeToString(sum[:])
		out[i] = runstore.FileMeta{Name: names[i], ContentType: "text/csv", Size: int64(10 + i), SHA256: h, StorageKey: h}
	}
	return out
}

func testApplies(t *testing.T, open Opener) {
	e := newEnv(t, open)
	r := e.create(runstore.NewRun{})
	rec := func(kind runstore.ApplyKind, cyl string, parent int64, tag string) (runstore.Apply, error) {
		return e.s.RecordApply(e.ctx, r.ID, runstore.NewApply{Cylinder: cyl, Kind: kind, Parent: parent,
			Files: applyFiles(kind.Files(), tag)})
	}
	a1, err := rec(runstore.ApplyKindApply, "Front", 0, "a1")
	require.NoError(t, err)
	assert.Positive(t, a1.ID)
	assert.Equal(t, r.ID, a1.RunID)
	require.Len(t, a1.Files, 3)
	assert.Equal(t, "VE_Applied_Front.csv", a1.Files[0].Name)
	assert.Equal(t, "VE_Apply_Front.manifest.json", a1.Files[2].Name)
	// The record's files are files of the run.
	for _, f := range a1.Files {
		got, err := e.s.File(e.ctx, r.ID, f.ID)
		require.NoError(t, err)
		assert.Equal(t, f, got)
	}
	// Building on a stale state, or on nothing, is a conflict.
	_, err = rec(runstore.ApplyKindApply, "Front", 0, "a2")
	assert.ErrorIs(t, err, runstore.ErrConflict)
	_, err = rec(runstore.ApplyKindApply, "Front", a1.ID+100, "a2")
	assert.ErrorIs(t, err, runstore.ErrConflict)
	a2, err := rec(runstore.ApplyKindApply, "Front", a1.ID, "a2")
	require.NoError(t, err)
	rb, err := rec(runstore.ApplyKindRollback, "Front", a2.ID, "rb")
	require.NoError(t, err)
	require.Len(t, rb.Files, 1)
	// A rollback undoes an apply, never a rollback.
	_, err = rec(runstore.ApplyKindRollback, "Front", rb.ID, "rb2")
	assert.ErrorIs(t, err, runstore.ErrConflict)
	// Cylinders chain separately; a first rollback undoes a pre-record apply.
	legacy, err := rec(runstore.ApplyKindRollback, "Rear", 0, "legacy")
	require.NoError(t, err)
	assert.Zero(t, legacy.Parent)
	// Invalid records change nothing.
	for _, bad := range []runstore.NewApply{
		{Cylinder: "Front", Kind: runstore.ApplyKindApply, Parent: rb.ID, Files: applyFiles(1, "x")},
		{Cylinder: "Front", Kind: "undo", Parent: rb.ID, Files: applyFiles(1, "x")},
		{Cylinder: "", Kind: runstore.ApplyKindApply, Files: applyFiles(3, "x")},
		{Cylinder: "Front", Kind: runstore.ApplyKindApply, Parent: -1, Files: applyFiles(3, "x")},
	} {
		_, err := e.s.RecordApply(e.ctx, r.ID, bad)
		assert.ErrorIs(t, err, runstore.ErrInvalid, "%+v", bad)
	}
	_, err = e.s.RecordApply(e.ctx, strings.Repeat("e", 32), runstore.NewApply{Cylinder: "Front", Kind: runstore.ApplyKindApply, Files: applyFiles(3, "x")})
	assert.ErrorIs(t, err, runstore.ErrNotFound)
	all, err := e.s.Applies(e.ctx, r.ID)
	require.NoError(t, err)
	require.Len(t, all, 4)
	assert.Equal(t, []int64{a1.ID, a2.ID, rb.ID, legacy.ID}, []int64{all[0].ID, all[1].ID, all[2].ID, all[3].ID})
	assert.Equal(t, a2, all[1])
	assert.Equal(t, runstore.ApplyKindRollback, all[2].Kind)
	assert.Equal(t, a2.ID, all[2].Parent)
	files, err := e.s.Files(e.ctx, r.ID)
	require.NoError(t, err)
	assert.Len(t, files, 3+3+1+1, "no file of a refused record was stored")
	empty := e.create(runstore.NewRun{})
	none, err := e.s.Applies(e.ctx, empty.ID)
	require.NoError(t, err)
	assert.Empty(t, none)
	// Deleting the run removes its records.
	require.NoError(t, e.s.Delete(e.ctx, r.ID))
	_, err = e.s.Applies(e.ctx, r.ID)
	assert.ErrorIs(t, err, runstore.ErrNotFound)
}

// testApplyRace: writers building on the same state at once: exactly one
// wins, the others get ErrConflict and store nothing.
func testApplyRace(t *testing.T, open Opener) {
	e := newEnv(t, open)
	r := e.create(runstore.NewRun{})
	base, err := e.s.RecordApply(e.ctx, r.ID, runstore.NewApply{Cylinder: "Front", Kind: runstore.ApplyKindApply, Files: applyFiles(3, "base")})
	require.NoError(t, err)
	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			_, errs[i] = e.s.RecordApply(e.ctx, r.ID, runstore.NewApply{Cylinder: "Front", Kind: runstore.ApplyKindApply,
				Parent: base.ID, Files: applyFiles(3, fmt.Sprint("w", i))})
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
			continue
		}
		assert.ErrorIs(t, err, runstore.ErrConflict)
	}
	assert.Equal(t, 1, won)
	all, err := e.s.Applies(e.ctx, r.ID)
	require.NoError(t, err)
	assert.Len(t, all, 2)
	files, err := e.s.Files(e.ctx, r.ID)
	require.NoError(t, err)
	assert.Len(t, files, 6)
}

func testProbe(t *testing.T, open Opener) {
	e := newEnv(t, open)
	for range 3 {
		require.NoError(t, e.s.Probe(e.ctx))
	}
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	assert.Error(t, e.s.Probe(ctx))
	require.NoError(t, e.s.Close())
	err := e.s.Probe(e.ctx)
	assert.Error(t, err)
}

func testCascade(t *testing.T, open Opener) {
	e := newEnv(t, open)
	r := e.start(e.create(runstore.NewRun{}))
	keep := e.create(runstore.NewRun{})
	for i := 0; i < 3; i++ {
		_, err := e.s.AddFile(e.ctx, r.ID, runstore.FileMeta{Name: fmt.Sprintf("f%d.csv", i), Size: int64(i), SHA256: strings.Repeat("ab", 32), StorageKey: fmt.Sprint("key", i)})
		require.NoError(t, err)
	}
	kf, err := e.s.AddFile(e.ctx, keep.ID, runstore.FileMeta{Name: "k.csv", SHA256: strings.Repeat("cd", 32), StorageKey: "k"})
	require.NoError(t, err)
	require.NoError(t, e.s.Delete(e.ctx, r.ID))
	_, err = e.s.Get(e.ctx, r.ID)
	assert.ErrorIs(t, err, runstore.ErrNotFound)
	_, err = e.s.Files(e.ctx, r.ID)
	assert.ErrorIs(t, err, runstore.ErrNotFound)
	_, err = e.s.History(e.ctx, r.ID)
	assert.ErrorIs(t, err, runstore.ErrNotFound)
	assert.ErrorIs(t, e.s.Delete(e.ctx, r.ID), runstore.ErrNotFound)
	// The other run is untouched.
	files, err := e.s.Files(e.ctx, keep.ID)
	require.NoError(t, err)
	assert.Equal(t, []runstore.File{kf}, files)
	h, err := e.s.History(e.ctx, keep.ID)
	require.NoError(t, err)
	assert.Len(t, h, 1)
}

func testJSONRoundTrip(t *testing.T, open Opener) {
	e := newEnv(t, open)
	docs := []string{
		`{"rpm_bins":[1000,1500,2000],"map_bins":[20,40,60],"smooth":{"passes":2,"kernel":"gaussian"},"note":"Prüfstand \"quoted\" \\ ✓"}`,
		`[1, 2.5, -3e-7, null, true, false, "x"]`,
		`"just a string"`,
		`12345678901234567`,
		`{}`,
		`{"nested":{"a":{"b":{"c":[[],[{}]]}}}}`,
	}
	for _, d := range docs {
		r := e.start(e.create(runstore.NewRun{Settings: []byte(d)}))
		r, err := e.s.Complete(e.ctx, r.ID, r.Version, runstore.Result{Results: []byte(d)})
		require.NoError(t, err)
		got, err := e.s.Get(e.ctx, r.ID)
		require.NoError(t, err)
		assert.JSONEq(t, d, string(got.Settings))
		assert.JSONEq(t, d, string(got.Results))
	}
	r := e.create(runstore.NewRun{})
	got, err := e.s.Get(e.ctx, r.ID)
	require.NoError(t, err)
	assert.Nil(t, got.Settings, "no settings stays nil")
	assert.Nil(t, got.Results)
	assert.Nil(t, got.Error)
}

// testUpdateSettings: Update replaces Settings when given one, keeps them
// when not, refuses a document that is not JSON, and a stale version
// changes nothing.
func testUpdateSettings(t *testing.T, open Opener) {
	e := newEnv(t, open)
	r := e.create(runstore.NewRun{Settings: []byte(`{"a":1}`)})
	stage := "waiting"
	r, err := e.s.Update(e.ctx, r.ID, runstore.Update{Version: r.Version, Stage: &stage})
	require.NoError(t, err)
	assert.JSONEq(t, `{"a":1}`, string(r.Settings), "an update without settings keeps them")

	r2, err := e.s.Update(e.ctx, r.ID, runstore.Update{Version: r.Version, Settings: []byte(`{"a":2,"poller":{"attempts":3}}`)})
	require.NoError(t, err)
	got, err := e.s.Get(e.ctx, r.ID)
	require.NoError(t, err)
	assert.JSONEq(t, `{"a":2,"poller":{"attempts":3}}`, string(got.Settings))
	assert.Equal(t, r2.Version, got.Version)

	_, err = e.s.Update(e.ctx, r.ID, runstore.Update{Version: r2.Version, Settings: []byte(`{"a":`)})
	require.ErrorIs(t, err, runstore.ErrInvalid)
	_, err = e.s.Update(e.ctx, r.ID, runstore.Update{Version: r.Version, Settings: []byte(`{"a":3}`)})
	require.ErrorIs(t, err, runstore.ErrConflict, "a stale version")
	got, err = e.s.Get(e.ctx, r.ID)
	require.NoError(t, err)
	assert.JSONEq(t, `{"a":2,"poller":{"attempts":3}}`, string(got.Settings), "refused updates change nothing")
}

func testTimeZones(t *testing.T, open Opener) {
	e := newEnv(t, open)
	denver := time.FixedZone("MST", -7*3600)
	kolkata := time.FixedZone("IST", 5*3600+1800)
	local := time.Date(2026, 7, 4, 23, 30, 0, 123456789, denver) // 05:30 UTC next day
	e.clock.Set(local)
	r := e.create(runstore.NewRun{})
	assert.Equal(t, time.UTC, r.CreatedAt.Location())
	assert.True(t, r.CreatedAt.Equal(local.Truncate(time.Microsecond)), "%v vs %v", r.CreatedAt, local)
	got, err := e.s.Get(e.ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, r.CreatedAt, got.CreatedAt)
	assert.Equal(t, 123456000, got.CreatedAt.Nanosecond(), "microsecond precision kept")
	// A filter given in another zone selects by instant.
	after := local.Add(-time.Minute).In(kolkata)
	p, err := e.s.List(e.ctx, runstore.Filter{CreatedAfter: after})
	require.NoError(t, err)
	assert.Equal(t, []string{r.ID}, ids(p.Runs))
	p, err = e.s.List(e.ctx, runstore.Filter{CreatedBefore: local.In(kolkata)})
	require.NoError(t, err)
	assert.Empty(t, p.Runs, "before is exclusive at the same instant")
	// Times before 1970 and far ahead survive too.
	for _, ts := range []time.Time{time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC), time.Date(2300, 1, 1, 0, 0, 0, 1000, kolkata)} {
		e.clock.Set(ts)
		r := e.create(runstore.NewRun{})
		got, err := e.s.Get(e.ctx, r.ID)
		require.NoError(t, err)
		assert.True(t, got.CreatedAt.Equal(ts), "%v vs %v", got.CreatedAt, ts)
	}
}

func testLargeResults(t *testing.T, open Opener) {
	e := newEnv(t, open)
	var b strings.Builder
	b.WriteString(`{"grid":[`)
	for i := 0; i < 120000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"rpm":%d,"map":%d,"ve":%.4f}`, 1000+i%60*100, 20+i%9*10, 1+float64(i%97)/1000)
	}
	b.WriteString(`]}`)
	doc := b.String()
	require.Greater(t, len(doc), 3<<20)
	r := e.start(e.create(runstore.NewRun{}))
	_, err := e.s.Complete(e.ctx, r.ID, r.Version, runstore.Result{Results: []byte(doc)})
	require.NoError(t, err)
	got, err := e.s.Get(e.ctx, r.ID)
	require.NoError(t, err)
	assert.JSONEq(t, doc, string(got.Results))
}

func testUnicode(t *testing.T, open Opener) {
	e := newEnv(t, open)
	r := e.create(runstore.NewRun{Filename: "Prüfstand_Lauf_🏍️_№3.csv", Vehicle: "ÖSTERREICH Softail — 東京"})
	e.create(runstore.NewRun{Filename: "plain.csv", Vehicle: "Sportster"})
	got, err := e.s.Get(e.ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, "Prüfstand_Lauf_🏍️_№3.csv", got.Filename)
	assert.Equal(t, "ÖSTERREICH Softail — 東京", got.Vehicle)
	for _, q := range []string{"PRÜF", "österreich", "東京", "🏍", "№3"} {
		p, err := e.s.List(e.ctx, runstore.Filter{Text: q})
		require.NoError(t, err)
		assert.Equal(t, []string{r.ID}, ids(p.Runs), "text %q", q)
	}
	r = e.start(r)
	_, err = e.s.Fail(e.ctx, r.ID, r.Version, runstore.RunError{Message: "Zündung fehlt ⚡", Code: "ügly"})
	require.NoError(t, err)
	got, err = e.s.Get(e.ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, "Zündung fehlt ⚡", got.Error.Message)
}

func testRecover(t *testing.T, open Opener) {
	e := newEnv(t, open)
	q := e.create(runstore.NewRun{})
	p1 := e.start(e.create(runstore.NewRun{}))
	p2 := e.start(e.create(runstore.NewRun{}))
	done := e.start(e.create(runstore.NewRun{}))
	done, err := e.s.Complete(e.ctx, done.ID, done.Version, runstore.Result{})
	require.NoError(t, err)
	e.clock.Advance(time.Minute)
	got, err := e.s.Recover(e.ctx, runstore.RunError{Code: "interrupted", Message: "the server restarted while this run was processing"})
	require.NoError(t, err)
	want := []string{p1.ID, p2.ID}
	slices.Sort(want)
	assert.Equal(t, want, got)
	for _, id := range want {
		r, err := e.s.Get(e.ctx, id)
		require.NoError(t, err)
		assert.Equal(t, runstore.StatusFailed, r.Status)
		assert.Equal(t, "interrupted", r.Error.Code)
		h, err := e.s.History(e.ctx, id)
		require.NoError(t, err)
		assert.Equal(t, runstore.StatusFailed, h[len(h)-1].To)
	}
	for _, r := range []runstore.Run{q, done} {
		now, err := e.s.Get(e.ctx, r.ID)
		require.NoError(t, err)
		assert.Equal(t, r, now)
	}
	again, err := e.s.Recover(e.ctx, runstore.RunError{Code: "interrupted", Message: "x"})
	require.NoError(t, err)
	assert.Empty(t, again)
}

func testClosed(t *testing.T, open Opener) {
	e := newEnv(t, open)
	r := e.create(runstore.NewRun{})
	require.NoError(t, e.s.Close())
	_, err := e.s.Get(e.ctx, r.ID)
	assert.Error(t, err)
	_, err = e.s.Create(e.ctx, runstore.NewRun{Source: runstore.SourceAPI})
	assert.Error(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.Error(t, e.s.Ping(ctx))
}
