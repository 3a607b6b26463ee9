package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynolog"
	"github.com/dynoai/dynoai/dyno/dynosim"
	"github.com/dynoai/dynoai/jetdrive"
	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/ve"
)

// simJD is a JetDrive whose samples come from a channel, as a dyno's bus
// would carry them: without the ECU's commanded AFR.
type simJD struct {
	layout  dyno.Layout
	samples chan dyno.Sample
}

func newSimJD(l dyno.Layout) *simJD {
	l.Channels &^= dyno.NewChannelSet(dyno.ChanAFRCommanded)
	l.Name, l.Format = "sim bus", "jetdrive"
	return &simJD{layout: l, samples: make(chan dyno.Sample, 64)}
}

func (f *simJD) Layout() dyno.Layout { return f.layout }

func (f *simJD) Next(ctx context.Context, s *dyno.Sample) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case v, ok := <-f.samples:
		if !ok {
			return io.EOF
		}
		*s = v
		for c := range s.AFRCommanded {
			s.AFRCommanded[c] = dyno.Missing
		}
		return nil
	}
}

func (f *simJD) Stats() jetdrive.Stats          { return jetdrive.Stats{} }
func (f *simJD) Mapping() []jetdrive.Assignment { return nil }

// liveCase is a simulated dyno session with a known VE error: WOT pulls
// with decels between them, the ECU's VE off by a few percent per cell.
type liveCase struct {
	grid  [2][]float64 // rpm, map
	truth [2]dyno.Surface
	ecu   [2]dyno.Surface
}

func newLiveCase(t testing.TB) liveCase {
	c := liveCase{grid: [2][]float64{{2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500}, {60, 80, 100}}}
	c.truth = dynosim.DefaultTrueVE(dynosim.M8114(), 0)
	for cyl, pct := range [2]float64{-6, 4} {
		s, err := dynosim.PerturbSurface(c.truth[cyl], c.grid[0], c.grid[1], pct, 1, uint64(30+cyl))
		require.NoError(t, err)
		c.ecu[cyl] = s
	}
	return c
}

// sim returns the session's simulator: pulls WOT pulls from 2000 to 5500
// rpm, each followed by a decel.
func (c liveCase) sim(t testing.TB, pulls int, seed uint64) *dynosim.Simulator {
	var plan []dynosim.Step
	for range pulls {
		plan = append(plan, dynosim.PullStep(2000, 5500), dynosim.DecelStep(5500, 2000, 0, 0))
	}
	sim, err := dynosim.New(dynosim.Config{Seed: seed, ECUVE: c.ecu, Noise: dynosim.TypicalNoise(), Plan: plan})
	require.NoError(t, err)
	return sim
}

// targetTable is the ECU's target AFR on the grid, as a tuner would type
// it into the session (the bus does not carry it).
func (c liveCase) targetTable(sim *dynosim.Simulator) *LiveTargetTable {
	tt := &LiveTargetTable{RPM: c.grid[0], MAP: c.grid[1]}
	for _, r := range c.grid[0] {
		row := make([]float64, len(c.grid[1]))
		for j, m := range c.grid[1] {
			row[j] = sim.TargetAFR().At(r, m)
		}
		tt.AFR = append(tt.AFR, row)
	}
	return tt
}

// play sends every sample of src to jd.
func play(ctx context.Context, t testing.TB, src dyno.Source, jd *simJD) {
	s := dyno.NewSample()
	for {
		err := src.Next(ctx, &s)
		if err == io.EOF {
			return
		}
		require.NoError(t, err)
		select {
		case jd.samples <- s:
		case <-ctx.Done():
			return
		}
	}
}

// liveSessionView reads GET /api/jetdrive/session.
func liveSessionView(t testing.TB, e *testEnv) liveView {
	t.Helper()
	r := e.get(t, "/api/jetdrive/session")
	require.Equal(t, http.StatusOK, r.code, "body: %s", r.body)
	var v liveView
	require.NoError(t, json.Unmarshal(r.body, &v))
	return v
}

// The accuracy the analysis demands (ve's robustness tests, issue 10):
// these are the guards the analyzer holds on a rough VE error, the worst
// it is allowed to do. On fast WOT pulls in the simulator the analyzer
// itself (ve.Analyze on the same samples) misses by up to 3.5 % at
// 3500-4000 rpm, beyond the 3 % the issue wants for rough errors, so the
// session is held to the guard and to equality with Analyze.
const (
	liveMaxPct = 5.0
	liveRMSPct = 2.0
)

