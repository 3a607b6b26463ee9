package ve

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynosim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var valleyAxis = []float64{1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500, 6000, 6500}

var nan = math.NaN()

func hitsOf(n float64, curve []float64) []float64 {
	h := make([]float64, len(curve))
	for i, v := range curve {
		if Has(v) {
			h[i] = 2 * n // two high-load cells a row, as the spec's vectors
		}
	}
	return h
}

// TestFindValleyVectors: the predecessor's surface-level vectors (§3.5)
// where its detector is right give the same valley; where a defect
// decides, the right answer, named after the defect.
func TestFindValleyVectors(t *testing.T) {
	v1 := []float64{30, 30, 29, 24, 22, 25, 30, 31, 31, 31, 31}
	for _, tc := range []struct {
		name   string
		curve  []float64
		window int
		hits   float64
		found  bool
		center float64
		band   [2]float64
		depth  float64
		min    float64
		pre    float64
		post   float64
	}{
		{"V1", v1, 3, 10, true, 3500, [2]float64{3000, 4000}, 6.833333333333332, 23.666666666666668, 30, 31},
		{"V3/SV-3 a dip at 5500 is searched too", []float64{20, 21, 22, 23, 24, 25, 26, 27, 20, 28, 29}, 1, 10, true, 5500, [2]float64{5500, 5500}, 8, 20, 27, 29},
		{"V4 a tie keeps the lower RPM", []float64{30, 30, 26, 30, 26, 30, 30, 30, 30, 30, 30}, 1, 10, true, 2500, [2]float64{2500, 2500}, 4, 26, 30, 30},
		{"V5 four points are too few", []float64{30, nan, 24, nan, 22, nan, 30, nan, nan, nan, nan}, 3, 10, false, 0, [2]float64{}, 0, 0, 0, 0},
		// SV-2: the predecessor filled the gaps from their neighbours and
		// found min 23, pre 28.5, band 2500-4500; without invented data
		// the dip is 22 at 4000 between 30 and 30.5 (the predecessor put the
		// centre at 3500, between two invented points).
		{"V6/SV-2 no invented data", []float64{30, nan, nan, 24, nan, 22, nan, 30, 31, nan, nan}, 3, 2, true, 4000, [2]float64{3000, 4000}, 8.25, 22, 30, 30.5},
		{"V7 1.5 is under the minimum", []float64{30, 30, 28.5, 30, 30, 30, 30, 30, 30, 30, 30}, 1, 10, false, 0, [2]float64{}, 0, 0, 0, 0},
		{"V8 exactly the minimum", []float64{30, 30, 28, 30, 30, 30, 30, 30, 30, 30, 30}, 1, 1, true, 2500, [2]float64{2500, 2500}, 2, 28, 30, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, ok, err := FindValley(valleyAxis, tc.curve, hitsOf(tc.hits, tc.curve), ValleyOptions{Window: tc.window})
			require.NoError(t, err)
			require.Equal(t, tc.found, ok)
			if !ok {
				return
			}
			assert.Equal(t, tc.center, v.Center)
			assert.Equal(t, tc.band, v.Band)
			assert.InDelta(t, tc.depth, v.Depth, 1e-9)
			assert.InDelta(t, tc.min, v.Min, 1e-9)
			assert.InDelta(t, tc.pre, v.Pre, 1e-9)
			assert.InDelta(t, tc.post, v.Post, 1e-9)
			assert.Positive(t, v.Confidence)
			assert.LessOrEqual(t, v.Confidence, 1.0)
			assert.Len(t, v.Evidence, 3)
		})
	}
	// More coverage, depth and hits give more confidence (V1 over V6).
	a, _, _ := FindValley(valleyAxis, v1, hitsOf(10, v1), ValleyOptions{})
	v6 := []float64{30, nan, nan, 24, nan, 22, nan, 30, 31, nan, nan}
	b, _, _ := FindValley(valleyAxis, v6, hitsOf(2, v6), ValleyOptions{})
	assert.Equal(t, 1.0, a.Confidence)
	assert.Less(t, b.Confidence, a.Confidence)
}

