package ve

import (
	"math"
	"time"

	"github.com/dynoai/dynoai/dyno"
)

// trackSmoother estimates where a channel (speed or load) really was at
// each sample: a local straight-line fit over a window centred on the
// sample, the window chosen per sample by the intersection of confidence
// intervals rule (Katkovnik's ICI). It tries half spans from the
// smallest up, each giving an estimate and its standard error; it keeps
// widening while the estimates' confidence intervals still share a
// common point and stops at the first that does not. Along a steady sweep
// the window grows to the full span and the noise shrinks with its
// square root, even where the channel moves (a running median cannot
// average a ramp: its sorted values are the ramp itself); at a corner
// (a throttle step, the end of a sweep) the wide windows disagree with
// the narrow ones and the estimate stays local, so it is not dragged off
// towards the samples around the corner.
//
// The windows' sums are kept sliding, each sample entering and leaving
// each window once, so a sample costs O(levels). It works on the
// conditioner's buffer, whose indices it is told about when the buffer
// is compacted.
type trackSmoother struct {
	ch     int                         // which of condSample.raw it smooths
	tol    float64                     // a bend smaller than this does not matter (a tenth of a grid step)
	half   [smoothLevels]time.Duration // half spans, increasing
	lo, hi [smoothLevels]int           // each window is buf[lo:hi]
	sums   [smoothLevels]lineSums
	origin float64 // the time (s) the sums' x is measured from
	noise  noiseTrack
}

// The channels a trackSmoother can smooth: condSample.raw's slots.
const (
	rawLoad = iota
	rawRPM
)

// smoothLevels is the number of window sizes tried, each twice the last.
const smoothLevels = 4

// iciGamma is the width of the confidence intervals, in standard errors.
const iciGamma = 2

// rebaseAfter is how far the centre may move from the sums' time origin
// before they are recomputed from it (bounding rounding, and the growth
// of x² in the sums).
const rebaseAfter = 30 * time.Second

// lineSums are the sums a least-squares line needs.
type lineSums struct{ n, sx, sxx, sy, sxy float64 }

func (s *lineSums) add(x, y float64, sign float64) {
	s.n += sign
	s.sx += sign * x
	s.sxx += sign * x * x
	s.sy += sign * y
	s.sxy += sign * x * y
}

// at returns the line's value at x0 and its standard error for noise
// sigma; ok is false with fewer than three points or no spread in x.
func (s *lineSums) at(x0, sigma float64) (v, se float64, ok bool) {
	if s.n < 3 {
		return 0, 0, false
	}
	xm, ym := s.sx/s.n, s.sy/s.n
	sxx := s.sxx - s.n*xm*xm
	if !(sxx > 0) {
		return ym, sigma / math.Sqrt(s.n), true
	}
	beta := (s.sxy - s.n*xm*ym) / sxx
	d := x0 - xm
	return ym + beta*d, sigma * math.Sqrt(1/s.n+d*d/sxx), true
}

func newTrackSmoother(halfSpan time.Duration, ch int, tol float64) *trackSmoother {
	t := &trackSmoother{ch: ch, tol: tol}
	for k := smoothLevels - 1; k >= 0; k-- {
		t.half[k] = halfSpan
		halfSpan /= 2
	}
	return t
}

// oldest returns the lowest buffer index the smoother still needs.
func (t *trackSmoother) oldest() int { return t.lo[smoothLevels-1] }

// shift tells the smoother the buffer lost its first d samples.
func (t *trackSmoother) shift(d int) {
	for k := range t.lo {
		t.lo[k] -= d
		t.hi[k] -= d
	}
}

