package ve

import (
	"math"
	"time"

	"github.com/dynoai/dynoai/afr"
	"github.com/dynoai/dynoai/dyno"
)

// conditioner runs the checks a sample needs its neighbours for, between
// the source and the grid: transients (throttle and manifold rates), decel
// and fuel cut (the smoothed slope of engine speed, a closed throttle, a
// manifold near vacuum, the fuel-cut signature of the widebands), and the
// centred moving average of speed and load that keeps sensor noise from
// blurring neighbouring nodes together. It holds the samples of a short
// window (the smoothing's half span and the decel guard ahead, the half
// span behind), so decel can reject the samples just before it and the
// average can look both ways; its memory depends on that window, not on
// the log.
type conditioner struct {
	f        *Filter
	axis     LoadAxis
	targets  dyno.Surface
	stoich   float64
	ncyl     int
	tpsLive  bool // the source has a throttle channel
	hasTime  bool // the source's samples carry time
	halfSpan time.Duration
	ahead    time.Duration // how long a sample waits before release

	buf  []condSample // the window: released samples behind, waiting ones ahead
	next int          // index in buf of the next sample to release
	// the smoothers of load and speed (nil without smoothing)
	loadS, rpmS *trackSmoother
	section     int // incremented each time the clock goes backwards

	// rate reference for transients
	hist    [64]pastSample
	head, n int

	// least-squares slope of raw RPM over SlopeWindow
	slope slopeWindow

	// the wideband's first-order time constant, undone on the readings
	lag time.Duration

	transientUntil time.Duration
	inTransient    bool
	decelUntil     time.Duration
	inDecel        bool
}

// condSample is a sample with what the stream checks said of it.
type condSample struct {
	s      dyno.Sample
	reason Reason // the first stream-level reason to reject it, or -1
	// section counts the times the clock went backwards before the
	// sample: smoothing windows never span two sections.
	section int
	// sec is the sample's time in seconds and raw its load (rawLoad) and
	// speed (rawRPM) as read, for the smoothers.
	sec  float64
	raw  [2]float64
	rpm  float64
	load float64 // smoothed, on the grid's load axis
	// lagFix is what undoing the wideband's lag adds to each cylinder's
	// measured AFR (τ times the reading's rate of change); 0 without lag.
	lagFix [dyno.MaxCylinders]float64
}

type pastSample struct {
	t         time.Duration
	tps, map_ float64
}

// newConditioner returns a conditioner; step holds the grid's typical node
// spacing in RPM and load, which sets how large a bend in either matters.
func newConditioner(f *Filter, axis LoadAxis, targets dyno.Surface, stoich float64, ncyl int, tpsLive, hasTime bool, step [2]float64) *conditioner {
	c := &conditioner{f: f, axis: axis, targets: targets, stoich: stoich, ncyl: ncyl, tpsLive: tpsLive, hasTime: hasTime}
	if f.Smoothing > 0 && hasTime {
		c.halfSpan = f.Smoothing / 2
		c.loadS = newTrackSmoother(c.halfSpan, rawLoad, bendTolerance*step[1])
		c.rpmS = newTrackSmoother(c.halfSpan, rawRPM, bendTolerance*step[0])
	}
	if hasTime {
		c.ahead = max(c.halfSpan, f.PreGuard, lagWindow)
	}
	w := f.SlopeWindow
	if w <= 0 {
		w = 300 * time.Millisecond
	}
	c.slope.window = w
	return c
}

// loadOf returns s's value on the load axis.
func loadOf(axis LoadAxis, s *dyno.Sample) float64 {
	switch axis {
	case LoadTPS:
		return s.TPS
	case LoadECU:
		return s.Load
	}
	return s.MAP
}

// direct reports whether samples need no look-ahead (no smoothing, no
// decel guard: a log without time), so check can judge each in place.
func (c *conditioner) direct() bool { return c.ahead == 0 && c.halfSpan == 0 }

// check judges a sample without holding it (see direct): the reason to
// reject it, or -1.
func (c *conditioner) check(s *dyno.Sample) Reason { return c.judge(s) }

// push takes the next sample of the stream and holds it for release.
func (c *conditioner) push(s *dyno.Sample) {
	reason := c.judge(s)
	if n := len(c.buf); n > 0 && s.Time < c.buf[n-1].s.Time {
		c.section++
	}
	c.buf = append(c.buf, condSample{s: *s, reason: reason, section: c.section,
		sec: s.Time.Seconds(), raw: [2]float64{loadOf(c.axis, s), s.RPM}})
}

