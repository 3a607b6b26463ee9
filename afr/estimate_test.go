package afr_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"testing"
	"time"

	"github.com/dynoai/dynoai/afr"
	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynosim"
	"github.com/dynoai/dynoai/internal/robustsim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func plan(hi float64) []dynosim.Step {
	p := []dynosim.Step{dynosim.PullStep(1500, hi)}
	up := true
	for m := 30.0; m <= 90; m += 10 {
		if up {
			p = append(p, dynosim.SweepStep(1500, hi, m, 0))
		} else {
			p = append(p, dynosim.SweepStep(hi, 1500, m, 0))
		}
		up = !up
	}
	return append(p, dynosim.PullStep(1500, hi))
}

func simLog(t testing.TB, delay dyno.TransportDelay, seed uint64, lag time.Duration) *dynosim.Simulator {
	truth := dynosim.DefaultTrueVE(dynosim.M8114(), 0)
	rpm := []float64{1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500, 6000, 6500}
	mp := []float64{20, 30, 40, 50, 60, 70, 80, 90, 100}
	var ecu [2]dyno.Surface
	for c := range 2 {
		s, err := dynosim.PerturbSurface(truth[c], rpm, mp, -10, 5, seed*31+uint64(c))
		require.NoError(t, err)
		ecu[c] = s
	}
	sim, err := dynosim.New(dynosim.Config{Seed: seed, DT: 20 * time.Millisecond, ECUVE: ecu,
		Delay: delay, SensorLag: lag, Noise: dynosim.TypicalNoise(), Plan: plan(5500)})
	require.NoError(t, err)
	return sim
}

// The estimate lands within 50 ms of the simulator's transport delay from
// 100 ms to 1 s, on logs whose ECU VE error varies cell to cell. The plan
// stops 300 rev/min short of the redline, as a tuner's pulls do.
func TestEstimateDelaySimulated(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates 25 three-minute sessions")
	}
	for _, d := range []time.Duration{100, 250, 400, 700, 1000} {
		for seed := range uint64(5) {
			delay := d * time.Millisecond
			est, err := afr.EstimateDelay(t.Context(), simLog(t, dyno.TransportDelay{Fixed: delay}, seed, 0), afr.EstimateOptions{})
			require.NoError(t, err)
			t.Logf("true %v seed %d: %v confidence %.2f explained %.3f", delay, seed, est.Overall, est.Confidence, est.Explained)
			assert.InDelta(t, delay.Seconds(), est.Overall.Seconds(), 0.050, "delay %v seed %d", delay, seed)
			assert.GreaterOrEqual(t, est.Confidence, afr.DefaultAutoMinConfidence)
			assert.Equal(t, est.Overall, est.Delay.Fixed)
			assert.True(t, est.Commanded)
			assert.Len(t, est.Bands, len(afr.DefaultDelayBands())+1)
			assert.Zero(t, est.Bands[0].MinRPM)
			assert.Zero(t, est.Bands[len(est.Bands)-1].MaxRPM)
			b, err := json.Marshal(est)
			require.NoError(t, err, "an estimate is JSON (no NaN or Inf)")
			assert.Contains(t, string(b), `"bands":[{"min_rpm":0,"max_rpm":2500,`)
		}
	}
}

// Without the commanded AFR (a log from a plain data logger) the estimate
// still comes from the readings' consistency per cell.
func TestEstimateDelayWithoutCommanded(t *testing.T) {
	sim := simLog(t, dyno.TransportDelay{Fixed: 400 * time.Millisecond}, 1, 0)
	est, err := afr.EstimateDelay(t.Context(), stripCommanded{sim}, afr.EstimateOptions{})
	require.NoError(t, err)
	assert.False(t, est.Commanded)
	assert.InDelta(t, 0.4, est.Overall.Seconds(), 0.05)
}

type stripCommanded struct{ dyno.Source }

func (s stripCommanded) Next(ctx context.Context, dst *dyno.Sample) error {
	if err := s.Source.Next(ctx, dst); err != nil {
		return err
	}
	dst.AFRCommanded = dyno.MissingPerCylinder()
	return nil
}

func TestEstimateErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		opt  afr.EstimateOptions
	}{
		{"negative step", afr.EstimateOptions{Step: -time.Millisecond}},
		{"delay too short", afr.EstimateOptions{MaxDelay: 10 * time.Millisecond}},
		{"too many lags", afr.EstimateOptions{Step: time.Millisecond, MaxDelay: 5 * time.Second}},
		{"gap under step", afr.EstimateOptions{MaxGap: time.Millisecond}},
		{"cell rpm", afr.EstimateOptions{CellRPM: -1}},
		{"cell map", afr.EstimateOptions{CellMAP: 1000}},
		{"band order", afr.EstimateOptions{BandEdges: []float64{3000, 2000}}},
		{"band confidence", afr.EstimateOptions{MinBandConfidence: 2}},
		{"closed throttle", afr.EstimateOptions{ClosedTPS: 60}},
		{"closed throttle NaN", afr.EstimateOptions{ClosedTPS: math.NaN()}},
		{"settle", afr.EstimateOptions{Settle: time.Minute}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := afr.NewDelayEstimator(tt.opt)
			require.ErrorIs(t, err, afr.ErrEstimate)
		})
	}
	e, err := afr.NewDelayEstimator(afr.EstimateOptions{})
	require.NoError(t, err)
	s := dyno.NewSample()
	s.Time = time.Second
	require.NoError(t, e.Add(&s))
	s.Time = time.Second / 2
	err = e.Add(&s)
	require.ErrorIs(t, err, afr.ErrEstimate)
	require.ErrorContains(t, err, "sample 2 at 500ms: time goes backwards from 1s")

	// A steady log says nothing about the delay.
	_, err = afr.EstimateDelay(t.Context(), &steady{n: 2000}, afr.EstimateOptions{})
	require.ErrorIs(t, err, afr.ErrNoDelaySignal)
}

// steady is a log of a constant engine state.
type steady struct{ i, n int }

func (s *steady) Layout() dyno.Layout { return dyno.Layout{Name: "steady"} }

func (s *steady) Next(_ context.Context, dst *dyno.Sample) error {
	if s.i == s.n {
		return io.EOF
	}
	dst.Reset()
	dst.Time = time.Duration(s.i) * 20 * time.Millisecond
	dst.RPM, dst.MAP, dst.TPS = 3000, 60, 30
	dst.AFR[0] = 13.5
	s.i++
	return nil
}

// The AutoAligner estimates from its prefix, then streams exactly what
// Align with the estimate would.
func TestAutoAlign(t *testing.T) {
	delay := dyno.TransportDelay{Fixed: 400 * time.Millisecond}
	a := afr.AutoAlign(simLog(t, delay, 2, 0), afr.AutoAlignOptions{})
	_, err := a.Estimate()
	require.ErrorIs(t, err, afr.ErrEstimate)
	assert.True(t, a.Delay().IsZero())
	got, err := dyno.Collect(t.Context(), a)
	require.NoError(t, err)
	est, err := a.Estimate()
	require.NoError(t, err)
	require.GreaterOrEqual(t, est.Confidence, afr.DefaultAutoMinConfidence)
	assert.InDelta(t, 0.4, a.Delay().Fixed.Seconds(), 0.05)
	want, err := dyno.Collect(t.Context(), afr.Align(simLog(t, delay, 2, 0), a.Delay()))
	require.NoError(t, err)
	require.Equal(t, len(want), len(got))
	for i := range want {
		require.Equal(t, want[i].Time, got[i].Time)
		if dyno.Has(want[i].AFR[0]) {
			require.InDelta(t, want[i].AFR[0], got[i].AFR[0], 1e-12, "sample %d", i)
		}
	}
}

// Without signal the AutoAligner falls back and says why.
func TestAutoAlignFallback(t *testing.T) {
	fb := dyno.TransportDelay{Fixed: 100 * time.Millisecond}
	a := afr.AutoAlign(&steady{n: 500}, afr.AutoAlignOptions{Fallback: fb})
	got, err := dyno.Collect(t.Context(), a)
	require.NoError(t, err)
	assert.Len(t, got, 500)
	_, err = a.Estimate()
	assert.ErrorIs(t, err, afr.ErrNoDelaySignal)
	assert.Equal(t, fb, a.Delay())
}

type failing struct{ steady }

func (f *failing) Next(ctx context.Context, dst *dyno.Sample) error {
	if f.i == 10 {
		return errBoom
	}
	return f.steady.Next(ctx, dst)
}

var errBoom = errors.New("boom")

func TestAutoAlignSourceError(t *testing.T) {
	a := afr.AutoAlign(&failing{steady{n: 100}}, afr.AutoAlignOptions{})
	s := dyno.NewSample()
	require.ErrorIs(t, a.Next(t.Context(), &s), errBoom)
	require.ErrorIs(t, a.Next(t.Context(), &s), errBoom)
}

func BenchmarkEstimateDelay(b *testing.B) {
	samples, err := dyno.Collect(context.Background(), simLog(b, dyno.TransportDelay{Fixed: 400 * time.Millisecond}, 1, 0))
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		_, err := afr.EstimateDelay(context.Background(), dyno.NewSliceSource(dyno.Layout{}, samples), afr.EstimateOptions{})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(samples)), "samples/op")
}

