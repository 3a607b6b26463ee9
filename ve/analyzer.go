package ve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/dynoai/dynoai/afr"
	"github.com/dynoai/dynoai/dyno"
)

// Analyzer turns a stream of samples into VE corrections. Implementations
// must not hold the whole stream in memory.
type Analyzer interface {
	Analyze(ctx context.Context, src dyno.Source) (*Result, error)
}

// ErrMissingChannel reports that the analysis needs a channel the source
// does not have, such as power for WeightPower.
var ErrMissingChannel = errors.New("ve: source lacks a required channel")

// New returns the default Analyzer configured by opts, or an error saying
// which option is invalid.
func New(opts Options) (Analyzer, error) {
	o, err := opts.resolved()
	if err != nil {
		return nil, err
	}
	return &analyzer{opts: o}, nil
}

type analyzer struct{ opts Options }

// cellAcc accumulates one cell's evidence with West's weighted incremental
// mean and variance, which stays accurate where sum-of-squares cancels.
type cellAcc struct {
	hits        int
	share       float64 // Σ share
	w, w2       float64 // Σ weight, Σ weight²
	mean, m2    float64 // running weighted mean and Σ w (x-mean)²
	afrW, tgtW  float64
	tqW, tqWsum float64
	hpW, hpWsum float64
	knockMax    float64
	iatMax      float64
}

func (c *cellAcc) add(share, weight, mult, afr, target float64, s *dyno.Sample, cyl int) {
	w := share * weight
	if w <= 0 {
		return
	}
	c.hits++
	c.share += share
	c.w += w
	c.w2 += w * w
	delta := mult - c.mean
	c.mean += w / c.w * delta
	c.m2 += w * delta * (mult - c.mean)
	c.afrW += w * afr
	c.tgtW += w * target
	if dyno.Has(s.Torque) {
		c.tqW += w * s.Torque
		c.tqWsum += w
	}
	if dyno.Has(s.Power) {
		c.hpW += w * s.Power
		c.hpWsum += w
	}
	if k := s.Knock[cyl]; dyno.Has(k) && (math.IsNaN(c.knockMax) || k > c.knockMax) {
		c.knockMax = k
	}
	if dyno.Has(s.IAT) && (math.IsNaN(c.iatMax) || s.IAT > c.iatMax) {
		c.iatMax = s.IAT
	}
}

type cylAcc struct {
	cells    []cellAcc
	accepted int
	rejected Rejections
	seen     bool
}