// judge runs the checks that look back on s (transients, decel and fuel
// cut) and returns the reason to reject it, or -1. Decel vetoes the
// waiting samples it reaches back to.
func (c *conditioner) judge(s *dyno.Sample) Reason {
	f := c.f
	if c.n > 0 {
		if last := c.hist[(c.head-1+len(c.hist))%len(c.hist)]; s.Time < last.t {
			// The clock went backwards (a new section of a log the retimer
			// could not mend): start the look-back over.
			c.n = 0
			c.slope.reset()
			c.inTransient, c.inDecel = false, false
		}
	}
	// Transients: throttle and manifold rates over the rate window.
	transient := false
	if ref, ok := c.reference(s.Time); ok && s.Time > ref.t {
		dt := (s.Time - ref.t).Seconds()
		if f.MaxTPSRate > 0 && dyno.Has(s.TPS) && dyno.Has(ref.tps) && math.Abs(s.TPS-ref.tps)/dt > f.MaxTPSRate {
			transient = true
		}
		if f.MaxMAPRate > 0 && dyno.Has(s.MAP) && dyno.Has(ref.map_) && math.Abs(s.MAP-ref.map_)/dt > f.MaxMAPRate {
			transient = true
		}
	}
	c.hist[c.head] = pastSample{t: s.Time, tps: s.TPS, map_: s.MAP}
	c.head = (c.head + 1) % len(c.hist)
	c.n = min(c.n+1, len(c.hist))
	if transient {
		c.transientUntil, c.inTransient = s.Time+f.TransientHold, true
	}
	inTransient := transient || (c.inTransient && s.Time < c.transientUntil)
	c.inTransient = inTransient

	// Decel and fuel cut.
	if dyno.Has(s.RPM) && c.hasTime {
		c.slope.add(s.Time, s.RPM)
	}
	decel := c.isDecel(s)
	if decel {
		c.decelUntil, c.inDecel = s.Time+f.DecelHold, true
		// The samples just before: a delay learned a little long moves
		// the cut's lean readings onto them.
		for k := len(c.buf) - 1; k >= c.next; k-- {
			w := &c.buf[k]
			if s.Time-w.s.Time > f.PreGuard {
				break
			}
			if w.reason < 0 {
				w.reason = RejectDecel
			}
		}
	}
	inDecel := decel || (c.inDecel && s.Time < c.decelUntil)
	c.inDecel = inDecel
	switch {
	case inDecel:
		return RejectDecel
	case inTransient:
		return RejectTransient
	}
	return -1
}

// isDecel tells decel and fuel cut from the throttle, the smoothed slope
// of engine speed, the manifold and the widebands.
func (c *conditioner) isDecel(s *dyno.Sample) bool {
	f := c.f
	closed := dyno.Has(s.TPS) && f.DecelTPS > 0 && s.TPS <= f.DecelTPS
	slope, ok := c.slope.value()
	falling := ok && f.DecelRPMRate > 0 && slope < -f.DecelRPMRate
	baro := s.Baro
	if !dyno.Has(baro) || baro < 50 || baro > 120 {
		baro = 101.325
	}
	vacuum := dyno.Has(s.MAP) && f.DecelMAPRatio > 0 && s.MAP < f.DecelMAPRatio*baro
	switch {
	case closed && falling:
		return true
	case closed && dyno.Has(s.RPM) && s.RPM > overrunRPM && dyno.Has(s.MAP) && s.MAP < 0.5*baro:
		// The throttle shut well above idle with the manifold in vacuum:
		// overrun (the dyno or the vehicle drives the engine), whether or
		// not the speed has begun to fall.
		return true
	case !c.tpsLive && vacuum && falling:
		return true
	}
	// The fuel-cut signature: a wideband far leaner than any target while
	// the engine is not pulling.
	for cyl := 0; cyl < c.ncyl; cyl++ {
		m := measuredAFR(s, cyl, c.stoich)
		if !dyno.Has(m) {
			continue
		}
		if f.FuelCutAFR > 0 && m > f.FuelCutAFR {
			return true
		}
		if f.FuelCutRatio > 0 && (closed || falling || vacuum) {
			t := s.AFRCommanded[cyl]
			if c.targets != nil {
				t = c.targets.At(s.RPM, loadOf(c.axis, s))
			}
			if dyno.Has(t) && t > 0 && m > f.FuelCutRatio*t {
				return true
			}
		}
	}
	return false
}

