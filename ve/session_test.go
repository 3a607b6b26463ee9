package ve

import (
	"context"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/afr"
	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynosim"
)

// sessionSim is a simulated session on a small grid with a known ECU error.
func sessionSim(t testing.TB, seed uint64) (dyno.Source, Grid) {
	g := Grid{RPM: []float64{2000, 2500, 3000, 3500, 4000, 4500, 5000}, MAP: []float64{40, 55, 70, 85, 95}}
	truth := dynosim.DefaultTrueVE(dynosim.M8114(), 0)
	var ecu [2]dyno.Surface
	for c, pct := range [2]float64{-8, 5} {
		s, err := dynosim.PerturbSurface(truth[c], g.RPM, g.MAP, pct, 2, uint64(10+c))
		require.NoError(t, err)
		ecu[c] = s
	}
	sim, err := dynosim.New(dynosim.Config{Seed: seed, ECUVE: ecu, Noise: dynosim.TypicalNoise(),
		Delay: dyno.TransportDelay{Fixed: 150 * time.Millisecond},
		Plan:  dynosim.GridPlan(g.RPM, g.MAP, 2*time.Second)})
	require.NoError(t, err)
	return sim, g
}

func readAll(t testing.TB, src dyno.Source) []dyno.Sample {
	var out []dyno.Sample
	for {
		s := dyno.NewSample()
		err := src.Next(context.Background(), &s)
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		out = append(out, s)
	}
}

type sliceSource struct {
	layout dyno.Layout
	s      []dyno.Sample
	i      int
}

func (s *sliceSource) Layout() dyno.Layout { return s.layout }
func (s *sliceSource) Next(_ context.Context, dst *dyno.Sample) error {
	if s.i >= len(s.s) {
		return io.EOF
	}
	*dst = s.s[s.i]
	s.i++
	return nil
}

// A session fed the samples of a log, then closed, gives exactly what
// Analyze gives on the same log (on a grid that does not grow, so that
// Analyze has nothing to trim), for every option set that changes the
// pipeline: the delay learned, given, or none; the fit or cell means.
func TestSessionMatchesAnalyze(t *testing.T) {
	sim, g := sessionSim(t, 3)
	samples := readAll(t, sim)
	layout := sim.Layout()
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"learned delay", Options{Grid: g, ClampPercent: 20, LearnDelayOptions: afr.AutoAlignOptions{Prefix: SessionLearnPrefix}}},
		{"given delay", Options{Grid: g, NoLearnDelay: true, SensorDelay: dyno.TransportDelay{Fixed: 150 * time.Millisecond}}},
		{"cell means", Options{Grid: g, NoLearnDelay: true, Estimator: CellMean}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(tc.opts)
			require.NoError(t, err)
			want, err := a.Analyze(t.Context(), &sliceSource{layout: layout, s: samples})
			require.NoError(t, err)

			s, err := NewSession(tc.opts, layout)
			require.NoError(t, err)
			for i := range samples {
				require.NoError(t, s.Add(t.Context(), &samples[i]))
			}
			require.NoError(t, s.Close(t.Context()))
			got, err := s.Snapshot()
			require.NoError(t, err)
			require.Equal(t, want.Samples, got.Samples)
			require.Len(t, got.Cylinders, len(want.Cylinders))
			for c := range want.Cylinders {
				require.Equal(t, want.Cylinders[c].Correction.Values, got.Cylinders[c].Correction.Values, "cylinder %d", c)
				require.Equal(t, want.Cylinders[c].Accepted, got.Cylinders[c].Accepted)
				require.Equal(t, want.Cylinders[c].Rejected, got.Cylinders[c].Rejected)
			}
			require.Equal(t, want.Delay, got.Delay)
			added, analyzed := s.Samples()
			require.Equal(t, len(samples), added)
			require.Equal(t, len(samples), analyzed)
			require.ErrorIs(t, s.Add(t.Context(), &samples[0]), ErrSessionClosed)
		})
	}
}

// Snapshots taken while samples arrive show the evidence growing: hits
// never decrease, and coverage (cells with a correction) only spreads.
func TestSessionSnapshotsGrow(t *testing.T) {
	sim, g := sessionSim(t, 4)
	samples := readAll(t, sim)
	s, err := NewSession(Options{Grid: g, NoLearnDelay: true}, sim.Layout())
	require.NoError(t, err)
	defer s.Abort()
	prevHits := 0
	for i := range samples {
		require.NoError(t, s.Add(t.Context(), &samples[i]))
		if i%2000 != 1999 {
			continue
		}
		// Wait (with a deadline) until the pipeline has taken in what was
		// added, but for the sample or two the time base looks ahead.
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, n := s.Samples(); n >= i+1-4 {
				break
			}
			require.True(t, time.Now().Before(deadline), "the session did not take in the samples added")
			runtime.Gosched()
		}
		snap, err := s.Snapshot()
		require.NoError(t, err)
		hits := 0
		for _, cr := range snap.Cylinders {
			for _, c := range cr.Cells {
				hits += c.Hits
			}
		}
		require.GreaterOrEqual(t, hits, prevHits, "after %d samples", i+1)
		prevHits = hits
	}
	require.Positive(t, prevHits)
}