// Analyze reads src to its end and returns the corrections. It returns ctx's
// error if ctx is cancelled, and the source's error if reading fails.
func (a *analyzer) Analyze(ctx context.Context, src dyno.Source) (*Result, error) {
	o := a.opts
	layout := src.Layout()
	if o.Weighting == WeightPower && layout.Channels != 0 && !layout.Channels.Has(dyno.ChanPower) {
		return nil, fmt.Errorf("%w: weighting by power needs a power (HP) channel; %s has %s",
			ErrMissingChannel, nameOr(layout.Name), layout.Channels)
	}
	if o.Weighting == WeightTorque && layout.Channels != 0 && !layout.Channels.Has(dyno.ChanTorque) {
		return nil, fmt.Errorf("%w: weighting by torque needs a torque channel; %s has %s",
			ErrMissingChannel, nameOr(layout.Name), layout.Channels)
	}
	var auto *afr.AutoAligner
	switch {
	case o.LearnDelay:
		lo := o.LearnDelayOptions
		if lo.Fallback.IsZero() {
			lo.Fallback = o.SensorDelay
		}
		auto = afr.AutoAlign(src, lo)
		src = auto
	case !o.SensorDelay.IsZero():
		src = afr.Align(src, o.SensorDelay)
	}
	nr, nc := len(o.Grid.RPM), len(o.Grid.MAP)
	ncyl := layout.Cylinders
	if ncyl <= 0 || ncyl > dyno.MaxCylinders {
		ncyl = dyno.MaxCylinders // undeclared: look at every slot
	}
	rpmAxis, mapAxis := newAxisIndex(o.Grid.RPM), newAxisIndex(o.Grid.MAP)
	var cyls [dyno.MaxCylinders]cylAcc
	st := newStreamState(o.Filter, o.Grid)
	pf := newPrefetcher(ctx, src)
	defer pf.close()
	samples, weighted := 0, 0
	for {
		if samples&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		s, err := pf.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		samples++
		common := st.check(s) // reasons shared by every cylinder
		weight := 1.0
		switch o.Weighting {
		case WeightTorque:
			weight = math.Max(0, s.Torque)
		case WeightPower:
			weight = math.Max(0, s.Power)
		}
		if math.IsNaN(weight) {
			weight = 0
		} else if o.Weighting != WeightEqual {
			weighted++
		}
		var cellsIdx [4]int
		var shares [4]float64
		n := 0
		if common < 0 {
			n = attribute(o.Attribution, rpmAxis, mapAxis, s.RPM, s.MAP, &cellsIdx, &shares)
		}
		for c := 0; c < ncyl; c++ {
			meas := s.AFR[c]
			if (!dyno.Has(meas) || afr.IsSentinel(meas)) && dyno.Has(s.Lambda[c]) {
				meas = o.Fuel.AFR(s.Lambda[c])
			}
			if !dyno.Has(meas) && !dyno.Has(s.AFRCommanded[c]) {
				continue // the cylinder has no wideband in this log
			}
			acc := &cyls[c]
			if !acc.seen {
				acc.seen = true
				acc.cells = make([]cellAcc, nr*nc)
				for i := range acc.cells {
					acc.cells[i].knockMax, acc.cells[i].iatMax = math.NaN(), math.NaN()
				}
			}
			if common >= 0 {
				acc.rejected[common]++
				continue
			}
			target := s.AFRCommanded[c]
			if o.Targets != nil {
				target = o.Targets.At(s.RPM, s.MAP)
			}
			f := o.Filter
			switch {
			case !dyno.Has(meas):
				acc.rejected[RejectNoAFR]++
				continue
			case !dyno.Has(target):
				acc.rejected[RejectNoTarget]++
				continue
			case meas > f.FuelCutAFR && f.FuelCutAFR > 0:
				acc.rejected[RejectDecel]++
				continue
			case meas < f.AFRMin || meas > f.AFRMax || target < f.AFRMin || target > f.AFRMax:
				acc.rejected[RejectAFRRange]++
				continue
			case weight <= 0 || (o.Weighting != WeightEqual && weight < 5):
				acc.rejected[RejectLowWeight]++
				continue
			}
			acc.accepted++
			mult := meas / target
			for k := 0; k < n; k++ {
				acc.cells[cellsIdx[k]].add(shares[k], weight, mult, meas, target, s, c)
			}
		}
	}
	if o.Weighting == WeightPower && weighted == 0 && samples > 0 {
		return nil, fmt.Errorf("%w: weighting by power, but no sample of %s has power (HP)", ErrMissingChannel, nameOr(layout.Name))
	}
	res := &Result{Source: layout.Name, Format: layout.Format, Grid: o.Grid, Samples: samples, Options: o, Delay: o.SensorDelay}
	if auto != nil {
		res.Delay = auto.Delay()
		if est, err := auto.Estimate(); err != nil {
			res.DelayNote = err.Error()
		} else {
			res.DelayEstimate = &est
		}
	}
	for c := range cyls {
		if !cyls[c].seen {
			continue
		}
		res.Cylinders = append(res.Cylinders, a.finish(c, &cyls[c]))
	}
	return res, nil
}

func nameOr(n string) string {
	if n == "" {
		return "the source"
	}
	return n
}

