package afr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/dynoai/dynoai/dyno"
)

// ErrNoDelaySignal is returned by DelayEstimator.Estimate when the log holds
// nothing the delay can be read from: no wideband readings, no changes in the
// excitation channel, or no correlation between the two within MaxDelay.
var ErrNoDelaySignal = errors.New("afr: no delay signal in the log")

// ErrEstimate is wrapped by the errors a DelayEstimator reports about its
// input or options: time going backwards, a bad option.
var ErrEstimate = errors.New("afr: delay estimate")

// Defaults of EstimateOptions.
const (
	DefaultMaxDelay     = 1500 * time.Millisecond
	DefaultEstimateStep = 20 * time.Millisecond
	DefaultMaxGap       = 250 * time.Millisecond
	DefaultCellRPM      = 100.0
	DefaultCellMAP      = 5.0
)

// DefaultDelayBands returns the RPM band edges a DelayEstimator reports
// separately when EstimateOptions.BandEdges is nil: below 2500, 2500–3500,
// 3500–4500 and from 4500 rev/min. Each call returns a new slice.
func DefaultDelayBands() []float64 { return []float64{2500, 3500, 4500} }

// Bounds of the estimator's memory: cells of the speed × load plane and
// lags it tracks.
const (
	maxCells = 4096
	maxLags  = 1024
)

// EstimateOptions tune a DelayEstimator. The zero value is usable.
type EstimateOptions struct {
	// MaxDelay is the largest delay searched; zero means DefaultMaxDelay.
	MaxDelay time.Duration
	// Step is the interval the log is resampled to; the delay is found to
	// a fraction of it. Zero means DefaultEstimateStep. Logs at any rate,
	// even irregular, work.
	Step time.Duration
	// MaxGap is the longest interval between two samples that is bridged;
	// a longer gap restarts the matching. Zero means DefaultMaxGap.
	MaxGap time.Duration
	// CellRPM and CellMAP are the sizes of the engine-state cells the
	// readings are compared in; zero means DefaultCellRPM (rev/min) and
	// DefaultCellMAP (kPa).
	CellRPM, CellMAP float64
	// BandEdges are the RPM boundaries of the bands estimated separately,
	// strictly increasing; nil means DefaultDelayBands, an empty non-nil
	// slice one band.
	BandEdges []float64
	// IgnoreCommanded leaves the commanded AFR out of the model even when
	// the log has it (see DelayEstimator).
	IgnoreCommanded bool
	// Fuel converts lambda channels when the AFR channel is missing; the
	// zero value means Gasoline.
	Fuel Fuel
	// FitRPM fits Delay as Fixed + PerRPM/rpm to the bands that are
	// confident (at least MinBandConfidence), when at least two are and
	// the fit is physical (both terms non-negative). Otherwise, and by
	// default, Delay is the single overall estimate as Fixed.
	FitRPM bool
	// MinBandConfidence is the confidence a band needs to enter the fit;
	// zero means 0.5.
	MinBandConfidence float64
}

// DelayEstimate is what a DelayEstimator read from a log.
type DelayEstimate struct {
	// Delay is the transport delay to undo, ready for Align.
	Delay Delay `json:"-"`
	// Overall is the delay estimated from the whole log.
	Overall time.Duration `json:"overall_ns"`
	// Fixed and PerRPM are Delay's terms (PerRPM in seconds·rev/min).
	Fixed  time.Duration `json:"fixed_ns"`
	PerRPM float64       `json:"per_rpm"`
	// Confidence in [0, 1] is the product of how far the best delay
	// stands out from every candidate more than 150 ms outside its own
	// basin (1 − second gain / best gain, gains measured from the median
	// lag) and how much of the readings' spread it explains (full from
	// 5 %); 0 when the best delay is MaxDelay, where the true one may lie
	// beyond. It is a heuristic grade, not a probability.
	Confidence float64 `json:"confidence"`
	// Explained is the share of the readings' within-cell variance
	// (geometric mean over cells) that the best delay removes compared
	// with the median candidate.
	Explained float64 `json:"explained"`
	// Pairs is the number of (reading, engine state) pairs behind the
	// best delay.
	Pairs int `json:"pairs"`
	// Commanded reports that the commanded AFR was part of the model.
	Commanded bool `json:"commanded"`
	// Bands are the per-RPM-band estimates; a band without data has
	// Pairs 0.
	Bands []BandDelay `json:"bands"`
}