// A first-order sensor lag adds about its time constant to the estimate:
// the mean delay of the lag, which Align then undoes as a shift.
func TestEstimateDelayWithSensorLag(t *testing.T) {
	est, err := afr.EstimateDelay(t.Context(), simLog(t, dyno.TransportDelay{Fixed: 400 * time.Millisecond}, 1, 100*time.Millisecond), afr.EstimateOptions{})
	require.NoError(t, err)
	assert.InDelta(t, 0.5, est.Overall.Seconds(), 0.05)
}

func ExampleEstimateDelay() {
	truth := dynosim.DefaultTrueVE(dynosim.M8114(), 0)
	ecu, _ := dynosim.PerturbSurface(truth[0], []float64{1500, 2500, 3500, 4500, 5500}, []float64{20, 40, 60, 80, 100}, -8, 5, 1)
	sim, _ := dynosim.New(dynosim.Config{
		ECUVE: [2]dyno.Surface{ecu, ecu}, Noise: dynosim.TypicalNoise(), Seed: 1,
		Delay: dyno.TransportDelay{Fixed: 300 * time.Millisecond},
		// Up and down through the same cells: a reading that lags shows.
		Plan: []dynosim.Step{dynosim.SweepStep(1500, 5500, 40, 0), dynosim.SweepStep(5500, 1500, 40, 0),
			dynosim.SweepStep(1500, 5500, 70, 0), dynosim.SweepStep(5500, 1500, 70, 0)},
	})
	est, err := afr.EstimateDelay(context.Background(), sim, afr.EstimateOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("delay %.1f s, confident: %v\n", est.Overall.Seconds(), est.Confidence > 0.3)
	// Output: delay 0.3 s, confident: true
}

// FuzzDelayEstimator feeds arbitrary samples (times out of order, NaN,
// infinities, huge values): Add reports errors, nothing panics, Estimate
// returns an estimate or an error.
func FuzzDelayEstimator(f *testing.F) {
	f.Add([]byte{0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150})
	f.Add([]byte{255, 0, 255, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := afr.NewDelayEstimator(afr.EstimateOptions{MaxDelay: 200 * time.Millisecond, BandEdges: []float64{3000}})
		if err != nil {
			t.Fatal(err)
		}
		vals := []float64{math.NaN(), math.Inf(1), -1, 0, 1e300, 5.1, 14.7, 3000, 60}
		pick := func(b byte) float64 {
			if int(b) < len(vals) {
				return vals[b]
			}
			return float64(b) * 37
		}
		s := dyno.NewSample()
		for i := 0; i+4 <= len(data); i += 4 {
			s.Time = time.Duration(data[i]) * 10 * time.Millisecond
			s.RPM, s.MAP = pick(data[i+1]), pick(data[i+2])/4
			s.AFR[0] = pick(data[i+3]) / 20
			s.AFRCommanded[0] = pick(data[i+3]^0x55) / 20
			_ = e.Add(&s)
		}
		est, err := e.Estimate()
		if err == nil && (est.Overall < 0 || est.Overall > 200*time.Millisecond || math.IsNaN(est.Confidence)) {
			t.Fatalf("estimate out of range: %+v", est)
		}
		if _, err := json.Marshal(est); err != nil {
			t.Fatalf("estimate is not JSON: %v: %+v", err, est)
		}
	})
}

// DefaultDelayBands returns a fresh slice: changing it changes no default.
func TestDefaultDelayBands(t *testing.T) {
	b := afr.DefaultDelayBands()
	require.Equal(t, []float64{2500, 3500, 4500}, b)
	b[0] = 0
	assert.Equal(t, 2500.0, afr.DefaultDelayBands()[0])
}

// With FitRPM the estimate follows a delay that shrinks with engine speed
// when the bands support it, and does not extrapolate it above its value
// at the slowest band.
func TestEstimateDelayFitRPM(t *testing.T) {
	delay := dyno.TransportDelay{Fixed: 100 * time.Millisecond, PerRPM: 300} // 250 ms at 2000, 175 at 4000
	for seed := range uint64(2) {
		truth := dynosim.DefaultTrueVE(dynosim.M8114(), 0)
		rpm := []float64{1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500, 6000}
		mp := []float64{20, 30, 40, 50, 60, 70, 80, 90, 100}
		var ecu [2]dyno.Surface
		for c := range 2 {
			s, err := dynosim.PerturbSurface(truth[c], rpm, mp, 0, 6, seed*31+uint64(c))
			require.NoError(t, err)
			ecu[c] = s
		}
		var plan []dynosim.Step
		for _, m := range []float64{40, 55, 70, 85} {
			plan = append(plan, dynosim.SweepStep(1500, 5500, m, 200), dynosim.SweepStep(5500, 1500, m, 200))
		}
		sim, err := dynosim.New(dynosim.Config{Seed: seed, DT: 20 * time.Millisecond, ECUVE: ecu, Delay: delay,
			Noise: dynosim.TypicalNoise(), Plan: plan})
		require.NoError(t, err)
		est, err := afr.EstimateDelay(t.Context(), sim, afr.EstimateOptions{FitRPM: true})
		require.NoError(t, err)
		t.Logf("seed %d: %+v, confidence %.2f", seed, est.Delay, est.Confidence)
		require.Positive(t, est.PerRPM, "the fit was not used")
		for _, r := range []float64{2000, 3000, 4000} {
			assert.InDelta(t, delay.At(r).Seconds(), est.Delay.At(r).Seconds(), 0.030, "at %v rev/min", r)
		}
		slowest := est.Bands[0].MeanRPM
		assert.Equal(t, est.Delay.At(slowest), est.Delay.Max)
		assert.Equal(t, est.Delay.Max, est.Max)
		assert.Equal(t, est.Delay.Max, est.Delay.At(1000), "no extrapolation below the slowest band")
		b, err := json.Marshal(est)
		require.NoError(t, err)
		assert.Contains(t, string(b), `"max_ns":`)
	}
}

// A log of one pull (what many dyno exports hold) passes each cell once the
// same way: it says nothing about the delay, and the estimate is not
// confident.
func TestEstimateDelayOnePull(t *testing.T) {
	sim, err := dynosim.New(dynosim.Config{Seed: 1, DT: 50 * time.Millisecond, Noise: dynosim.TypicalNoise(),
		Delay: dyno.TransportDelay{Fixed: 300 * time.Millisecond}, SensorLag: 100 * time.Millisecond,
		Plan: []dynosim.Step{dynosim.PullStep(2000, 5500)}})
	require.NoError(t, err)
	est, err := afr.EstimateDelay(t.Context(), sim, afr.EstimateOptions{})
	if err == nil {
		assert.Less(t, est.Confidence, afr.DefaultAutoMinConfidence, "%+v", est)
	} else {
		assert.ErrorIs(t, err, afr.ErrNoDelaySignal)
	}
}

// Fuel cut on closed-throttle decels reads as air; the states of closed
// throttle are left out, so the estimate stays on the delay of steady
// running (transport + sensor lag) on a decel-heavy session.
func TestEstimateDelayDecelSession(t *testing.T) {
	c := robustsim.Case{Truth: robustsim.Rough, RPMStep: 500, Seed: 11, Decel: true}
	s, err := robustsim.New(c)
	require.NoError(t, err)
	src, err := s.Source()
	require.NoError(t, err)
	est, err := afr.EstimateDelay(t.Context(), src, afr.EstimateOptions{})
	require.NoError(t, err)
	t.Logf("%v: %v, confidence %.2f; truth %v at 3000 rev/min", c, est.Overall, est.Confidence, s.EffectiveDelayAt(3000))
	assert.InDelta(t, s.EffectiveDelayAt(3000).Seconds(), est.Overall.Seconds(), delayTolerance.Seconds())
	assert.GreaterOrEqual(t, est.Confidence, afr.DefaultAutoMinConfidence)
}

// An AutoAligner whose prefix stops inside a chunk of its buffer (at
// MaxSamples) streams the rest from its source: the output is still what
// Align with its delay gives, sample for sample.
func TestAutoAlignPrefixBound(t *testing.T) {
	delay := dyno.TransportDelay{Fixed: 250 * time.Millisecond}
	fb := dyno.TransportDelay{Fixed: 200 * time.Millisecond}
	a := afr.AutoAlign(simLog(t, delay, 3, 0), afr.AutoAlignOptions{MaxSamples: 1500, Fallback: fb})
	got, err := dyno.Collect(t.Context(), a)
	require.NoError(t, err)
	want, err := dyno.Collect(t.Context(), afr.Align(simLog(t, delay, 3, 0), a.Delay()))
	require.NoError(t, err)
	require.Greater(t, len(want), 1500)
	require.Equal(t, len(want), len(got))
	for i := range want {
		require.Equal(t, want[i].Time, got[i].Time, "sample %d", i)
		require.Equal(t, dyno.Has(want[i].AFR[0]), dyno.Has(got[i].AFR[0]), "sample %d", i)
		if dyno.Has(want[i].AFR[0]) {
			require.Equal(t, want[i].AFR[0], got[i].AFR[0], "sample %d", i)
		}
	}
}
