package ve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"

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

// Analyze reads src to its end and returns the corrections. Before reading
// it refuses a source that lacks what an analysis needs (a *RefusalError:
// no engine speed, no load, no live wideband, no target); it returns ctx's
// error if ctx is cancelled, and the source's error if reading fails.
//
// The pipeline: the time base repaired (dyno.Retime), the wideband's
// transport delay learned and undone (afr.AutoAlign), transients, decel
// and fuel cut rejected and speed and load smoothed (the conditioner),
// range checks, then each accepted sample accumulated on the grid (which
// grows to the data unless the grid was given), and at the end the node
// fit per cylinder (or the cell means).
func (a *analyzer) Analyze(ctx context.Context, src dyno.Source) (*Result, error) {
	p, err := a.begin(src)
	if err != nil {
		return nil, err
	}
	pf := newPrefetcher(ctx, p.src)
	defer pf.close()
	for {
		if p.samples&1023 == 0 {
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
		p.feed(s)
	}
	p.drain()
	p.observe()
	if err := p.check(); err != nil {
		return nil, err
	}
	p.g.trim(a.opts.MinSamples)
	return p.result()
}

// pass is one analysis in progress: the pipeline's source (the time base
// repaired, the delay undone), the conditioner and the grid's
// accumulators. Analyze runs one over a whole log; a Session feeds one
// indefinitely and reads results from it while it runs.
type pass struct {
	a          *analyzer
	src        dyno.Source // the pipeline: read from this
	layout     dyno.Layout
	report     *dyno.ChannelReport
	axis       LoadAxis
	axisWhy    string
	g          *growGrid
	cond       *conditioner
	seen       []bool
	ncyl       int
	combined   bool
	hasTime    bool
	notes      []string
	retime     *dyno.Retimer
	auto       *afr.AutoAligner
	samples    int
	weighted   int
	retimeNote dyno.RetimeReport
	delay      dyno.TransportDelay
	delayEst   *afr.DelayEstimate
	delayNote  string
	// reuse, when set (a Session's snapshots), keeps each cylinder's
	// chosen smoothness until its accepted samples grow by reuseGrowth.
	reuse  bool
	chosen []chosenSmoothness
}

// chosenSmoothness is the smoothness a cylinder's fit chose, and the
// cylinder's accepted samples then.
type chosenSmoothness struct {
	s  float64
	at int
}

// reuseGrowth is how much a cylinder's accepted samples must grow (as a
// fraction) before a Session's snapshot chooses its smoothness again.
const reuseGrowth = 0.1

// smoothnessFor returns the smoothness cylinder c's fit is to use: the
// option's, or, reusing, the one chosen before while the evidence has not
// grown much since; zero means choose.
func (p *pass) smoothnessFor(c int) float64 {
	o := p.a.opts
	if o.Smoothness != 0 || !p.reuse || c >= len(p.chosen) || p.chosen[c].s == 0 {
		return o.Smoothness
	}
	if float64(p.g.acc(c).accepted) > float64(p.chosen[c].at)*(1+reuseGrowth) {
		return 0
	}
	return p.chosen[c].s
}

// chose records the smoothness cylinder c's fit used.
func (p *pass) chose(c int, s float64) {
	if !p.reuse || p.a.opts.Smoothness != 0 {
		return
	}
	for len(p.chosen) <= c {
		p.chosen = append(p.chosen, chosenSmoothness{})
	}
	if p.chosen[c].s == 0 || p.smoothnessFor(c) == 0 {
		p.chosen[c] = chosenSmoothness{s: s, at: p.g.acc(c).accepted}
	}
}

// begin checks src and sets up a pass over it. Before reading it refuses a
// source that lacks what an analysis needs.
func (a *analyzer) begin(src dyno.Source) (*pass, error) {
	o := a.opts
	layout := src.Layout()
	var report *dyno.ChannelReport
	if r, ok := src.(dyno.Reporter); ok {
		report = r.ChannelReport()
	}
	if o.Weighting == WeightPower && layout.Channels != 0 && !layout.Channels.Has(dyno.ChanPower) {
		return nil, fmt.Errorf("%w: weighting by power needs a power (HP) channel; %s has %s",
			ErrMissingChannel, nameOr(layout.Name), layout.Channels)
	}
	if o.Weighting == WeightTorque && layout.Channels != 0 && !layout.Channels.Has(dyno.ChanTorque) {
		return nil, fmt.Errorf("%w: weighting by torque needs a torque channel; %s has %s",
			ErrMissingChannel, nameOr(layout.Name), layout.Channels)
	}
	if err := a.refuse(layout, report); err != nil {
		return nil, err
	}
	axis, axisWhy, err := a.chooseLoad(layout, report)
	if err != nil {
		return nil, err
	}
	loadPercent := axis == LoadTPS
	if axis == LoadECU {
		if ci := report.Find(dyno.ChanLoad, 0); ci != nil && ci.Unit == dyno.UnitPercent {
			loadPercent = true
		}
	}
	grid, extend := o.Grid, o.ExtendGrid
	if grid.IsZero() {
		grid, extend = DefaultGrid(), true
		if loadPercent {
			grid = DefaultThrottleGrid()
		}
	}
	p := &pass{a: a, layout: layout, report: report, axis: axis, axisWhy: axisWhy, delay: o.SensorDelay}

	// A log without time (the predecessor's CSVs) has no rates to measure:
	// no time base to repair, no delay to learn, no smoothing over time.
	hasTime := layout.Channels == 0 || layout.Channels.Has(dyno.ChanTime)
	p.hasTime = hasTime
	if hasTime {
		p.retime = dyno.Retime(src)
		src = p.retime
	} else {
		p.notes = append(p.notes, "the log has no time column: no transient, decel-slope or delay checks, and no smoothing over time")
	}
	switch {
	case !hasTime:
		if !o.SensorDelay.IsZero() {
			p.notes = append(p.notes, "a sensor delay cannot be undone without time")
		}
	case !o.NoLearnDelay:
		lo := o.LearnDelayOptions
		if lo.Fallback.IsZero() {
			lo.Fallback = o.SensorDelay
		}
		if lo.Lag == 0 {
			lo.Lag = o.SensorLag
		}
		p.auto = afr.AutoAlign(src, lo)
		src = p.auto
	case !o.SensorDelay.IsZero():
		src = afr.Align(src, o.SensorDelay)
	}
	p.src = src

	ncyl := layout.Cylinders
	if ncyl <= 0 || ncyl > dyno.MaxCylinders {
		ncyl = dyno.MaxCylinders // undeclared: look at every slot
	}
	p.combined = layout.CombinedAFR
	if p.combined {
		ncyl = 1
	}
	p.ncyl = ncyl
	tpsLive := layout.Channels == 0 || layout.Channels.Has(dyno.ChanTPS)
	p.g = newGrowGrid(grid, extend, axis, loadPercent)
	p.g.nearest = o.Attribution == NearestCell
	p.cond = newConditioner(o.Filter, axis, o.Targets, o.Fuel.Stoich, ncyl, tpsLive, hasTime, [2]float64{medianStep(p.g.rpm), medianStep(p.g.load)})
	if hasTime {
		p.cond.lag = o.SensorLag
	}
	p.seen = make([]bool, ncyl)
	return p, nil
}

// feed takes one sample read from p.src through the conditioner onto the
// grid.
func (p *pass) feed(s *dyno.Sample) {
	p.samples++
	if p.cond.direct() {
		// Nothing to look ahead for (a log without time): no copy.
		reason := p.cond.check(s)
		cs := condSample{reason: reason, rpm: s.RPM, load: loadOf(p.axis, s)}
		if p.a.accumulateSample(p.g, s, &cs, p.ncyl, p.combined, p.seen) {
			p.weighted++
		}
		return
	}
	p.cond.push(s)
	p.release(false)
}

// release accumulates the samples the conditioner lets go (every one it
// holds with final).
func (p *pass) release(final bool) {
	for {
		cs, ok := p.cond.pop(final)
		if !ok {
			return
		}
		if p.a.accumulate(p.g, cs, p.ncyl, p.combined, p.seen) {
			p.weighted++
		}
	}
}

// drain releases the samples the conditioner still holds: the end of the
// stream.
func (p *pass) drain() { p.release(true) }

// observe copies what the pipeline's stages learned (the time base's
// repairs, the delay) into p, so that result reads no stage while the
// pipeline runs.
func (p *pass) observe() {
	if p.retime != nil {
		p.retimeNote = p.retime.Report()
	}
	if p.auto != nil {
		p.delay = p.auto.Delay()
		if est, err := p.auto.Estimate(); err != nil {
			p.delayNote, p.delayEst = err.Error(), nil
		} else {
			p.delayEst, p.delayNote = &est, ""
		}
	}
}

// check returns the error the whole stream earns (weighting by power with
// no sample that has power).
func (p *pass) check() error {
	if p.a.opts.Weighting == WeightPower && p.weighted == 0 && p.samples > 0 {
		return fmt.Errorf("%w: weighting by power, but no sample of %s has power (HP)", ErrMissingChannel, nameOr(p.layout.Name))
	}
	return nil
}

// result fits the accumulated grid and returns the corrections so far. It
// changes nothing in p, so it can be called again as more samples arrive.
func (p *pass) result() (*Result, error) {
	o := p.a.opts
	g := p.g
	res := &Result{Source: p.layout.Name, Format: p.layout.Format, Grid: Grid{RPM: append([]float64(nil), g.rpm...), MAP: append([]float64(nil), g.load...)}, Samples: p.samples,
		Options: o, Delay: o.SensorDelay, Load: p.axis, LoadWhy: p.axisWhy, Channels: p.report, Combined: p.combined}
	if !o.NoLearnDelay || !p.hasTime {
		res.Delay = dyno.TransportDelay{}
	}
	res.Options.Grid = res.Grid
	res.Target = targetText(o.Targets, p.report)
	res.Notes = append(res.Notes, p.notes...)
	if p.retimeNote.Changed() {
		res.Notes = append(res.Notes, p.retimeNote.String())
	}
	if g.addedR0+g.addedR1+g.addedL0+g.addedL1 > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("grid extended to the data: RPM %s..%s, load %s..%s",
			formatAxis(g.rpm[0]), formatAxis(g.rpm[len(g.rpm)-1]), formatAxis(g.load[0]), formatAxis(g.load[len(g.load)-1])))
	}
	if p.auto != nil {
		res.Delay = p.delay
		res.DelayNote = p.delayNote
		if p.delayEst != nil {
			est := *p.delayEst
			res.DelayEstimate = &est
		}
	}
	for c := 0; c < p.ncyl; c++ {
		if !p.seen[c] {
			continue
		}
		cr, err := p.a.finishWith(c, g, p.smoothnessFor(c))
		if err != nil {
			return nil, err
		}
		p.chose(c, cr.Smoothness)
		cr.Combined = p.combined
		res.Cylinders = append(res.Cylinders, cr)
		if c < len(g.decel) {
			res.Decel = append(res.Decel, finishDecel(g.decel[c], c, cr.Name(), res.Grid, o.Decel))
		}
	}
	return res, nil
}