// BandDelay is the delay estimated from the readings logged in one RPM
// band.
type BandDelay struct {
	// MinRPM is the band's lower edge, 0 for the first band; MaxRPM its
	// upper edge, 0 (absent in JSON) for the last band, which has none.
	MinRPM float64 `json:"min_rpm"`
	MaxRPM float64 `json:"max_rpm,omitempty"`
	// MeanRPM is the mean engine speed of the band's readings, 0 without
	// readings.
	MeanRPM    float64       `json:"mean_rpm"`
	Delay      time.Duration `json:"delay_ns"`
	Confidence float64       `json:"confidence"`
	Explained  float64       `json:"explained"`
	Pairs      int           `json:"pairs"`
}

// bandAcc accumulates, per lag and cell slot, the readings' count, sum
// and sum of squares. Slots are the estimator's, shared by every bandAcc.
type bandAcc struct {
	lo, hi        float64
	rpmSum, rpmN  float64
	n, sum, sumsq [][]float64 // [lag][slot]
}

// grow adds one slot to every lag.
func (b *bandAcc) grow() {
	for l := range b.n {
		b.n[l] = append(b.n[l], 0)
		b.sum[l] = append(b.sum[l], 0)
		b.sumsq[l] = append(b.sumsq[l], 0)
	}
}

// DelayEstimator estimates the wideband transport delay from a log. The
// idea: a wideband reading measures the exhaust of the engine state one
// transport delay earlier, and in a given state (a cell of engine speed ×
// manifold pressure) the engine makes the same mixture every time. So the
// delay is the lag at which the readings, grouped by the cell the engine
// was in that lag earlier, are most consistent: the lag that minimises the
// geometric mean of the cells' variances of log AFR (the Gaussian
// likelihood with a variance per cell). When the log has the ECU's
// commanded AFR (and IgnoreCommanded is false), log(measured / commanded
// that lag earlier) is grouped instead, which removes what the ECU changed
// on purpose.
//
// The information is in cells the log passes through more than once in
// different ways: sweeps up and down the same row, a pull and a sweep, load
// steps. A log that visits each cell once, the same way, says nothing about
// the delay (ErrNoDelaySignal or a low Confidence). A first-order sensor
// lag adds about its time constant to the estimate.
//
// The log is resampled to Step. Readings are also grouped per RPM band
// (by the engine speed when they were logged, measured against the cell
// means of the whole log), so a delay that shrinks with gas velocity can
// show; the band estimates are rougher than the overall one. Memory grows
// with the cells the log visits, not with its length: 24 bytes × lags ×
// (bands + 1) per cell, about 9 KB with the defaults (76 lags, 4 bands),
// at most 4096 cells; a dyno session visits a few hundred.
type DelayEstimator struct {
	opt   EstimateOptions
	fuel  Fuel
	lags  int
	edges []float64
	bands []bandAcc
	// all pools every reading: the overall estimate must not be computed
	// from the bands' groups, whose split by the reading's engine speed
	// would change with the lag
	all bandAcc
	cmd int // -1 undecided, 0 no, 1 yes

	// resampler
	have     bool
	prev     point
	nextGrid time.Duration
	lastT    time.Duration
	count    int

	// rings of the engine state at past points
	head     int
	ringSlot []int32 // the cell slot of each past point, -1 for none
	slots    map[int32]int32
	ringCmd  [dyno.MaxCylinders][]float64
	cyl      int
}

type point struct {
	t         time.Duration
	rpm, map_ float64
	y         [dyno.MaxCylinders]float64 // log measured AFR
	cmd       [dyno.MaxCylinders]float64 // log commanded AFR
}