// An endless stream keeps the session's memory bounded by the grid: after
// a warm-up, feeding ten times more samples grows the heap by nothing that
// scales with them.
func TestSessionMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("feeds a few hundred thousand samples")
	}
	g := Grid{RPM: []float64{2000, 3000, 4000, 5000}, MAP: []float64{40, 60, 80, 100}}
	layout := dyno.Layout{Cylinders: 2, Channels: dyno.NewChannelSet(dyno.ChanTime, dyno.ChanRPM, dyno.ChanMAP, dyno.ChanTPS, dyno.ChanAFR, dyno.ChanAFRCommanded)}
	s, err := NewSession(Options{Grid: g, NoLearnDelay: true}, layout)
	require.NoError(t, err)
	defer s.Abort()
	rng := rand.New(rand.NewPCG(1, 2))
	smp := dyno.NewSample()
	feed := func(from, n int) {
		for i := from; i < from+n; i++ {
			smp.Time = time.Duration(i) * 20 * time.Millisecond
			smp.RPM = 2000 + 3000*rng.Float64()
			smp.MAP = 40 + 60*rng.Float64()
			smp.TPS = 50
			smp.AFRCommanded[0], smp.AFRCommanded[1] = 13, 13
			smp.AFR[0], smp.AFR[1] = 13.3+0.05*rng.NormFloat64(), 12.8+0.05*rng.NormFloat64()
			require.NoError(t, s.Add(t.Context(), &smp))
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	feed(0, 20000)
	before := heap()
	feed(20000, 200000)
	after := heap()
	// 200k samples held would be 80 MB; the grid's accumulators are a few KB.
	require.Less(t, float64(after), float64(before)+4<<20, "heap grew from %d to %d bytes", before, after)
	_, err = s.Snapshot()
	require.NoError(t, err)
}

// BenchmarkSessionSnapshot measures a snapshot of two cylinders on a 32x32
// grid with every node sampled: the fit with its smoothness chosen, and
// every node's standard error.
func BenchmarkSessionSnapshot(b *testing.B) {
	rpm := make([]float64, 32)
	mp := make([]float64, 32)
	for i := range rpm {
		rpm[i] = 1000 + 200*float64(i)
		mp[i] = 20 + 3*float64(i)
	}
	layout := dyno.Layout{Cylinders: 2, Channels: dyno.NewChannelSet(dyno.ChanTime, dyno.ChanRPM, dyno.ChanMAP, dyno.ChanTPS, dyno.ChanAFR, dyno.ChanAFRCommanded)}
	s, err := NewSession(Options{Grid: Grid{RPM: rpm, MAP: mp}, NoLearnDelay: true}, layout)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Abort()
	rng := rand.New(rand.NewPCG(3, 4))
	smp := dyno.NewSample()
	const n = 100000
	for i := 0; i < n; i++ {
		smp.Time = time.Duration(i) * 20 * time.Millisecond
		// A slow Lissajous path over the whole grid: no transients.
		sec := smp.Time.Seconds()
		smp.RPM = 4100 + 3200*math.Sin(1.3*sec)
		smp.MAP = 66.5 + 48*math.Sin(0.041*sec+1)
		smp.TPS = 50
		smp.AFRCommanded[0], smp.AFRCommanded[1] = 13, 13
		y := 0.03 * math.Sin(smp.RPM/900) * math.Cos(smp.MAP/20)
		smp.AFR[0], smp.AFR[1] = 13*(1+y)+0.05*rng.NormFloat64(), 13*(1-y)+0.05*rng.NormFloat64()
		if err := s.Add(context.Background(), &smp); err != nil {
			b.Fatal(err)
		}
	}
	for {
		if _, got := s.Samples(); got >= n-200 {
			break
		}
		runtime.Gosched()
	}
	res, err := s.Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	if len(res.Cylinders) != 2 || res.Cylinders[0].Cell(16, 16).Confidence == ConfidenceNone {
		b.Fatalf("the benchmark's grid is not covered: %d cylinders", len(res.Cylinders))
	}
	// While samples arrive: the smoothness chosen before is reused.
	b.Run("live", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Snapshot(); err != nil {
				b.Fatal(err)
			}
		}
	})
	// After Close: every snapshot chooses the smoothness, as Analyze does
	// (and as a live snapshot does when the evidence grew by a tenth).
	if err := s.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Run("choosing", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Snapshot(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