// accumulate checks a conditioned sample against the ranges and every
// cylinder's wideband and target, and adds it to the grid. It reports
// whether the sample had a weight of its own (torque or power weighting).
func (a *analyzer) accumulate(g *growGrid, cs *condSample, ncyl int, combined bool, seen []bool) bool {
	return a.accumulateSample(g, &cs.s, cs, ncyl, combined, seen)
}

// accumulateSample is accumulate for a sample held elsewhere than in cs
// (cs.s is then unused).
func (a *analyzer) accumulateSample(g *growGrid, s *dyno.Sample, cs *condSample, ncyl int, combined bool, seen []bool) bool {
	o := &a.opts
	f := o.Filter
	common := a.rangeCheck(s, cs)
	if common < 0 {
		common = cs.reason
	}
	if common < 0 && !g.covers(cs.rpm, cs.load) {
		common = RejectOffGrid
	}
	weight := 1.0
	switch o.Weighting {
	case WeightTorque:
		weight = math.Max(0, s.Torque)
	case WeightPower:
		weight = math.Max(0, s.Power)
	}
	hadWeight := false
	if math.IsNaN(weight) {
		weight = 0
	} else if o.Weighting != WeightEqual {
		hadWeight = true
	}
	var qi, qj int
	var fr, fm float64
	if common < 0 {
		qi, qj, fr, fm = g.place(cs.rpm, cs.load)
	}
	for c := 0; c < ncyl; c++ {
		meas := measuredAFR(s, c, o.Fuel.Stoich) + cs.lagFix[c]
		if !dyno.Has(meas) && !dyno.Has(s.AFRCommanded[c]) && o.Targets == nil {
			continue // the cylinder has no wideband in this log
		}
		if !dyno.Has(meas) && !seen[c] {
			continue
		}
		acc := g.acc(c)
		seen[c] = true
		target := s.AFRCommanded[c]
		if o.Targets != nil && dyno.Has(cs.rpm) && dyno.Has(cs.load) {
			target = o.Targets.At(cs.rpm, cs.load)
		}
		fuelCut := dyno.Has(meas) && ((f.FuelCutAFR > 0 && meas > f.FuelCutAFR) ||
			(f.FuelCutRatio > 0 && dyno.Has(target) && meas > f.FuelCutRatio*target && common == RejectDecel))
		if common == RejectDecel || (common < 0 && fuelCut) {
			// Decel is the decel analysis's, never the correction's.
			g.decelAt(c).add(cs.rpm, cs.load, meas, target, fuelCut)
		}
		reject := func(r Reason) {
			acc.rejected[r]++
			acc.rejectAt(cs.rpm, cs.load, r)
		}
		if common >= 0 {
			reject(common)
			continue
		}
		switch {
		case !dyno.Has(meas):
			reject(RejectNoAFR)
			continue
		case !dyno.Has(target):
			reject(RejectNoTarget)
			continue
		case meas > f.FuelCutAFR && f.FuelCutAFR > 0:
			reject(RejectDecel)
			continue
		case meas < f.AFRMin || meas > f.AFRMax || target < f.AFRMin || target > f.AFRMax:
			reject(RejectAFRRange)
			continue
		case weight <= 0 || (o.Weighting != WeightEqual && weight < 5):
			reject(RejectLowWeight)
			continue
		}
		acc.accepted++
		mult := meas / target
		knock := s.Knock[c]
		if combined {
			// One correction for every cylinder: the worst knock of any.
			for _, k := range s.Knock {
				if dyno.Has(k) && (!dyno.Has(knock) || k > knock) {
					knock = k
				}
			}
		}
		if a.opts.Attribution == NearestCell {
			idx := g.rIdx.nearest(cs.rpm)*g.cols() + g.lIdx.nearest(cs.load)
			acc.nodes[idx].add(1, weight, mult-1, meas, target, s, knock)
			acc.nodes[idx].near++
			continue
		}
		if len(acc.quads) > 0 {
			nc := g.cols()
			q := acc.quads[qi*(nc-1)+qj]
			if q == nil {
				q = new(quadAcc)
				acc.quads[qi*(nc-1)+qj] = q
			}
			q.add(fr, fm, weight, mult-1, meas, target, s, knock)
		}
	}
	return hadWeight
}