// NewDelayEstimator validates opt and returns an estimator.
func NewDelayEstimator(opt EstimateOptions) (*DelayEstimator, error) {
	if opt.MaxDelay == 0 {
		opt.MaxDelay = DefaultMaxDelay
	}
	if opt.Step == 0 {
		opt.Step = DefaultEstimateStep
	}
	if opt.MaxGap == 0 {
		opt.MaxGap = DefaultMaxGap
	}
	if opt.CellRPM == 0 {
		opt.CellRPM = DefaultCellRPM
	}
	if opt.CellMAP == 0 {
		opt.CellMAP = DefaultCellMAP
	}
	if opt.MinBandConfidence == 0 {
		opt.MinBandConfidence = 0.5
	}
	switch {
	case opt.Step < time.Millisecond || opt.Step > time.Second:
		return nil, fmt.Errorf("%w: Step %v outside [1ms, 1s]", ErrEstimate, opt.Step)
	case opt.MaxDelay < 2*opt.Step || opt.MaxDelay/opt.Step >= maxLags:
		return nil, fmt.Errorf("%w: MaxDelay %v must span 2 to %d steps of %v", ErrEstimate, opt.MaxDelay, maxLags-1, opt.Step)
	case opt.MaxGap < opt.Step:
		return nil, fmt.Errorf("%w: MaxGap %v shorter than Step %v", ErrEstimate, opt.MaxGap, opt.Step)
	case !(opt.CellRPM >= 10 && opt.CellRPM <= 5000):
		return nil, fmt.Errorf("%w: CellRPM %v outside [10, 5000]", ErrEstimate, opt.CellRPM)
	case !(opt.CellMAP >= 0.5 && opt.CellMAP <= 100):
		return nil, fmt.Errorf("%w: CellMAP %v outside [0.5, 100]", ErrEstimate, opt.CellMAP)
	case !(opt.MinBandConfidence >= 0 && opt.MinBandConfidence <= 1):
		return nil, fmt.Errorf("%w: MinBandConfidence %v outside [0, 1]", ErrEstimate, opt.MinBandConfidence)
	}
	edges := opt.BandEdges
	if edges == nil {
		edges = DefaultDelayBands()
	}
	for i, e := range edges {
		if math.IsNaN(e) || math.IsInf(e, 0) || (i > 0 && e <= edges[i-1]) {
			return nil, fmt.Errorf("%w: BandEdges[%d] = %v: edges must be finite and strictly increasing", ErrEstimate, i, e)
		}
	}
	if len(edges) > 16 {
		return nil, fmt.Errorf("%w: %d BandEdges, at most 16", ErrEstimate, len(edges))
	}
	fuel := opt.Fuel
	if fuel == (Fuel{}) {
		fuel = Gasoline
	} else if err := fuel.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEstimate, err)
	}
	e := &DelayEstimator{
		opt:   opt,
		fuel:  fuel,
		lags:  int(opt.MaxDelay/opt.Step) + 1,
		edges: slices.Clone(edges),
		cmd:   -1,
	}
	if opt.IgnoreCommanded {
		e.cmd = 0
	}
	lo := math.Inf(-1)
	for _, hi := range append(slices.Clone(edges), math.Inf(1)) {
		e.bands = append(e.bands, bandAcc{lo: lo, hi: hi,
			n: make([][]float64, e.lags), sum: make([][]float64, e.lags), sumsq: make([][]float64, e.lags)})
		lo = hi
	}
	e.all = bandAcc{lo: math.Inf(-1), hi: math.Inf(1),
		n: make([][]float64, e.lags), sum: make([][]float64, e.lags), sumsq: make([][]float64, e.lags)}
	e.ringSlot = make([]int32, e.lags)
	e.slots = map[int32]int32{}
	for c := range e.ringCmd {
		e.ringCmd[c] = make([]float64, e.lags)
	}
	e.resetRings()
	return e, nil
}

func (e *DelayEstimator) resetRings() {
	for k := range e.ringSlot {
		e.ringSlot[k] = -1
	}
	for c := range e.ringCmd {
		for k := range e.ringCmd[c] {
			e.ringCmd[c][k] = math.NaN()
		}
	}
}

