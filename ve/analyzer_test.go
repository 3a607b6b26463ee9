package ve

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/dyno"
)

var twinLayout = dyno.Layout{Name: "synthetic", Format: "test", Cylinders: 2,
	Channels: dyno.NewChannelSet(dyno.ChanTime, dyno.ChanRPM, dyno.ChanMAP, dyno.ChanTPS, dyno.ChanAFR, dyno.ChanAFRCommanded, dyno.ChanTorque)}

func steady(t time.Duration, rpm, mapKPa, target, measF, measR float64) dyno.Sample {
	s := dyno.NewSample()
	s.Time, s.RPM, s.MAP, s.TPS = t, rpm, mapKPa, 50
	s.AFRCommanded[0], s.AFRCommanded[1] = target, target
	s.AFR[0], s.AFR[1] = measF, measR
	s.Torque = 80
	return s
}

// trueMultiplier is a smooth, linear-in-each-axis VE error field.
func trueMultiplier(cyl int, rpm, mapKPa float64) float64 {
	if cyl == 0 {
		return 1 + 0.00002*(rpm-4000) - 0.0005*(mapKPa-65)
	}
	return 0.97 + 0.00001*(rpm-4000) + 0.0004*(mapKPa-65)
}

// TestAnalyzerRecoversKnownField feeds samples spread uniformly over the
// grid whose measured AFR is target x a known multiplier field, and checks
// that every interior cell's correction is that field at the cell centre.
func TestAnalyzerRecoversKnownField(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	g := dynoAI3Grid()
	var samples []dyno.Sample
	for k := 0; k < 200000; k++ {
		rpm := 1500 + rng.Float64()*5000
		mp := 35 + rng.Float64()*60
		target := 13.0
		s := steady(time.Duration(k)*20*time.Millisecond, rpm, mp, target,
			target*trueMultiplier(0, rpm, mp), target*trueMultiplier(1, rpm, mp))
		samples = append(samples, s)
	}
	f := DefaultFilter()
	f.MaxTPSRate, f.MaxMAPRate = 0, 0 // random jumps between samples are not transients here
	f.Smoothing = -1                  // nor a load to smooth
	a, err := New(Options{Grid: g, Filter: &f, ClampPercent: 50})
	require.NoError(t, err)
	res, err := a.Analyze(t.Context(), dyno.NewSliceSource(twinLayout, samples))
	require.NoError(t, err)
	require.Len(t, res.Cylinders, 2)
	for _, cr := range res.Cylinders {
		assert.Equal(t, len(samples), cr.Accepted)
		for i := 1; i < len(g.RPM)-1; i++ {
			for j := 1; j < len(g.MAP)-1; j++ {
				want := trueMultiplier(cr.Cylinder, g.RPM[i], g.MAP[j])
				assert.InDelta(t, want, cr.Correction.Get(i, j), 2e-4, "cyl %d cell %v/%v", cr.Cylinder, g.RPM[i], g.MAP[j])
				assert.Equal(t, ConfidenceHigh, cr.Cell(i, j).Confidence)
			}
		}
	}
}

// Lean means measured above target: the cell needs more fuel, so its
// multiplier is above 1. The predecessor had this backwards.
func TestAnalyzerSignLeanAddsFuel(t *testing.T) {
	var samples []dyno.Sample
	for k := 0; k < 50; k++ {
		samples = append(samples, steady(time.Duration(k)*20*time.Millisecond, 3000, 80, 13.0, 14.0, 12.0))
	}
	a, err := New(Options{Attribution: NearestCell, ClampPercent: -1})
	require.NoError(t, err)
	res, err := a.Analyze(t.Context(), dyno.NewSliceSource(twinLayout, samples))
	require.NoError(t, err)
	i, j := Nearest(res.Grid.RPM, 3000), Nearest(res.Grid.MAP, 80)
	assert.InDelta(t, 14.0/13.0, res.Cylinder(0).Correction.Get(i, j), 1e-6, "lean front")
	assert.InDelta(t, 12.0/13.0, res.Cylinder(1).Correction.Get(i, j), 1e-6, "rich rear")
	// Untouched cells keep 1.0 and are marked.
	assert.Equal(t, 1.0, res.Cylinder(0).Correction.Get(0, 0))
	assert.Equal(t, ConfidenceNone, res.Cylinder(0).Cell(0, 0).Confidence)
	assert.True(t, math.IsNaN(res.Cylinder(0).Raw.Get(0, 0)))
}

