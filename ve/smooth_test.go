package ve

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// smoothAll runs a load smoother over values sampled every dt and returns
// the estimates and the steadiness verdicts.
func smoothAll(vals []float64, dt time.Duration, tol float64) ([]float64, []bool) {
	buf := make([]condSample, len(vals))
	for i, v := range vals {
		buf[i].s.Time = time.Duration(i) * dt
		buf[i].sec = buf[i].s.Time.Seconds()
		buf[i].raw = [2]float64{v, math.NaN()}
	}
	t := newTrackSmoother(500*time.Millisecond, rawLoad, tol)
	est := make([]float64, len(vals))
	steady := make([]bool, len(vals))
	for i := range buf {
		est[i], steady[i] = t.smooth(buf, i, 200*time.Millisecond, true)
	}
	return est, steady
}

// Along a noisy ramp the smoother averages the whole window (a running
// median could not: the sorted values of a ramp are the ramp); at a step
// it keeps the two sides apart and calls the samples near it unsteady.
func TestTrackSmootherRampAndStep(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 2000
	dt := 20 * time.Millisecond
	truth := make([]float64, n)
	vals := make([]float64, n)
	for i := range vals {
		x := float64(i) * dt.Seconds()
		truth[i] = 40 + 3*x // 3 kPa/s
		if i >= n/2 {
			truth[i] += 30 // a throttle step
		}
		vals[i] = truth[i] + rng.NormFloat64()
	}
	est, steady := smoothAll(vals, dt, 1)
	var rawSq, estSq float64
	cnt, unsteady := 0, 0
	for i := 100; i < n-100; i++ {
		if i > n/2-40 && i < n/2+40 {
			continue
		}
		rawSq += (vals[i] - truth[i]) * (vals[i] - truth[i])
		estSq += (est[i] - truth[i]) * (est[i] - truth[i])
		cnt++
		if !steady[i] {
			unsteady++
		}
	}
	rawRMS, estRMS := math.Sqrt(rawSq/float64(cnt)), math.Sqrt(estSq/float64(cnt))
	t.Logf("ramp: raw noise RMS %.3f, smoothed %.3f; %d of %d ramp samples called unsteady", rawRMS, estRMS, unsteady, cnt)
	assert.Less(t, estRMS, rawRMS/4, "a 1 s window of 50 samples takes the noise down by about 7")
	assert.Less(t, unsteady, cnt/100, "noise alone rarely makes a bend")
	// The samples within a few rows of the step are unsteady (rejected),
	// and a little further out the estimate is on its own side.
	for i := n/2 - 3; i <= n/2+2; i++ {
		assert.False(t, steady[i], "sample %d next to the step", i)
	}
	for _, i := range []int{n/2 - 10, n/2 + 10} {
		assert.InDelta(t, truth[i], est[i], 2, "sample %d, 200 ms from the step", i)
	}
}

// A bend smaller than the tolerance does not make a sample unsteady: at
// a corner (flat, then a 5 kPa/s ramp) the wide windows' estimates sit
// about half a kPa off the narrow ones.
func TestTrackSmootherSmallBendIsSteady(t *testing.T) {
	const n = 400
	dt := 20 * time.Millisecond
	vals := make([]float64, n)
	for i := range vals {
		vals[i] = 50
		if i > n/2 {
			vals[i] += 5 * float64(i-n/2) * dt.Seconds()
		}
	}
	_, strict := smoothAll(vals, dt, 0.05)
	_, tolerant := smoothAll(vals, dt, 1)
	assert.False(t, strict[n/2], "a bend beyond the tolerance")
	assert.True(t, tolerant[n/2], "a bend within the tolerance")
}