// bendTolerance is the fraction of a grid step a bend in speed or load
// may move a sample's place before the sample counts as a transient.
const bendTolerance = 0.1

// overrunRPM is the engine speed above which a closed throttle is
// overrun, not idle.
const overrunRPM = 1800

// reference returns the newest remembered sample at least the rate window
// older than now, or the oldest one when none is that old.
func (c *conditioner) reference(now time.Duration) (pastSample, bool) {
	if c.n == 0 {
		return pastSample{}, false
	}
	window := c.f.RateWindow
	if window <= 0 {
		window = 100 * time.Millisecond
	}
	size := len(c.hist)
	oldest := c.hist[(c.head-c.n+size*2)%size]
	if now-oldest.t < window {
		return oldest, true
	}
	for k := 0; k < c.n; k++ {
		p := c.hist[(c.head-1-k+size*2)%size]
		if now-p.t >= window {
			return p, true
		}
	}
	return oldest, true
}

// pop releases the oldest waiting sample once the samples after it cover
// the look-ahead (or at the end of the stream, flush), with its speed and
// load smoothed over the window around it.
func (c *conditioner) pop(flush bool) (*condSample, bool) {
	if c.next >= len(c.buf) {
		return nil, false
	}
	cur := &c.buf[c.next]
	last := c.buf[len(c.buf)-1].s.Time
	if !flush && last-cur.s.Time < c.ahead && len(c.buf)-c.next < maxWaiting {
		return nil, false
	}
	// Drop what the window no longer needs, keeping cur's place.
	drop := c.next
	if c.loadS != nil {
		drop = min(drop, c.loadS.oldest(), c.rpmS.oldest())
	}
	if drop > 0 && drop*2 >= len(c.buf) {
		n := copy(c.buf, c.buf[drop:])
		c.buf = c.buf[:n]
		c.next -= drop
		if c.loadS != nil {
			c.loadS.shift(drop)
			c.rpmS.shift(drop)
		}
		cur = &c.buf[c.next]
	}
	cur.rpm, cur.load = cur.s.RPM, loadOf(c.axis, &cur.s)
	if c.loadS != nil {
		var loadSteady, rpmSteady bool
		need := cur.reason < 0
		cur.load, loadSteady = c.loadS.smooth(c.buf, c.next, c.f.SteadySpan, need)
		cur.rpm, rpmSteady = c.rpmS.smooth(c.buf, c.next, c.f.SteadySpan, need)
		if c.f.SteadySpan > 0 && cur.reason < 0 && !(loadSteady && rpmSteady) {
			// Load or speed bends within the span: where the sample
			// belongs is uncertain, and so is which exhaust the
			// wideband read.
			cur.reason = RejectTransient
		}
	}
	cur.lagFix = [dyno.MaxCylinders]float64{}
	if c.lag > 0 {
		c.deconvolve(cur)
	}
	c.next++
	return cur, true
}

// lagWindow is the half span over which a reading's rate of change is
// measured to undo the sensor's lag.
const lagWindow = 60 * time.Millisecond

// deconvolve undoes the wideband's first-order lag: a sensor with time
// constant τ reads m where m' = (a − m)/τ, so the exhaust it saw was
// a = m + τ·m'. The rate m' is the least-squares slope of the readings
// within lagWindow either side, which keeps the noise it adds to a few
// tenths of a percent.
func (c *conditioner) deconvolve(cur *condSample) {
	t := cur.s.Time
	tau := c.lag.Seconds()
	for cyl := 0; cyl < c.ncyl; cyl++ {
		m := measuredAFR(&cur.s, cyl, c.stoich)
		if !dyno.Has(m) {
			continue
		}
		var n, sx, sy, sxx, sxy float64
		before, after := false, false
		for k := c.next; k >= 0 && t-c.buf[k].s.Time <= lagWindow; k-- {
			if y := measuredAFR(&c.buf[k].s, cyl, c.stoich); dyno.Has(y) {
				x := (c.buf[k].s.Time - t).Seconds()
				n, sx, sy, sxx, sxy = n+1, sx+x, sy+y, sxx+x*x, sxy+x*y
				before = before || k < c.next
			}
		}
		for k := c.next + 1; k < len(c.buf) && c.buf[k].s.Time-t <= lagWindow; k++ {
			if y := measuredAFR(&c.buf[k].s, cyl, c.stoich); dyno.Has(y) {
				x := (c.buf[k].s.Time - t).Seconds()
				n, sx, sy, sxx, sxy = n+1, sx+x, sy+y, sxx+x*x, sxy+x*y
				after = true
			}
		}
		den := n*sxx - sx*sx
		if n < 3 || !before || !after || den <= 0 {
			continue
		}
		cur.lagFix[cyl] = tau * (n*sxy - sx*sy) / den
	}
}