// checkConverged compares every corrected cell of a snapshot with the
// truth, trueVE/ecuVE at the node, and returns how many cells it checked.
func (c liveCase) checkConverged(t testing.TB, v liveView) int {
	t.Helper()
	require.NotNil(t, v.Result, "no snapshot")
	n := 0
	var sum2, worst float64
	for _, cyl := range v.Result.Cylinders {
		ci := map[string]int{"front": 0, "rear": 1, "Front": 0, "Rear": 1}[cyl.Name]
		for i, r := range v.Result.RPM {
			for j, m := range v.Result.MAP {
				got := cyl.Multiplier[i][j]
				if got == nil || cyl.Confidence[i][j] == "none" {
					continue
				}
				want := c.truth[ci].At(r, m) / c.ecu[ci].At(r, m)
				d := math.Abs(*got-want) * 100
				worst = math.Max(worst, d)
				sum2 += d * d
				n++
				require.LessOrEqual(t, d, liveMaxPct, "%s %v rpm %v kPa: corrected %.4f, truth %.4f", cyl.Name, r, m, *got, want)
			}
		}
	}
	require.GreaterOrEqual(t, n, 10, "too few cells corrected")
	rms := math.Sqrt(sum2 / float64(n))
	t.Logf("%d cells corrected: worst %.2f %%, RMS %.2f %% from the truth", n, worst, rms)
	require.LessOrEqual(t, rms, liveRMSPct)
	return n
}

// checkMatchesAnalyze analyzes the recorded pulls' logs, one after the
// other, with the session's options, and requires the session's snapshot to
// give the same corrections: the live path loses or adds nothing.
func checkMatchesAnalyze(t testing.TB, v liveView, logs []dyno.Sample, layout dyno.Layout, opts ve.Options) {
	t.Helper()
	a, err := ve.New(opts)
	require.NoError(t, err)
	res, err := a.Analyze(t.Context(), dyno.NewSliceSource(layout, logs))
	require.NoError(t, err)
	doc := res.Document()
	require.Equal(t, doc.RPM, v.Result.RPM)
	require.Equal(t, doc.MAP, v.Result.MAP)
	require.Len(t, v.Result.Cylinders, len(doc.Cylinders))
	for k, cyl := range doc.Cylinders {
		for i := range cyl.Multiplier {
			for j, want := range cyl.Multiplier[i] {
				got := v.Result.Cylinders[k].Multiplier[i][j]
				if want == nil || got == nil {
					require.Equal(t, want == nil, got == nil, "%s cell %d,%d", cyl.Name, i, j)
					continue
				}
				require.InDelta(t, *want, *got, 0.005, "%s cell %d,%d", cyl.Name, i, j)
			}
		}
	}
}