func TestAnalyzerClampAndMinSamples(t *testing.T) {
	var samples []dyno.Sample
	for k := 0; k < 4; k++ { // too few for the default MinSamples of 5
		samples = append(samples, steady(time.Duration(k)*20*time.Millisecond, 2000, 50, 13, 15, 13))
	}
	for k := 0; k < 10; k++ { // a second apart: no transient between the two cells
		samples = append(samples, steady(time.Second+time.Duration(k)*20*time.Millisecond, 4000, 95, 13, 15, 13))
	}
	a, err := New(Options{Attribution: NearestCell, ClampPercent: 7})
	require.NoError(t, err)
	res, err := a.Analyze(t.Context(), dyno.NewSliceSource(twinLayout, samples))
	require.NoError(t, err)
	front := res.Cylinder(0)
	i, j := Nearest(res.Grid.RPM, 2000), Nearest(res.Grid.MAP, 50)
	assert.Equal(t, 1.0, front.Correction.Get(i, j), "under-evidenced cell must keep 1.0")
	assert.Equal(t, 4, front.Cell(i, j).Hits)
	i, j = Nearest(res.Grid.RPM, 4000), Nearest(res.Grid.MAP, 95)
	assert.Equal(t, 1.07, front.Correction.Get(i, j), "15/13 clamps to +7 %")
	assert.True(t, front.Cell(i, j).Clamped)
	assert.Equal(t, 1, front.Clamped)
}

func TestAnalyzerRejectsByReason(t *testing.T) {
	ms := func(k int) time.Duration { return time.Duration(k) * 100 * time.Millisecond }
	base := func(k int) dyno.Sample { return steady(ms(k), 3000, 65, 13, 13.5, 13.5) }
	var samples []dyno.Sample
	add := func(mut func(*dyno.Sample)) {
		s := base(len(samples) * 10) // far apart in time: no transients
		mut(&s)
		samples = append(samples, s)
	}
	add(func(s *dyno.Sample) {})                                                                     // accepted
	add(func(s *dyno.Sample) { s.MAP = dyno.Missing })                                               // no rpm/map
	add(func(s *dyno.Sample) { s.RPM = 300 })                                                        // low rpm
	add(func(s *dyno.Sample) { s.AFR[0], s.AFR[1] = dyno.Missing, dyno.Missing; s.Lambda[0] = 0.9 }) // front from lambda, rear no afr
	add(func(s *dyno.Sample) { s.AFRCommanded[0], s.AFRCommanded[1] = dyno.Missing, dyno.Missing })  // no target
	add(func(s *dyno.Sample) { s.AFR[0], s.AFR[1] = 8, 8 })                                          // afr range
	add(func(s *dyno.Sample) { s.MAP = 520 })                                                        // map range
	add(func(s *dyno.Sample) { s.TPS = 110 })                                                        // tps range
	add(func(s *dyno.Sample) { s.IAT = 200 })                                                        // iat range (°C)
	add(func(s *dyno.Sample) { s.ECT = 30 })                                                         // cold
	add(func(s *dyno.Sample) { s.AFR[0], s.AFR[1] = 19, 19 })                                        // fuel cut
	add(func(s *dyno.Sample) { s.RPM = 7500 })                                                       // beyond the grid's reach
	// A grid given (the ECU's) does not grow to the data.
	a, err := New(Options{Attribution: NearestCell, Grid: DefaultGrid()})
	require.NoError(t, err)
	res, err := a.Analyze(t.Context(), dyno.NewSliceSource(twinLayout, samples))
	require.NoError(t, err)
	front, rear := res.Cylinder(0), res.Cylinder(1)
	assert.Equal(t, 2, front.Accepted, "the plain sample and the lambda one")
	assert.Equal(t, 1, rear.Accepted)
	want := map[string]int{"no_rpm_or_map": 1, "low_rpm": 1, "no_target": 1, "afr_range": 1,
		"map_range": 1, "tps_range": 1, "iat_range": 1, "cold_engine": 1, "decel": 1, "off_grid": 1}
	assert.Equal(t, want, front.Rejected.Map())
	want["no_afr"] = 1
	assert.Equal(t, want, rear.Rejected.Map())
	assert.Equal(t, len(samples), res.Samples)
}