// finish turns a cylinder's accumulators into its result.
func (a *analyzer) finish(cyl int, acc *cylAcc) CylinderResult {
	o := a.opts
	raw := MustTable(o.Grid.RPM, o.Grid.MAP, math.NaN())
	pct := MustTable(o.Grid.RPM, o.Grid.MAP, math.NaN())
	cells := make([]Cell, len(acc.cells))
	for i := range acc.cells {
		ca := &acc.cells[i]
		cell := Cell{
			Hits: ca.hits, EffectiveSamples: ca.share, Weight: ca.w,
			Multiplier: math.NaN(), StdErr: math.NaN(), MeanAFR: math.NaN(), MeanTarget: math.NaN(),
			Torque: math.NaN(), Power: math.NaN(), KnockMax: ca.knockMax, IATMax: ca.iatMax,
		}
		if ca.w > 0 {
			cell.Multiplier = ca.mean
			cell.MeanAFR = ca.afrW / ca.w
			cell.MeanTarget = ca.tgtW / ca.w
			if ca.tqWsum > 0 {
				cell.Torque = ca.tqW / ca.tqWsum
			}
			if ca.hpWsum > 0 {
				cell.Power = ca.hpW / ca.hpWsum
			}
			// Effective sample size for weighted data: (Σw)² / Σw².
			nEff := ca.w * ca.w / ca.w2
			if nEff > 1 {
				variance := ca.m2 / ca.w * nEff / (nEff - 1)
				cell.StdErr = math.Sqrt(math.Max(0, variance) / nEff)
			}
			raw.Values[i] = ca.mean
			if ca.share >= o.MinSamples {
				pct.Values[i] = (ca.mean - 1) * 100
				cell.Confidence = grade(ca.share, cell.StdErr)
			}
		}
		cells[i] = cell
	}
	if o.Smoothing.Kernels {
		pct = SmoothK1K2(pct, o.Smoothing.Passes, o.Smoothing.GradientThreshold)
	}
	clamped := 0
	corr := MustTable(o.Grid.RPM, o.Grid.MAP, 1)
	corr.Precision = 6
	for i, p := range pct.Values {
		if math.IsNaN(p) {
			continue
		}
		if o.ClampPercent > 0 {
			if q := math.Max(-o.ClampPercent, math.Min(o.ClampPercent, p)); q != p {
				p = q
				cells[i].Clamped = true
				clamped++
			}
		}
		corr.Values[i] = roundDecimal(1+p/100, corr.Precision)
	}
	return CylinderResult{Cylinder: cyl, Correction: corr, Raw: raw, Cells: cells,
		Accepted: acc.accepted, Rejected: acc.rejected, Clamped: clamped}
}

func grade(n, se float64) Confidence {
	switch {
	case n >= 50 && se < 0.005:
		return ConfidenceHigh
	case n >= 20 && se < 0.01:
		return ConfidenceMedium
	default:
		return ConfidenceLow
	}
}

// attribute writes the cells a sample at (rpm, mapKPa) informs and each
// one's share, and returns how many there are (1 to 4).
func attribute(mode Attribution, ra, ma *axisIndex, rpm, mapKPa float64, idx *[4]int, share *[4]float64) int {
	nc := len(ma.a)
	if mode == NearestCell {
		idx[0] = ra.nearest(rpm)*nc + ma.nearest(mapKPa)
		share[0] = 1
		return 1
	}
	i0, i1, fr := ra.bracket(rpm)
	j0, j1, fm := ma.bracket(mapKPa)
	n := 0
	for _, c := range [4]struct {
		i, j int
		w    float64
	}{{i0, j0, (1 - fr) * (1 - fm)}, {i0, j1, (1 - fr) * fm}, {i1, j0, fr * (1 - fm)}, {i1, j1, fr * fm}} {
		if c.w > 0 {
			idx[n], share[n] = c.i*nc+c.j, c.w
			n++
		}
	}
	return n
}

// axisIndex finds a value's place on an axis, in constant time when the
// axis is evenly spaced (the usual tuning grid).
type axisIndex struct {
	a       []float64
	uniform bool
	step    float64
}

func newAxisIndex(a []float64) *axisIndex {
	x := &axisIndex{a: a, uniform: len(a) > 1}
	if len(a) > 1 {
		x.step = (a[len(a)-1] - a[0]) / float64(len(a)-1)
		for i := 1; i < len(a); i++ {
			if math.Abs(a[i]-a[i-1]-x.step) > 1e-9*math.Abs(x.step) || a[i] != a[0]+float64(i)*x.step {
				x.uniform = false
				break
			}
		}
	}
	return x
}

// bracket is the package's bracket, with the even-spacing shortcut.
func (x *axisIndex) bracket(v float64) (i0, i1 int, f float64) {
	a := x.a
	if !x.uniform || v <= a[0] || v >= a[len(a)-1] || math.IsNaN(v) {
		return bracket(a, v)
	}
	k := int((v - a[0]) / x.step)
	if k >= len(a)-1 {
		k = len(a) - 2
	}
	if a[k] == v {
		return k, k, 0
	}
	return k, k + 1, (v - a[k]) / (a[k+1] - a[k])
}

// nearest is Nearest (ties to the lower bin), with the shortcut.
func (x *axisIndex) nearest(v float64) int {
	i0, i1, f := x.bracket(v)
	if f > 0.5 {
		return i1
	}
	if f == 0.5 {
		// An exact tie by the fraction may not be one by distance; decide
		// the way Nearest does.
		return Nearest(x.a[i0:i1+1], v) + i0
	}
	return i0
}