// smooth returns the estimate at buf[c] (the raw value when the sample
// has none or its neighbours are too few) and whether the channel was
// steady there: false when a window of at least steadySpan held enough
// samples but the rule had to stop below it (the channel bends within
// that span: a throttle step, a pull's start) and the bend moves the
// estimate by more than the smoother's tolerance. With need false (a
// sample already rejected) it only moves the windows and returns the raw
// value.
func (t *trackSmoother) smooth(buf []condSample, c int, steadySpan time.Duration, need bool) (float64, bool) {
	center := buf[c].s.Time
	raw := buf[c].raw[t.ch]
	if d := buf[c].sec - t.origin; d > rebaseAfter.Seconds() || d < -rebaseAfter.Seconds() {
		t.rebase(buf, buf[c].sec)
	}
	sec := buf[c].section
	for k := range t.half {
		h := t.half[k]
		s := &t.sums[k]
		if t.lo[k] > c || t.hi[k] < c || (t.lo[k] < len(buf) && buf[t.lo[k]].section != sec) {
			// A window left behind (a reset, or a gap longer than it):
			// restart it at the centre.
			*s = lineSums{}
			t.lo[k], t.hi[k] = c, c
		}
		for t.hi[k] < len(buf) && buf[t.hi[k]].section == sec && buf[t.hi[k]].s.Time-center <= h {
			if b := &buf[t.hi[k]]; dyno.Has(b.raw[t.ch]) {
				s.add(b.sec-t.origin, b.raw[t.ch], 1)
			}
			t.hi[k]++
		}
		for t.lo[k] < t.hi[k] && center-buf[t.lo[k]].s.Time > h {
			if b := &buf[t.lo[k]]; dyno.Has(b.raw[t.ch]) {
				s.add(b.sec-t.origin, b.raw[t.ch], -1)
			}
			t.lo[k]++
		}
	}
	if !need || !dyno.Has(raw) {
		return raw, true
	}
	t.noise.observe(buf, c, t.ch)
	sigma := t.noise.sigma(raw)
	x0 := buf[c].sec - t.origin
	est, span, broke := raw, time.Duration(0), false
	lo, hi := math.Inf(1), math.Inf(-1) // the range of every window's estimate
	lower, upper := math.Inf(-1), math.Inf(1)
	for k := range t.sums {
		v, se, ok := t.sums[k].at(x0, sigma)
		if !ok {
			continue
		}
		lo, hi = min(lo, v), max(hi, v)
		if broke {
			continue
		}
		if l := v - iciGamma*se; l > lower {
			lower = l
		}
		if u := v + iciGamma*se; u < upper {
			upper = u
		}
		if lower > upper {
			broke = true
			continue
		}
		est, span = v, t.half[k]
	}
	// Unsteady: the rule stopped short of steadySpan, and the windows'
	// estimates spread wider than the tolerance (a bend that moves the
	// sample's place).
	return est, span >= steadySpan || !broke || !(hi-lo > t.tol)
}

// rebase moves the sums' time origin to now (s) and recomputes them.
func (t *trackSmoother) rebase(buf []condSample, now float64) {
	t.origin = now
	for k := range t.sums {
		s := lineSums{}
		for i := t.lo[k]; i < t.hi[k] && i < len(buf); i++ {
			if v := buf[i].raw[t.ch]; dyno.Has(v) {
				s.add(buf[i].sec-t.origin, v, 1)
			}
		}
		t.sums[k] = s
	}
}

// noiseTrack estimates a channel's sample-to-sample noise from the second
// differences of consecutive readings (a straight trend cancels out of
// them): σ = 1.4826 · median|d| / √6, the median followed by a frugal
// streaming estimate (each difference moves it a small step towards
// itself), which costs nothing a sample and forgets old noise slowly.
type noiseTrack struct {
	med  float64 // the running median of |d|
	seen int
}

// noiseMin is how many differences the estimate needs before it is used.
const noiseMin = 16

// frugalStep is the relative step of the streaming median: about a
// hundred differences move it by a factor of e.
const frugalStep = 0.01

// observe adds the second difference around buf[c], when its neighbours
// have readings.
func (n *noiseTrack) observe(buf []condSample, c, ch int) {
	if c < 1 || c+1 >= len(buf) {
		return
	}
	a, b, d := buf[c-1].raw[ch], buf[c].raw[ch], buf[c+1].raw[ch]
	if !dyno.Has(a) || !dyno.Has(b) || !dyno.Has(d) {
		return
	}
	x := math.Abs(a - 2*b + d)
	n.seen++
	switch {
	case n.seen == 1:
		n.med = x
	case x > n.med:
		n.med += frugalStep*n.med + 1e-12
	case x < n.med:
		n.med -= frugalStep * n.med
	}
}

// sigma returns the noise estimate near value x, never below a
// thousandth of it (a quantized channel reads no noise at all, and the
// windows would never widen), and a hundredth of it before any estimate.
func (n *noiseTrack) sigma(x float64) float64 {
	floor := 1e-3*math.Abs(x) + 1e-9
	if n.seen < noiseMin {
		return math.Max(0.01*math.Abs(x), floor)
	}
	return math.Max(madToSigma*n.med, floor)
}

// madToSigma turns the median absolute second difference of white noise
// into its standard deviation: 1.4826 / √6.
const madToSigma = 1.4826 / 2.449489742783178