func TestAnalyzerTransientAndDecel(t *testing.T) {
	var samples []dyno.Sample
	tm := time.Duration(0)
	step := 20 * time.Millisecond
	for k := 0; k < 20; k++ { // steady
		samples = append(samples, steady(tm, 3000, 65, 13, 13, 13))
		tm += step
	}
	// A snap of the throttle: 40 % in one 20 ms sample is 2000 %/s.
	s := steady(tm, 3000, 65, 13, 13, 13)
	s.TPS = 90
	samples = append(samples, s)
	tm += step
	for k := 0; k < 20; k++ { // held open: 150 ms hold = 7 more samples rejected
		s := steady(tm, 3000, 65, 13, 13, 13)
		s.TPS = 90
		samples = append(samples, s)
		tm += step
	}
	for k := 0; k < 5; k++ { // closed throttle, rpm falling: decel
		s := steady(tm, 3000-float64(k+1)*50, 30, 13, 13, 13)
		s.TPS = 0
		samples = append(samples, s)
		tm += step
	}
	f := DefaultFilter()
	f.MaxMAPRate = 0  // isolate the TPS check (the decel MAP drop is a MAP transient)
	f.SteadySpan = -1 // and from the bend of load and speed into the decel
	a, err := New(Options{Filter: &f})
	require.NoError(t, err)
	res, err := a.Analyze(t.Context(), dyno.NewSliceSource(twinLayout, samples))
	require.NoError(t, err)
	r := res.Cylinder(0).Rejected.Map()
	// Rates are measured over 100 ms, so the snap is seen for 5 samples; the
	// 150 ms hold after the last of them rejects 7 more. The throttle shut
	// at 2950 rpm with the manifold in vacuum is overrun from the first
	// decel sample, and decel rejects the 150 ms before it: of the 20
	// samples held open, only the 2 between the transient's hold and that
	// guard count.
	assert.GreaterOrEqual(t, r["transient"], 12)
	assert.GreaterOrEqual(t, r["decel"], 5)
	assert.Equal(t, 20+2, res.Cylinder(0).Accepted, "the steady samples and the middle of the held ones: %v", r)
}

func TestAnalyzerPowerWeightingWithoutPower(t *testing.T) {
	a, err := New(Options{Weighting: WeightPower})
	require.NoError(t, err)
	samples := []dyno.Sample{steady(0, 3000, 65, 13, 13, 13)}
	_, err = a.Analyze(t.Context(), dyno.NewSliceSource(twinLayout, samples))
	require.ErrorIs(t, err, ErrMissingChannel)
	assert.Contains(t, err.Error(), "synthetic")

	// A source that does not declare its channels fails at the end instead.
	_, err = a.Analyze(t.Context(), dyno.NewSliceSource(dyno.Layout{Name: "undeclared"}, samples))
	require.ErrorIs(t, err, ErrMissingChannel)
}

func TestAnalyzerCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	a, err := New(Options{})
	require.NoError(t, err)
	_, err = a.Analyze(ctx, dyno.NewSliceSource(twinLayout, []dyno.Sample{steady(0, 3000, 65, 13, 13, 13)}))
	require.True(t, errors.Is(err, context.Canceled), "got %v", err)
}

func TestOptionsValidation(t *testing.T) {
	bad := []Options{
		{Grid: Grid{RPM: []float64{2000, 1000}, MAP: []float64{50}}},
		{MinSamples: -1},
		{ClampPercent: 150},
		{Attribution: 9},
		{Weighting: 9},
		{Smoothing: Smoothing{Passes: 6}},
		{SensorDelay: dyno.TransportDelay{Fixed: -time.Second}},
		{Filter: &Filter{AFRMin: 18, AFRMax: 9}},
	}
	for i, o := range bad {
		_, err := New(o)
		assert.Error(t, err, "case %d: %+v", i, o)
	}
}