// rangeCheck returns the first range check that rejects the sample for
// every cylinder, or -1.
func (a *analyzer) rangeCheck(s *dyno.Sample, cs *condSample) Reason {
	f := a.opts.Filter
	switch {
	case !dyno.Has(cs.rpm) || !dyno.Has(cs.load):
		return RejectNoSpeedLoad
	case cs.rpm < f.RPMMin:
		return RejectLowRPM
	case dyno.Has(s.MAP) && (s.MAP < f.MAPMin || s.MAP > f.MAPMax):
		return RejectMAPRange
	case dyno.Has(s.TPS) && (s.TPS < f.TPSMin || s.TPS > f.TPSMax):
		return RejectTPSRange
	case dyno.Has(s.IAT) && (s.IAT < f.IATMin || s.IAT > f.IATMax):
		return RejectIATRange
	case f.MinECT > 0 && dyno.Has(s.ECT) && s.ECT < f.MinECT:
		return RejectColdEngine
	}
	return -1
}

// trim drops the rows and columns the grid grew that hold too little
// evidence to show: the grid covers where the data is, no further.
func (g *growGrid) trim(minEvidence float64) {
	if g.addedR0+g.addedR1+g.addedL0+g.addedL1 == 0 {
		return
	}
	nr, nc := g.rows(), g.cols()
	var stats [][]nodeAcc
	for _, c := range g.cyl {
		if c != nil {
			stats = append(stats, c.nodeStats(nr, nc))
		}
	}
	evidence := func(i0, i1, j0, j1 int) float64 {
		var e float64
		for _, st := range stats {
			for i := i0; i <= i1; i++ {
				for j := j0; j <= j1; j++ {
					e = math.Max(e, st[i*nc+j].share)
				}
			}
		}
		return e
	}
	r0, r1, l0, l1 := 0, 0, 0, 0
	for r0 < g.addedR0 && evidence(r0, r0, 0, nc-1) < minEvidence {
		r0++
	}
	for r1 < g.addedR1 && evidence(nr-1-r1, nr-1-r1, 0, nc-1) < minEvidence {
		r1++
	}
	for l0 < g.addedL0 && evidence(0, nr-1, l0, l0) < minEvidence {
		l0++
	}
	for l1 < g.addedL1 && evidence(0, nr-1, nc-1-l1, nc-1-l1) < minEvidence {
		l1++
	}
	if r0+r1+l0+l1 == 0 {
		return
	}
	newR, newC := nr-r0-r1, nc-l0-l1
	for _, c := range g.cyl {
		if c == nil {
			continue
		}
		if c.nearest {
			nodes := make([]nodeAcc, newR*newC)
			for i := 0; i < newR; i++ {
				copy(nodes[i*newC:(i+1)*newC], c.nodes[(i+r0)*nc+l0:(i+r0)*nc+l0+newC])
			}
			c.nodes = nodes
		}
		var quads []*quadAcc
		if newR > 1 && newC > 1 {
			quads = make([]*quadAcc, (newR-1)*(newC-1))
			for i := 0; i < newR-1; i++ {
				copy(quads[i*(newC-1):(i+1)*(newC-1)], c.quads[(i+r0)*(nc-1)+l0:(i+r0)*(nc-1)+l0+newC-1])
			}
		}
		c.quads = quads
	}
	g.rpm = append([]float64(nil), g.rpm[r0:nr-r1]...)
	g.load = append([]float64(nil), g.load[l0:nc-l1]...)
	g.addedR0, g.addedR1, g.addedL0, g.addedL1 = g.addedR0-r0, g.addedR1-r1, g.addedL0-l0, g.addedL1-l1
	g.index()
}