// Add feeds one sample. Samples must come in time order; a sample at the
// same time as the previous one is ignored.
func (e *DelayEstimator) Add(s *dyno.Sample) error {
	e.count++
	if e.have && s.Time < e.lastT {
		return fmt.Errorf("%w: sample %d at %v: time goes backwards from %v", ErrEstimate, e.count, s.Time, e.lastT)
	}
	if e.have && s.Time == e.lastT {
		return nil
	}
	e.lastT = s.Time
	if e.cmd < 0 {
		for c := range s.AFRCommanded {
			if dyno.Has(s.AFRCommanded[c]) {
				e.cmd = 1
				break
			}
		}
		if e.cmd < 0 {
			e.cmd = 0
		}
	}
	cur := point{t: s.Time, rpm: s.RPM, map_: s.MAP}
	for c := range dyno.MaxCylinders {
		cur.y[c], cur.cmd[c] = math.NaN(), 0
		if m := e.fuel.MeasuredAFR(s, c); dyno.Has(m) && m > 0 {
			cur.y[c] = math.Log(m)
			e.cyl = max(e.cyl, c+1)
		}
		if e.cmd == 1 {
			cur.cmd[c] = math.NaN()
			if v := s.AFRCommanded[c]; dyno.Has(v) && v > 0 {
				cur.cmd[c] = math.Log(v)
			}
		}
	}
	if !e.have || s.Time-e.prev.t > e.opt.MaxGap {
		// Start (or restart after a gap) on this sample.
		e.resetRings()
		e.have = true
		e.prev = cur
		e.push(&cur)
		e.nextGrid = cur.t + e.opt.Step
		return nil
	}
	span := float64(cur.t - e.prev.t)
	for ; e.nextGrid <= cur.t; e.nextGrid += e.opt.Step {
		f := float64(e.nextGrid-e.prev.t) / span
		g := point{t: e.nextGrid, rpm: lerp(e.prev.rpm, cur.rpm, f), map_: lerp(e.prev.map_, cur.map_, f)}
		for c := range e.cyl {
			g.y[c] = lerp(e.prev.y[c], cur.y[c], f)
			g.cmd[c] = lerp(e.prev.cmd[c], cur.cmd[c], f)
		}
		e.push(&g)
	}
	e.prev = cur
	return nil
}

func lerp(a, b, f float64) float64 { return a + (b-a)*f }

// cell returns the engine-state cell of rpm and map, or -1.
func (e *DelayEstimator) cell(rpm, mapKPa float64) int32 {
	// Engine speeds to 100 000 rev/min, pressures to 400 kPa.
	if !(rpm >= 0 && rpm < 100000) || !(mapKPa >= 0 && mapKPa < 400) {
		return -1
	}
	nj := int(math.Ceil(400 / e.opt.CellMAP))
	return int32(int(rpm/e.opt.CellRPM)*nj + int(mapKPa/e.opt.CellMAP))
}

// push adds one resampled point.
func (e *DelayEstimator) push(p *point) {
	e.head = (e.head + 1) % e.lags
	e.ringSlot[e.head] = e.slot(e.cell(p.rpm, p.map_))
	for c := range e.cyl {
		e.ringCmd[c][e.head] = p.cmd[c]
	}
	b := &e.bands[e.band(p.rpm)]
	for c := range e.cyl {
		y := p.y[c]
		if math.IsNaN(y) {
			continue
		}
		if dyno.Has(p.rpm) {
			b.rpmSum += p.rpm
			b.rpmN++
		}
		split := len(e.bands) > 1
		for k := range e.lags {
			idx := (e.head - k + e.lags) % e.lags
			slot := e.ringSlot[idx]
			r := y - e.ringCmd[c][idx]
			if slot < 0 || math.IsNaN(r) {
				continue
			}
			e.all.add(k, slot, r)
			if split {
				b.add(k, slot, r)
			}
		}
	}
}