// A live session on a simulated bus: each pull is recorded as a jetdrive
// run whose canonical CSV carries the session's target, analyzed by the
// queue; the session's snapshot streams, converges to the truth, stops,
// and saves as a run that apply can use.
func TestLiveSession(t *testing.T) {
	c := newLiveCase(t)
	const pulls = 3
	sim := c.sim(t, pulls, 5)
	jd := newSimJD(sim.Layout())
	e := newEnv(t, func(cfg *Config) { cfg.JetDrive = jd })

	r := e.get(t, "/api/jetdrive/session")
	require.Equal(t, http.StatusOK, r.code, "no session is a state, not an error")
	require.Equal(t, "none", r.json(t)["state"])

	// No target: refused, saying why.
	r = e.postJSON(t, "/api/jetdrive/session", LiveSessionOptions{}, nil)
	require.Equal(t, http.StatusBadRequest, r.code, "body: %s", r.body)
	require.Contains(t, string(r.body), "JetDrive rarely carries")
	r = e.postJSON(t, "/api/jetdrive/session", LiveSessionOptions{TargetAFR: 13, FuelDefault: "gasoline"}, nil)
	require.Equal(t, http.StatusBadRequest, r.code, "two targets: %s", r.body)

	r = e.postJSON(t, "/api/jetdrive/session", LiveSessionOptions{Target: c.targetTable(sim), Vehicle: "sim M8",
		Analysis: map[string]string{"clamp_percent": "15"}}, nil)
	require.Equal(t, http.StatusCreated, r.code, "body: %s", r.body)
	r2 := e.postJSON(t, "/api/jetdrive/session", LiveSessionOptions{TargetAFR: 13}, nil)
	require.Equal(t, http.StatusConflict, r2.code, "a second session: %s", r2.body)

	// Follow the stream while the session plays.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", e.ts.URL+"/api/jetdrive/session/stream", nil)
	require.NoError(t, err)
	stream, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer stream.Body.Close()
	require.Equal(t, "text/event-stream", stream.Header.Get("Content-Type"))
	events := make(chan liveView, 1024)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(stream.Body)
		sc.Buffer(make([]byte, 1<<20), 8<<20)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "snapshot":
				var v liveView
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &v) == nil {
					events <- v
				}
			}
		}
	}()

	go play(ctx, t, sim, jd)
	deadline := time.Now().Add(60 * time.Second)
	var v liveView
	for {
		v = liveSessionView(t, e)
		if len(v.Pulls) == pulls && v.Samples.Received > 0 && v.Samples.Analyzed > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "pulls recorded: %+v", v.Pulls)
		time.Sleep(20 * time.Millisecond)
	}
	require.Zero(t, v.Samples.Dropped)
	var logs []dyno.Sample
	var logLayout dyno.Layout
	for i, p := range v.Pulls {
		require.Empty(t, p.Error)
		require.Equal(t, i+1, p.Number)
		require.NotEmpty(t, p.RunID)
		require.Greater(t, p.MaxRPM-p.MinRPM, 2500.0, "pull %d", p.Number)
		run := e.wait(t, p.RunID)
		require.Equal(t, runstore.StatusCompleted, run.Status, "pull %d: %+v", p.Number, run.Error)
		require.Equal(t, runstore.SourceJetDrive, run.Source)
		require.Equal(t, "sim M8", run.Vehicle)
		// The recorded log downloads as a canonical CSV with the target
		// as its commanded AFR.
		files, err := e.runs.Files(t.Context(), run.ID)
		require.NoError(t, err)
		require.Equal(t, run.Filename, files[0].Name)
		d := e.get(t, fmtPath("/api/runs/%s/files/%d", run.ID, files[0].ID))
		require.Equal(t, http.StatusOK, d.code)
		rd, err := dynolog.NewReader(bytes.NewReader(d.body), files[0].Name, dynolog.ReadOptions{})
		require.NoError(t, err)
		require.True(t, rd.Layout().Channels.Has(dyno.ChanAFRCommanded), "channels %v", rd.Layout().Channels)
		logLayout = rd.Layout()
		rows := 0
		s := dyno.NewSample()
		for rd.Next(t.Context(), &s) == nil {
			rows++
			if len(logs) == 0 || s.Time > logs[len(logs)-1].Time {
				logs = append(logs, s) // a pull's pre-roll may repeat the last one's end
			}
			if dyno.Has(s.AFR[0]) {
				require.InDelta(t, sim.TargetAFR().At(s.RPM, s.MAP), s.AFRCommanded[0], 0.2)
			}
		}
		require.Equal(t, p.Samples, rows)
		rd.Close()
	}

	// Stop: the final snapshot converges to the truth.
	r = e.do(t, "POST", "/api/jetdrive/session/stop", nil, nil)
	require.Equal(t, http.StatusOK, r.code, "body: %s", r.body)
	require.NoError(t, json.Unmarshal(r.body, &v))
	require.Equal(t, "stopped", v.State)
	require.NotNil(t, v.StoppedAt)
	c.checkConverged(t, v)
	opts := ve.Options{ClampPercent: 15, MinSamples: 5, Grid: ve.Grid{RPM: c.grid[0], MAP: c.grid[1]}}
	opts.LearnDelayOptions.Prefix = liveLearnPrefix
	checkMatchesAnalyze(t, v, logs, logLayout, opts)

	// The stream sent snapshots with rising sequence numbers, and ended.
	var seqs []uint64
	for ev := range events {
		seqs = append(seqs, ev.Seq)
	}
	require.GreaterOrEqual(t, len(seqs), 2)
	for i := 1; i < len(seqs); i++ {
		require.Greater(t, seqs[i], seqs[i-1])
	}

	// The lease is free again.
	l, err := e.runs.(runstore.Leaser).CurrentLease(t.Context(), liveLeaseName)
	require.NoError(t, err)
	require.False(t, l.Held(time.Now()))

	// Save the snapshot as a run: completed, with the multipliers apply uses.
	r = e.do(t, "POST", "/api/jetdrive/session/save", nil, nil)
	require.Equal(t, http.StatusCreated, r.code, "body: %s", r.body)
	saved := r.json(t)["run_id"].(string)
	run, err := e.runs.Get(t.Context(), saved)
	require.NoError(t, err)
	require.Equal(t, runstore.StatusCompleted, run.Status)
	require.Equal(t, runstore.SourceJetDrive, run.Source)
	files, err := e.runs.Files(t.Context(), saved)
	require.NoError(t, err)
	names := map[string]bool{}
	for _, f := range files {
		names[f.Name] = true
	}
	require.True(t, names["VE_Multiplier_Front.csv"] && names["VE_Multiplier_Rear.csv"], "files %v", names)
}