func targetText(t dyno.Surface, rep *dyno.ChannelReport) string {
	if t != nil {
		if s, ok := t.(fmt.Stringer); ok {
			return s.String()
		}
		return "target table"
	}
	if ci := rep.Find(dyno.ChanAFRCommanded, 0); ci != nil {
		return fmt.Sprintf("the log's commanded AFR, %q", ci.Column)
	}
	return "the log's commanded AFR"
}

func nameOr(n string) string {
	if n == "" {
		return "the source"
	}
	return n
}

// finishWith turns a cylinder's accumulators into its result: the node
// fit (or the cell means), the evidence per node, smoothing and the clamp,
// with the fit's smoothness given (zero: chosen from
// the data).
func (a *analyzer) finishWith(cyl int, g *growGrid, smoothnessOpt float64) (CylinderResult, error) {
	o := a.opts
	acc := g.acc(cyl)
	nr, nc := g.rows(), g.cols()
	nodes := acc.nodeStats(nr, nc)
	raw := MustTable(g.rpm, g.load, math.NaN())
	pct := MustTable(g.rpm, g.load, math.NaN())
	cells := make([]Cell, nr*nc)
	evidence := make([]float64, nr*nc)
	for i := range nodes {
		evidence[i] = nodes[i].share
	}
	var fit *nodeFit
	var smoothness float64
	if o.Estimator == NodeFit {
		var err error
		fit, err = fitNodes(nr, nc, acc.quads, evidence, o.MinSamples, smoothnessOpt)
		if err != nil {
			return CylinderResult{}, fmt.Errorf("ve: cylinder %d: %w", cyl, err)
		}
		smoothness = fit.smoothness
	}
	for i := range nodes {
		ca := &nodes[i]
		cell := Cell{
			Hits: ca.hits, EffectiveSamples: ca.share, Weight: ca.w,
			Multiplier: math.NaN(), StdErr: math.NaN(), MeanAFR: math.NaN(), MeanTarget: math.NaN(),
			Torque: math.NaN(), Power: math.NaN(), KnockMax: ca.knockMax, IATMax: ca.iatMax,
			Resolution: math.NaN(), CellMean: math.NaN(),
		}
		if ca.w > 0 {
			cell.CellMean = ca.mean()
			cell.MeanAFR = ca.afrW / ca.w
			cell.MeanTarget = ca.tgtW / ca.w
			if ca.tqWsum > 0 {
				cell.Torque = ca.tqW / ca.tqWsum
			}
			if ca.hpWsum > 0 {
				cell.Power = ca.hpW / ca.hpWsum
			}
			correct := ca.share >= o.MinSamples && float64(ca.near) >= o.MinSamples
			if fit != nil {
				cell.Multiplier = 1 + fit.value[i]
				cell.StdErr = fit.stdErr[i]
				cell.Resolution = fit.resolution[i]
				correct = correct && Has(cell.StdErr) && cell.StdErr <= o.MaxStdErr && cell.Resolution >= o.MinResolution
			} else {
				cell.Multiplier = ca.mean()
				cell.StdErr = ca.stdErr()
			}
			raw.Values[i] = cell.Multiplier
			switch {
			case ca.share < o.MinSamples || float64(ca.near) < o.MinSamples:
				cell.Verdict = VerdictBelowFloor
			case !Has(cell.Multiplier):
				cell.Verdict = VerdictNoData
			case fit != nil && (!Has(cell.StdErr) || cell.StdErr > o.MaxStdErr):
				cell.Verdict = VerdictUncertain
			case fit != nil && cell.Resolution < o.MinResolution:
				cell.Verdict = VerdictLowResolution
			default:
				cell.Verdict = VerdictCorrected
			}
			if correct && Has(cell.Multiplier) {
				pct.Values[i] = (cell.Multiplier - 1) * 100
				cell.Confidence = grade(ca.share, cell.StdErr)
			}
		}
		cells[i] = cell
	}
	if o.Smoothing.Kernels {
		pct = SmoothK1K2(pct, o.Smoothing.Passes, o.Smoothing.GradientThreshold)
	}
	clamped := 0
	corr := MustTable(g.rpm, g.load, 1)
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
	cellRej, off := foldRejections(acc.rejectedAt, Grid{RPM: g.rpm, MAP: g.load})
	placed := Rejections{}
	for _, rj := range cellRej {
		for r, n := range rj {
			placed[r] += n
		}
	}
	for r := range off {
		off[r] = acc.rejected[r] - placed[r] // with the ones never placed
	}
	return CylinderResult{Cylinder: cyl, Correction: corr, Raw: raw, Cells: cells, cellRejected: cellRej, unplaced: off,
		Accepted: acc.accepted, Rejected: acc.rejected, Clamped: clamped, Smoothness: smoothness}, nil
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
		return Nearest(x.a[i0:i1+1], v) + i0
	}
	return i0
}

// sortedReasons returns the rejection reasons of r with a count, most
// frequent first.
func sortedReasons(r Rejections) []Reason {
	var out []Reason
	for i, n := range r {
		if n > 0 {
			out = append(out, Reason(i))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return r[out[i]] > r[out[j]] })
	return out
}

// medianStep returns the median spacing of an axis (0 with fewer than two
// nodes).
func medianStep(axis []float64) float64 {
	if len(axis) < 2 {
		return 0
	}
	d := make([]float64, len(axis)-1)
	for i := range d {
		d[i] = axis[i+1] - axis[i]
	}
	slices.Sort(d)
	return d[len(d)/2]
}