// slot returns the slot of a cell, allocating it (in every accumulator)
// on first use; -1 for no cell or when maxCells are in use.
func (e *DelayEstimator) slot(cell int32) int32 {
	if cell < 0 {
		return -1
	}
	if sl, ok := e.slots[cell]; ok {
		return sl
	}
	if len(e.slots) >= maxCells {
		return -1
	}
	sl := int32(len(e.slots))
	e.slots[cell] = sl
	e.all.grow()
	if len(e.bands) > 1 {
		for i := range e.bands {
			e.bands[i].grow()
		}
	}
	return sl
}

// add accumulates r into lag k's slot.
func (b *bandAcc) add(k int, slot int32, r float64) {
	b.n[k][slot]++
	b.sum[k][slot] += r
	b.sumsq[k][slot] += r * r
}

func (e *DelayEstimator) band(rpm float64) int {
	if math.IsNaN(rpm) {
		return 0
	}
	i, found := slices.BinarySearch(e.edges, rpm)
	if found {
		i++
	}
	return i
}

// varianceFloor (log AFR squared, a 0.03 % spread) keeps a cell of identical
// readings from dominating the likelihood.
const varianceFloor = 1e-7

// best is the best lag of a set of bands.
type best struct {
	delay     time.Duration
	conf      float64
	explained float64
	pairs     int
}

// bestOf finds the lag at which b's readings are most consistent per cell
// (the smallest geometric mean of the cells' variances).
//
// With ref set, b's readings are measured around ref's cell means instead
// of their own: a band is a subset of the readings, and grouping it alone
// would favour lags at which its cells hold fewer passes.
func (e *DelayEstimator) bestOf(b, ref *bandAcc) (best, bool) {
	v := make([]float64, e.lags)
	pairs := make([]float64, e.lags)
	for k := range e.lags {
		// The geometric mean of the cells' variances, weighted by their
		// readings: the Gaussian likelihood with a variance per cell. A
		// cell whose readings scatter whatever the lag (a sharp feature of
		// the VE inside it) then weighs by its relative change, not by its
		// size.
		var slog, n float64
		for i, cn := range b.n[k] {
			if cn < 2 {
				continue
			}
			sm, sq := b.sum[k][i], b.sumsq[k][i]
			var vc float64
			if ref == nil {
				vc = max(sq-sm*sm/cn, 0) / (cn - 1)
			} else {
				j := i // slots are shared
				rn := ref.n[k][j]
				if rn < 2 {
					continue
				}
				mean := ref.sum[k][j] / rn
				vc = max(sq-2*mean*sm+cn*mean*mean, 0) / cn
			}
			slog += cn * math.Log(vc+varianceFloor)
			n += cn
		}
		pairs[k] = n
		v[k] = math.NaN()
		if n >= 20 {
			v[k] = math.Exp(slog / n)
		}
	}
	kb := -1
	var valid []float64
	for k, x := range v {
		if math.IsNaN(x) {
			continue
		}
		valid = append(valid, x)
		if kb < 0 || x < v[kb] {
			kb = k
		}
	}
	if kb < 0 || len(valid) < 3 {
		return best{}, false
	}
	slices.Sort(valid)
	med := valid[len(valid)/2]
	gain := med - v[kb]
	// A within-cell spread at the floor is rounding, not data.
	if !(med > 1.01*varianceFloor) || !(gain > 1e-3*med) {
		return best{}, false
	}
	// Sub-step refinement: a parabola through the best lag and its
	// neighbours.
	off := 0.0
	if kb > 0 && kb < e.lags-1 && !math.IsNaN(v[kb-1]) && !math.IsNaN(v[kb+1]) {
		a, b, c := v[kb-1], v[kb], v[kb+1]
		if d := a - 2*b + c; d > 0 {
			off = math.Max(-0.5, math.Min(0.5, 0.5*(a-c)/d))
		}
	}
	// The basin: out from the best lag while the variance rises and the
	// gain stays above half; the runner-up is the best lag outside it.
	lo, hi := kb, kb
	for lo > 0 && !math.IsNaN(v[lo-1]) && v[lo-1] >= v[lo] && med-v[lo-1] > gain/2 {
		lo--
	}
	for hi < e.lags-1 && !math.IsNaN(v[hi+1]) && v[hi+1] >= v[hi] && med-v[hi+1] > gain/2 {
		hi++
	}
	second := 0.0
	guard := max(1, int(150*time.Millisecond/e.opt.Step))
	for k, x := range v {
		if !math.IsNaN(x) && (k < lo-guard || k > hi+guard) {
			second = max(second, med-x)
		}
	}
	explained := gain / med
	conf := (1 - second/gain) * math.Min(1, explained/0.05)
	if kb == e.lags-1 {
		conf = 0
	}
	d := time.Duration((float64(kb) + off) * float64(e.opt.Step))
	return best{delay: max(d, 0), conf: math.Max(conf, 0), explained: explained, pairs: int(pairs[kb])}, true
}