// measuredAFR is a sample's measured AFR for a cylinder as the wideband
// read it, unfiltered (a fuel-cut reading far above any plausible AFR is
// kept: the filters need it): the AFR channel, or lambda times stoich
// when the AFR channel has no reading (missing, 0 or below, the sensor's
// not-ready sentinel); Missing when neither has one.
func measuredAFR(s *dyno.Sample, cyl int, stoich float64) float64 {
	m := s.AFR[cyl]
	if !(m > 1) || afr.IsSentinel(m) {
		m = dyno.Missing
		if l := s.Lambda[cyl]; l > 0 {
			m = l * stoich
		}
	}
	if !(m > 1) || afr.IsSentinel(m) {
		return dyno.Missing
	}
	return m
}

// maxWaiting bounds the samples held ahead, for logs sampled very fast.
const maxWaiting = 1024

// slopeWindow keeps the least-squares slope of (t, y) over the last
// window, in O(1) a sample.
type slopeWindow struct {
	window time.Duration
	ts     []time.Duration
	ys     []float64
	start  int
	// sums over the points held, with t relative to t0
	t0               time.Duration
	n                float64
	st, sy, stt, sty float64
	haveT0           bool
}

func (w *slopeWindow) reset() {
	w.ts, w.ys, w.start = w.ts[:0], w.ys[:0], 0
	w.n, w.st, w.sy, w.stt, w.sty = 0, 0, 0, 0, 0
	w.haveT0 = false
}

func (w *slopeWindow) add(t time.Duration, y float64) {
	if !w.haveT0 {
		w.t0, w.haveT0 = t, true
	}
	w.ts = append(w.ts, t)
	w.ys = append(w.ys, y)
	x := (t - w.t0).Seconds()
	w.n++
	w.st += x
	w.sy += y
	w.stt += x * x
	w.sty += x * y
	for w.start < len(w.ts) && (t-w.ts[w.start] > w.window || len(w.ts)-w.start > maxSlopePoints) {
		x := (w.ts[w.start] - w.t0).Seconds()
		y := w.ys[w.start]
		w.n--
		w.st -= x
		w.sy -= y
		w.stt -= x * x
		w.sty -= x * y
		w.start++
	}
	// Compact, and recompute the sums exactly now and then so rounding
	// never accumulates.
	if w.start > 256 && w.start*2 > len(w.ts) {
		n := copy(w.ts, w.ts[w.start:])
		copy(w.ys, w.ys[w.start:])
		w.ts, w.ys, w.start = w.ts[:n], w.ys[:n], 0
		w.t0 = w.ts[0]
		w.n, w.st, w.sy, w.stt, w.sty = 0, 0, 0, 0, 0
		for k := range w.ts {
			x := (w.ts[k] - w.t0).Seconds()
			w.n++
			w.st += x
			w.sy += w.ys[k]
			w.stt += x * x
			w.sty += x * w.ys[k]
		}
	}
}

// maxSlopePoints bounds the points a slope window holds, for logs sampled
// very fast (or whose clock stands still).
const maxSlopePoints = 512

// value returns the slope (y per second), when the window holds at least
// three points spread over at least a third of it.
func (w *slopeWindow) value() (float64, bool) {
	if w.n < 3 || len(w.ts) == 0 {
		return 0, false
	}
	if w.ts[len(w.ts)-1]-w.ts[w.start] < w.window/3 {
		return 0, false
	}
	den := w.n*w.stt - w.st*w.st
	if den <= 0 {
		return 0, false
	}
	return (w.n*w.sty - w.st*w.sy) / den, true
}