// TestFindValleyPredecessorT2: the predecessor's derived dense curves T2
// (§3.5). The front valley is found at 3000 as it was; its post side is
// the highest point with data (33.92 at 5500), not the empty 6000/6500
// bins the predecessor filled (SV-2), and its band stops short of the
// pre-valley peak at 1500 (SV-4).
func TestFindValleyPredecessorT2(t *testing.T) {
	front := []float64{20.40247635301508, 21.24006564879583, 16.59319760950745, 12.813900492834797, 20.239639364176227,
		29.074252704243168, 31.22474730982007, 33.248669017844264, 34.59627393493629, nan, nan}
	v, ok, err := FindValley(valleyAxis, front, nil, ValleyOptions{})
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, 3000.0, v.Center)
	assert.InDelta(t, 16.54891248883949, v.Min, 1e-12, "the predecessor's smoothed minimum")
	assert.InDelta(t, 20.821271000905455, v.Pre, 1e-12, "the predecessor's pre-valley value")
	assert.InDelta(t, (33.248669017844264+34.59627393493629)/2, v.Post, 1e-12)
	assert.Equal(t, 5500.0, v.PostAt)
	assert.Equal(t, [2]float64{2000, 3500}, v.Band)
	rear := []float64{18.402476353015086, 19.737888828610025, 21.38437770203113, 19.75366710987928, 17.565315293465442,
		16.25566237889189, 21.17335498115187, 27.572730551407858, 31.741838556235102, nan, nan}
	v, ok, err = FindValley(valleyAxis, rear, nil, ValleyOptions{})
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, 3500.0, v.Center, "the predecessor's rear centre")
	assert.InDelta(t, 17.858214927412202, v.Min, 1e-12)
	assert.InDelta(t, 20.29197788017348, v.Pre, 1e-12)
}

// TestSparkValleyKnockLimited: a simulated engine whose rear cylinder
// knocks hard (20° of retard, 1 % of its torque a degree) around 3500 rpm
// under high load loses about a tenth of the engine's torque there, on a
// curve that otherwise rises: SparkValleys finds the valley in the
// high-load columns, knock-limited by the rear, and suggests no timing.
// The same engine without knock has no valley.
func TestSparkValleyKnockLimited(t *testing.T) {
	g := Grid{RPM: []float64{2000, 2500, 3000, 3500, 4000, 4500, 5000}, MAP: []float64{40, 60, 80, 95}}
	knock := dyno.SurfaceFunc(func(rpm, kpa float64) float64 {
		if rpm >= 3300 && rpm <= 3700 && kpa >= 75 {
			return 20
		}
		return 0
	})
	analyze := func(knock dyno.Surface) *Result {
		sim, err := dynosim.New(dynosim.Config{Seed: 9, Noise: dynosim.TypicalNoise(), Knock: [2]dyno.Surface{nil, knock},
			Plan: dynosim.GridPlan(g.RPM, g.MAP, 2*time.Second)})
		require.NoError(t, err)
		a, err := New(Options{Grid: g})
		require.NoError(t, err)
		res, err := a.Analyze(t.Context(), sim)
		require.NoError(t, err)
		return res
	}
	valleys, err := SparkValleys(analyze(knock), ValleyOptions{})
	require.NoError(t, err)
	require.Len(t, valleys, 2, "both high-load columns")
	for _, v := range valleys {
		assert.GreaterOrEqual(t, v.Load, 80.0)
		assert.Equal(t, 3500.0, v.Center)
		assert.True(t, v.KnockLimited)
		assert.Equal(t, "Rear", v.Cylinder)
		assert.InDelta(t, 20, v.KnockMax, 1)
		assert.Zero(t, v.AdvanceDeg)
		assert.Contains(t, v.Suggestion, "knock-limited")
		assert.Greater(t, v.Confidence, 0.8)
	}
	dir := t.TempDir()
	names, err := WriteValleys(dir, valleys)
	require.NoError(t, err)
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		require.NoError(t, err)
		assert.Contains(t, string(b), "Rear")
	}
	valleys, err = SparkValleys(analyze(nil), ValleyOptions{})
	require.NoError(t, err)
	assert.Empty(t, valleys)
}

func TestFindValleyErrors(t *testing.T) {
	_, _, err := FindValley(valleyAxis, []float64{1}, nil, ValleyOptions{})
	assert.Error(t, err)
	_, _, err = FindValley(valleyAxis, make([]float64, len(valleyAxis)), nil, ValleyOptions{Window: -1})
	assert.Error(t, err)
	_, err = SparkValleys(nil, ValleyOptions{})
	assert.Error(t, err)
}

// TestSparkValleysPredecessorLogs: the predecessor found no valley in its
// logs (dense_dyno_test's curve rises monotonically; the others have too
// few points); neither does SparkValleys on their torque.
func TestSparkValleysPredecessorLogs(t *testing.T) {
	for _, name := range []string{"dense_dyno_test.csv", "test_realistic.csv", "synthetic_dyno_data.csv"} {
		valleys, err := SparkValleys(analyzeShared(t, name, nil), ValleyOptions{})
		require.NoError(t, err)
		assert.Empty(t, valleys, name)
	}
}
