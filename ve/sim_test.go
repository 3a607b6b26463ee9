package ve

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynosim"
)

// TestAnalyzerRecoversSimulatedECUError runs the physics simulator with an
// ECU whose VE is wrong by a known, cell-varying amount, holds at every cell
// of the grid, and checks that the corrections are the ratio the physics
// says: trueVE / ecuVE (AFR_measured / AFR_target), per cylinder.
func TestAnalyzerRecoversSimulatedECUError(t *testing.T) {
	g := Grid{RPM: []float64{2000, 2500, 3000, 3500, 4000, 4500, 5000}, MAP: []float64{40, 55, 70, 85, 95}}
	truth := dynosim.DefaultTrueVE(dynosim.M8114(), 0)
	var ecu [2]dyno.Surface
	for c, pct := range [2]float64{-8, 5} {
		s, err := dynosim.PerturbSurface(truth[c], g.RPM, g.MAP, pct, 2, uint64(10+c))
		require.NoError(t, err)
		ecu[c] = s
	}
	sim, err := dynosim.New(dynosim.Config{
		Seed: 3, ECUVE: ecu, Noise: dynosim.TypicalNoise(),
		Plan: dynosim.GridPlan(g.RPM, g.MAP, 3*time.Second),
	})
	require.NoError(t, err)
	a, err := New(Options{Grid: g, ClampPercent: 20})
	require.NoError(t, err)
	res, err := a.Analyze(t.Context(), sim)
	require.NoError(t, err)
	require.Len(t, res.Cylinders, 2)
	worst := 0.0
	for _, cr := range res.Cylinders {
		for i, rpm := range g.RPM {
			for j, mp := range g.MAP {
				want := truth[cr.Cylinder].At(rpm, mp) / ecu[cr.Cylinder].At(rpm, mp)
				got := cr.Correction.Get(i, j)
				require.NotEqual(t, ConfidenceNone, cr.Cell(i, j).Confidence, "cell %v/%v has no evidence", rpm, mp)
				worst = math.Max(worst, math.Abs(got/want-1))
			}
		}
	}
	// Holds sit on the cell centres, the noise is 0.05 AFR on ~150 samples a
	// cell: the recovered multiplier is within 0.5 % of the truth everywhere.
	require.Less(t, worst, 0.005, "worst relative error %.4f", worst)
}

// With LearnDelay the analyzer finds the wideband's transport delay in the
// log itself and undoes it; the corrections then match the ones made with
// the true delay given by hand.
func TestAnalyzerLearnsSensorDelay(t *testing.T) {
	g := Grid{RPM: []float64{2000, 2500, 3000, 3500, 4000, 4500, 5000}, MAP: []float64{40, 55, 70, 85, 95}}
	truth := dynosim.DefaultTrueVE(dynosim.M8114(), 0)
	var ecu [2]dyno.Surface
	for c, pct := range [2]float64{-8, 5} {
		s, err := dynosim.PerturbSurface(truth[c], g.RPM, g.MAP, pct, 3, uint64(20+c))
		require.NoError(t, err)
		ecu[c] = s
	}
	const delay = 400 * time.Millisecond
	sim := func() dyno.Source {
		s, err := dynosim.New(dynosim.Config{Seed: 5, ECUVE: ecu, Noise: dynosim.TypicalNoise(),
			Delay: dyno.TransportDelay{Fixed: delay}, Plan: dynosim.DefaultPlan(dynosim.M8114())})
		require.NoError(t, err)
		return s
	}
	learned, err := New(Options{Grid: g, ClampPercent: 20})
	require.NoError(t, err)
	res, err := learned.Analyze(t.Context(), sim())
	require.NoError(t, err)
	require.NotNil(t, res.DelayEstimate, "no estimate: %s", res.DelayNote)
	require.InDelta(t, delay.Seconds(), res.DelayEstimate.Overall.Seconds(), 0.05)

	given, err := New(Options{Grid: g, ClampPercent: 20, NoLearnDelay: true, SensorDelay: dyno.TransportDelay{Fixed: delay}})
	require.NoError(t, err)
	ref, err := given.Analyze(t.Context(), sim())
	require.NoError(t, err)
	// The estimate is within a few tens of milliseconds on this plan of
	// steps between holds (-35 ms), and the corrections agree to 1.5 %: a
	// cell next to a throttle step moves most.
	for c := range res.Cylinders {
		for i, v := range res.Cylinders[c].Correction.Values {
			require.InDelta(t, ref.Cylinders[c].Correction.Values[i], v, 0.015, "cyl %d cell %d (learned %v)", c, i, res.DelayEstimate.Overall)
		}
	}
}