// streamState runs the checks that need the previous samples: transients
// and decel, plus the per-sample range checks common to every cylinder.
type streamState struct {
	f         *Filter
	window    time.Duration
	hist      [64]pastSample // ring of recent samples for rate measurement
	head, n   int
	prevRPM   float64
	haveRPM   bool
	holdUntil time.Duration
	inHold    bool

	rpmLo, rpmHi, mapLo, mapHi float64
}

type pastSample struct {
	t         time.Duration
	tps, map_ float64
}

func newStreamState(f *Filter, g Grid) *streamState {
	w := f.RateWindow
	if w <= 0 {
		w = 100 * time.Millisecond
	}
	st := &streamState{f: f, window: w}
	st.rpmLo, st.rpmHi = gridReach(g.RPM)
	st.mapLo, st.mapHi = gridReach(g.MAP)
	return st
}

// gridReach returns how far a grid axis reaches: half a bin beyond each
// edge. A sample further out says nothing about the edge cell.
func gridReach(a []float64) (lo, hi float64) {
	if len(a) < 2 {
		return math.Inf(-1), math.Inf(1)
	}
	n := len(a)
	return a[0] - (a[1]-a[0])/2, a[n-1] + (a[n-1]-a[n-2])/2
}

// reference returns the newest remembered sample at least the rate window
// older than now, or the oldest one when none is that old.
func (st *streamState) reference(now time.Duration) (pastSample, bool) {
	if st.n == 0 {
		return pastSample{}, false
	}
	oldest := st.hist[(st.head-st.n+len(st.hist)*2)%len(st.hist)]
	if now-oldest.t < st.window {
		return oldest, true // nothing old enough (or a log without time): O(1)
	}
	for k := 0; k < st.n; k++ {
		p := st.hist[(st.head-1-k+len(st.hist)*2)%len(st.hist)]
		if now-p.t >= st.window {
			return p, true
		}
	}
	return oldest, true
}

// check returns the first reason that rejects the sample for every
// cylinder, or -1.
func (st *streamState) check(s *dyno.Sample) Reason {
	f := st.f
	transient := false
	if ref, ok := st.reference(s.Time); ok && s.Time > ref.t {
		dt := (s.Time - ref.t).Seconds()
		if f.MaxTPSRate > 0 && dyno.Has(s.TPS) && dyno.Has(ref.tps) && math.Abs(s.TPS-ref.tps)/dt > f.MaxTPSRate {
			transient = true
		}
		if f.MaxMAPRate > 0 && dyno.Has(s.MAP) && dyno.Has(ref.map_) && math.Abs(s.MAP-ref.map_)/dt > f.MaxMAPRate {
			transient = true
		}
	} else if ok && s.Time < ref.t {
		st.n = 0 // time went backwards (a new log section): start over
	}
	rpmFalling := st.haveRPM && dyno.Has(s.RPM) && s.RPM < st.prevRPM
	if transient {
		st.holdUntil = s.Time + f.TransientHold
		st.inHold = true
	}
	inHold := st.inHold && s.Time < st.holdUntil
	st.inHold = inHold
	st.hist[st.head] = pastSample{t: s.Time, tps: s.TPS, map_: s.MAP}
	st.head = (st.head + 1) % len(st.hist)
	st.n = min(st.n+1, len(st.hist))
	if dyno.Has(s.RPM) {
		st.prevRPM, st.haveRPM = s.RPM, true
	}

	switch {
	case !dyno.Has(s.RPM) || !dyno.Has(s.MAP):
		return RejectNoSpeedLoad
	case s.RPM < f.RPMMin:
		return RejectLowRPM
	case s.MAP < f.MAPMin || s.MAP > f.MAPMax:
		return RejectMAPRange
	case dyno.Has(s.TPS) && (s.TPS < f.TPSMin || s.TPS > f.TPSMax):
		return RejectTPSRange
	case dyno.Has(s.IAT) && (s.IAT < f.IATMin || s.IAT > f.IATMax):
		return RejectIATRange
	case s.RPM < st.rpmLo || s.RPM > st.rpmHi || s.MAP < st.mapLo || s.MAP > st.mapHi:
		return RejectOffGrid
	case f.MinECT > 0 && dyno.Has(s.ECT) && s.ECT < f.MinECT:
		return RejectColdEngine
	case f.DecelTPS > 0 && dyno.Has(s.TPS) && s.TPS <= f.DecelTPS && rpmFalling:
		return RejectDecel
	case transient || inHold:
		return RejectTransient
	}
	return -1
}