// Estimate returns the delay read from the samples added so far. It wraps
// ErrNoDelaySignal when there is nothing to read it from.
func (e *DelayEstimator) Estimate() (DelayEstimate, error) {
	out := DelayEstimate{Commanded: e.cmd == 1}
	p, ok := e.bestOf(&e.all, nil)
	if !ok {
		return out, fmt.Errorf("%w (%d samples): no lag within %v makes the readings more consistent per cell than another",
			ErrNoDelaySignal, e.count, e.opt.MaxDelay)
	}
	out.Overall, out.Confidence, out.Explained, out.Pairs = p.delay, p.conf, p.explained, p.pairs
	out.Fixed = p.delay
	var fit []BandDelay
	for i := range e.bands {
		b := &e.bands[i]
		bd := BandDelay{}
		if !math.IsInf(b.lo, 0) {
			bd.MinRPM = b.lo
		}
		if !math.IsInf(b.hi, 0) {
			bd.MaxRPM = b.hi
		}
		if b.rpmN > 0 {
			bd.MeanRPM = b.rpmSum / b.rpmN
		}
		bp, ok := p, true
		if len(e.bands) > 1 {
			bp, ok = e.bestOf(b, &e.all)
		}
		if ok {
			bd.Delay, bd.Confidence, bd.Explained, bd.Pairs = bp.delay, bp.conf, bp.explained, bp.pairs
			if bd.Confidence >= e.opt.MinBandConfidence && bd.MeanRPM > 0 {
				fit = append(fit, bd)
			}
		}
		out.Bands = append(out.Bands, bd)
	}
	if e.opt.FitRPM && len(fit) >= 2 {
		if a, b, ok := fitDelay(fit); ok {
			out.Fixed = time.Duration(a * float64(time.Second))
			out.PerRPM = b
		}
	}
	out.Delay = Delay{Fixed: out.Fixed, PerRPM: out.PerRPM}
	return out, nil
}

// fitDelay fits d = a + b/rpm by weighted least squares (weight confidence ×
// pairs) and reports whether the fit is physical.
func fitDelay(bands []BandDelay) (a, b float64, ok bool) {
	var sw, su, sd, suu, sud float64
	for _, bd := range bands {
		w := bd.Confidence * float64(bd.Pairs)
		u := 1 / bd.MeanRPM
		d := bd.Delay.Seconds()
		sw += w
		su += w * u
		sd += w * d
		suu += w * u * u
		sud += w * u * d
	}
	den := sw*suu - su*su
	if sw == 0 || math.Abs(den) <= 1e-12*sw*suu {
		return 0, 0, false
	}
	b = (sw*sud - su*sd) / den
	a = (sd - b*su) / sw
	return a, b, a >= 0 && b >= 0
}

// EstimateDelay reads src to its end and estimates its wideband transport
// delay.
func EstimateDelay(ctx context.Context, src dyno.Source, opt EstimateOptions) (DelayEstimate, error) {
	e, err := NewDelayEstimator(opt)
	if err != nil {
		return DelayEstimate{}, err
	}
	s := dyno.NewSample()
	for {
		err := src.Next(ctx, &s)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return DelayEstimate{}, err
		}
		if err := e.Add(&s); err != nil {
			return DelayEstimate{}, err
		}
	}
	return e.Estimate()
}
