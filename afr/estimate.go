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
	DefaultCellRPM      = 250.0
	DefaultCellMAP      = 5.0
)

// DefaultDelayBands are the RPM band edges a DelayEstimator reports
// separately when EstimateOptions.BandEdges is nil: below 2500, 2500–3500,
// 3500–4500 and from 4500 rev/min.
var DefaultDelayBands = []float64{2500, 3500, 4500}

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
	// lag)
	// and how much of the readings' spread it explains (full from 5 %);
	// 0 when the best delay is MaxDelay, where the true one may lie beyond.
	Confidence float64 `json:"confidence"`
	// Explained is the share of the within-cell variance of the readings
	// that the best delay removes compared with the median candidate.
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
	MinRPM float64 `json:"min_rpm"` // -Inf for the first band
	MaxRPM float64 `json:"max_rpm"` // +Inf for the last band
	// MeanRPM is the mean engine speed of the band's readings.
	MeanRPM    float64       `json:"mean_rpm"`
	Delay      time.Duration `json:"delay_ns"`
	Confidence float64       `json:"confidence"`
	Explained  float64       `json:"explained"`
	Pairs      int           `json:"pairs"`
}

// bandAcc accumulates, per lag and cell, the readings' count, sum and sum
// of squares; cells are allocated when first used.
type bandAcc struct {
	lo, hi        float64
	rpmSum, rpmN  float64
	slots         map[int32]int
	n, sum, sumsq [][]float64 // [lag][slot]
}

// DelayEstimator estimates the wideband transport delay from a log. The
// idea: a wideband reading measures the exhaust of the engine state one
// transport delay earlier, and in a given state (a cell of engine speed ×
// manifold pressure) the engine makes the same mixture every time. So the
// delay is the lag at which the readings, grouped by the cell the engine was
// in that lag earlier, are most consistent: the lag that minimises the
// within-cell variance of log AFR. When the log has the ECU's commanded AFR
// (and IgnoreCommanded is false), log(measured / commanded lag earlier) is
// grouped instead, which removes what the ECU did on purpose.
//
// Every change of state carries information: load steps, throttle tip-ins,
// sweeps and pulls across cells; steady holds carry none and do no harm.
// The log is resampled to Step. Readings are also accumulated per RPM band
// (by the engine speed when they were logged), so a delay that shrinks with
// gas velocity shows. Memory is bounded by MaxDelay/Step, the cells and the
// bands, whatever the log's length.
type DelayEstimator struct {
	opt   EstimateOptions
	fuel  Fuel
	lags  int
	edges []float64
	bands []bandAcc
	cmd   int // -1 undecided, 0 no, 1 yes

	// resampler
	have     bool
	prev     point
	nextGrid time.Duration
	lastT    time.Duration
	count    int

	// rings of the engine state at past points
	head     int
	ringCell []int32
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
		edges = DefaultDelayBands
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
		e.bands = append(e.bands, bandAcc{lo: lo, hi: hi, slots: map[int32]int{},
			n: make([][]float64, e.lags), sum: make([][]float64, e.lags), sumsq: make([][]float64, e.lags)})
		lo = hi
	}
	e.ringCell = make([]int32, e.lags)
	for c := range e.ringCmd {
		e.ringCmd[c] = make([]float64, e.lags)
	}
	e.resetRings()
	return e, nil
}

func (e *DelayEstimator) resetRings() {
	for k := range e.ringCell {
		e.ringCell[k] = -1
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
	if !(rpm >= 0) || !(mapKPa >= 0) {
		return -1
	}
	i := int(rpm / e.opt.CellRPM)
	j := int(mapKPa / e.opt.CellMAP)
	nj := int(math.Ceil(400 / e.opt.CellMAP)) // MAP up to 400 kPa
	if j >= nj || i >= 100000/int(e.opt.CellRPM) {
		return -1
	}
	return int32(i*nj + j)
}

// push adds one resampled point.
func (e *DelayEstimator) push(p *point) {
	e.head = (e.head + 1) % e.lags
	e.ringCell[e.head] = e.cell(p.rpm, p.map_)
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
		for k := range e.lags {
			idx := (e.head - k + e.lags) % e.lags
			cell := e.ringCell[idx]
			r := y - e.ringCmd[c][idx]
			if cell < 0 || math.IsNaN(r) {
				continue
			}
			b.add(k, cell, r)
		}
	}
}

// add accumulates r into lag k's cell. A band tracks at most maxCells
// cells; readings of further cells are ignored.
func (b *bandAcc) add(k int, cell int32, r float64) {
	slot, ok := b.slots[cell]
	if !ok {
		if len(b.slots) >= maxCells {
			return
		}
		slot = len(b.slots)
		b.slots[cell] = slot
		for l := range b.n {
			b.n[l] = append(b.n[l], 0)
			b.sum[l] = append(b.sum[l], 0)
			b.sumsq[l] = append(b.sumsq[l], 0)
		}
	}
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

// best is the best lag of a set of bands.
type best struct {
	delay     time.Duration
	conf      float64
	explained float64
	pairs     int
}

// bestOf finds the lag whose within-cell variance is smallest over bands.
func (e *DelayEstimator) bestOf(bands []*bandAcc) (best, bool) {
	v := make([]float64, e.lags)
	pairs := make([]float64, e.lags)
	for k := range e.lags {
		var sse, n float64
		for _, b := range bands {
			for i, cn := range b.n[k] {
				if cn == 0 {
					continue
				}
				sm := b.sum[k][i]
				sse += b.sumsq[k][i] - sm*sm/cn
				n += cn
			}
		}
		pairs[k] = n
		v[k] = math.NaN()
		if n >= 20 {
			v[k] = max(sse, 0) / n
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
	// A within-cell spread under 1e-5 (relative AFR) is rounding, not data.
	if !(med > 1e-10) || !(gain > 1e-3*med) {
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
	all := make([]*bandAcc, len(e.bands))
	for i := range e.bands {
		all[i] = &e.bands[i]
	}
	p, ok := e.bestOf(all)
	if !ok {
		return out, fmt.Errorf("%w (%d samples): no lag within %v makes the readings more consistent per cell than another",
			ErrNoDelaySignal, e.count, e.opt.MaxDelay)
	}
	out.Overall, out.Confidence, out.Explained, out.Pairs = p.delay, p.conf, p.explained, p.pairs
	out.Fixed = p.delay
	var fit []BandDelay
	for i := range e.bands {
		b := &e.bands[i]
		bd := BandDelay{MinRPM: b.lo, MaxRPM: b.hi, MeanRPM: math.NaN()}
		if b.rpmN > 0 {
			bd.MeanRPM = b.rpmSum / b.rpmN
		}
		if bp, ok := e.bestOf([]*bandAcc{b}); ok {
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