// Replicas sharing a store: one records, never two; when it stops, another
// may start.
func TestLiveSessionOneRecorder(t *testing.T) {
	store := runstore.NewMemory(runstore.Options{})
	files := runstore.NewMemFileStore()
	layout := dyno.Layout{Cylinders: 2, Channels: dyno.NewChannelSet(dyno.ChanTime, dyno.ChanRPM, dyno.ChanMAP, dyno.ChanTPS, dyno.ChanAFR)}
	var envs [2]*testEnv
	for i := range envs {
		envs[i] = newEnv(t, func(cfg *Config) {
			cfg.Runs, cfg.Files, cfg.JetDrive, cfg.Replica = store, files, newSimJD(layout), fmt.Sprintf("replica-%d", i)
		})
	}
	opts := LiveSessionOptions{TargetAFR: 13.2}
	r := envs[0].postJSON(t, "/api/jetdrive/session", opts, nil)
	require.Equal(t, http.StatusCreated, r.code, "body: %s", r.body)
	r = envs[1].postJSON(t, "/api/jetdrive/session", opts, nil)
	require.Equal(t, http.StatusConflict, r.code, "body: %s", r.body)
	require.Contains(t, string(r.body), "replica-0/")
	r = envs[1].get(t, "/api/jetdrive/session")
	require.Equal(t, http.StatusConflict, r.code, "the other replica names the holder: %s", r.body)

	r = envs[0].do(t, "POST", "/api/jetdrive/session/stop", nil, nil)
	require.Equal(t, http.StatusOK, r.code, "body: %s", r.body)
	r = envs[1].postJSON(t, "/api/jetdrive/session", opts, nil)
	require.Equal(t, http.StatusCreated, r.code, "body: %s", r.body)
	r = envs[0].postJSON(t, "/api/jetdrive/session", opts, nil)
	require.Equal(t, http.StatusConflict, r.code, "body: %s", r.body)
}

// A session whose lease was taken over (its replica stalled past the lease
// and another acquired it) stops recording at its next renewal: never two.
func TestLiveSessionLeaseLost(t *testing.T) {
	defer func(d time.Duration) { liveLeaseRenew = d }(liveLeaseRenew)
	liveLeaseRenew = 20 * time.Millisecond
	clock := time.Now()
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	store := runstore.NewMemory(runstore.Options{Now: now})
	layout := dyno.Layout{Cylinders: 2, Channels: dyno.NewChannelSet(dyno.ChanTime, dyno.ChanRPM, dyno.ChanMAP, dyno.ChanTPS, dyno.ChanAFR)}
	e := newEnv(t, func(cfg *Config) { cfg.Runs, cfg.JetDrive = store, newSimJD(layout) })
	r := e.postJSON(t, "/api/jetdrive/session", LiveSessionOptions{TargetAFR: 13.2}, nil)
	require.Equal(t, http.StatusCreated, r.code, "body: %s", r.body)

	// The store's clock jumps past the lease; another replica takes it.
	mu.Lock()
	clock = clock.Add(time.Minute)
	mu.Unlock()
	_, err := store.AcquireLease(t.Context(), liveLeaseName, "replica-b/x", time.Hour)
	require.NoError(t, err)
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := liveSessionView(t, e)
		if v.State != "recording" {
			require.Equal(t, "lost", v.State)
			require.Contains(t, v.Error, "lease was lost")
			break
		}
		require.True(t, time.Now().Before(deadline), "the session kept recording without its lease")
		time.Sleep(10 * time.Millisecond)
	}
	// The new holder's lease is untouched.
	l, err := store.CurrentLease(t.Context(), liveLeaseName)
	require.NoError(t, err)
	require.Equal(t, "replica-b/x", l.Holder)
}

// FuzzLiveOptions: any body either is refused with a client error or gives
// a session setup whose target is a finite AFR wherever it is read.
func FuzzLiveOptions(f *testing.F) {
	for _, seed := range []string{
		`{"target_afr": 13.2}`, `{"fuel_default": "e85", "accumulate": "all"}`, `{"target_from_stream": true, "pull": {"wot_throttle_pct": 60}}`,
		`{"target": {"rpm": [2000, 3000], "map_kpa": [50, 100], "afr": [[13, 12.5], [13.1, 12.6]]}, "grid": {"rpm": [1000, 2000], "map_kpa": [30, 60]}}`,
		`{"target_afr": 1e308}`, `{"target": {"rpm": [3000, 2000], "map_kpa": [1], "afr": [[1]]}}`, `{"analysis": {"clamp_percent": "0"}, "target_afr": 13}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var o LiveSessionOptions
		if json.Unmarshal(body, &o) != nil {
			return
		}
		st, err := parseLiveOptions(o)
		if err != nil {
			var he *Error
			require.ErrorAs(t, err, &he)
			require.Less(t, he.Status, 500, "%v", err)
			return
		}
		if st.target != nil {
			for _, rpm := range []float64{0, 1500, 4000, 9000} {
				for _, m := range []float64{10, 60, 105, 300} {
					v := st.target.At(rpm, m)
					require.False(t, math.IsNaN(v) || math.IsInf(v, 0), "target at %v/%v is %v", rpm, m, v)
				}
			}
		}
	})
}
