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
// nothing the delay can be read from: no wideband readings, no steady
// engine states, or no lag within MaxDelay that makes the readings more
// consistent than another.
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
	DefaultClosedTPS    = 2.0
	DefaultSettle       = 750 * time.Millisecond
)

// DefaultDelayBands returns the RPM band edges a DelayEstimator reports
// separately when EstimateOptions.BandEdges is nil: below 2500, 2500–3500,
// 3500–4500 and from 4500 rev/min.
func DefaultDelayBands() []float64 { return []float64{2500, 3500, 4500} }

// Bounds of the estimator's memory: cell slots (a cell of the speed × load
// plane for one cylinder) and lags it tracks.
const (
	maxSlots = 4096
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
	// Fuel converts lambda channels when the AFR channel is missing and
	// bounds a plausible reading; the zero value means Gasoline.
	Fuel Fuel
	// FitRPM fits Delay as Fixed + PerRPM/rpm to the bands that are
	// confident (at least MinBandConfidence) when the data supports it:
	// at least three such bands, a physical fit (both terms non-negative)
	// that explains at least half of the bands' spread around their mean.
	// The fitted delay is capped (Delay.Max) at its value at the slowest
	// band's mean speed, so that 1/rpm does not extrapolate below the data.
	// Otherwise, and by default, Delay is the single overall estimate as
	// Fixed.
	FitRPM bool
	// MinBandConfidence is the confidence a band needs to enter the fit;
	// zero means 0.5.
	MinBandConfidence float64
	// ClosedTPS is the throttle opening (percent) at or below which the
	// engine is taken to be closed-throttle: idling, or decelerating with
	// fuel cut. Zero means DefaultClosedTPS; negative means never.
	ClosedTPS float64
	// Settle is how long before and after a closed throttle the engine
	// states are left out as well, so that the sensor's response to fuel
	// cut has passed; a quarter of it is left out around a throttle or
	// pressure transient. Zero means DefaultSettle, negative none.
	Settle time.Duration
	// KeepTransients compares the readings of every engine state,
	// transients and closed throttle included (see DelayEstimator).
	KeepTransients bool
}

// DelayEstimate is what a DelayEstimator read from a log.
type DelayEstimate struct {
	// Delay is the delay to undo, ready for Align.
	Delay Delay `json:"-"`
	// Overall is the delay estimated from the whole log.
	Overall time.Duration `json:"overall_ns"`
	// Fixed, PerRPM and Max are Delay's terms (PerRPM in
	// seconds·rev/min); Max, the cap of an RPM fit, is zero otherwise.
	Fixed  time.Duration `json:"fixed_ns"`
	PerRPM float64       `json:"per_rpm"`
	Max    time.Duration `json:"max_ns,omitempty"`
	// Confidence in [0, 1] grades how clearly the log points at the
	// delay. It is the product of four grades, each at most 1: how far the
	// best lag stands out from any other minimum of the criterion that a
	// ridge separates from it (1 − that minimum's gain / the best gain,
	// gains measured from the median lag); the share of the within-cell
	// variance the best lag removes compared with the median lag (full
	// from 10 %); the evidence (full from 2000 compared pairs); and
	// whether the minimum is enclosed, the criterion rising on both sides
	// of it by 10 % within [0, MaxDelay] (so a best lag of 0 or MaxDelay,
	// beyond which the true one may lie, has confidence 0). It is a
	// heuristic grade, not a probability.
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

// BandDelay is the delay estimated from the cells of one RPM band.
type BandDelay struct {
	// MinRPM is the band's lower edge, 0 for the first band; MaxRPM its
	// upper edge, 0 (absent in JSON) for the last band, which has none.
	MinRPM float64 `json:"min_rpm"`
	MaxRPM float64 `json:"max_rpm,omitempty"`
	// MeanRPM is the mean engine speed of the band's steady states, 0
	// without any.
	MeanRPM    float64       `json:"mean_rpm"`
	Delay      time.Duration `json:"delay_ns"`
	Confidence float64       `json:"confidence"`
	Explained  float64       `json:"explained"`
	Pairs      int           `json:"pairs"`
}

// moments are the count, sum and sum of squares of one slot's readings at
// one lag.
type moments struct{ n, sum, sq float64 }

func (m *moments) add(r float64) {
	m.n++
	m.sum += r
	m.sq += r * r
}

// DelayEstimator estimates the wideband delay from a log. The idea: a
// wideband reading measures the exhaust of the engine state one delay
// earlier, and in a given state (a cell of engine speed × manifold
// pressure) a cylinder makes the same mixture every time. So the delay is
// the lag at which the readings, grouped by the cell the engine was in that
// lag earlier, are most consistent: the lag that minimises the geometric
// mean of the cells' variances of log AFR (the likelihood with a variance
// per cell). Each cylinder's readings are grouped apart, since two
// cylinders' mixtures differ in a cell by their own VE errors whatever the
// lag. When the log has the ECU's commanded AFR (and IgnoreCommanded is
// false), log(measured / commanded that lag earlier) is grouped instead,
// which removes what the ECU changed on purpose.
//
// The information is in cells the log passes through more than once in
// different ways: sweeps up and down the same row, fast and slow ramps,
// a hold and a sweep through it. A log that visits each cell once, the same
// way, says nothing about the delay (ErrNoDelaySignal or a low Confidence).
//
// Only steady engine states are compared, as far as the samples tell:
// unless KeepTransients is set, a state is left out while the throttle is
// closed (at most ClosedTPS: idle, or a decel whose fuel cut the wideband
// reads as air) and for Settle before and after, and while the throttle or
// the manifold pressure moves fast (their means over 100 ms differ by more
// than 5 points + 10 % of throttle or 1 kPa + 5 % of pressure) and for a
// quarter of Settle before and after. Readings are left out when they are
// not plausible for the fuel (see Fuel.MeasuredAFR) or, with the commanded
// AFR, more than 35 % away from it. What is left are ramps and holds,
// through which a first-order sensor lag acts as a further delay of its
// time constant: the estimate is the transport delay plus the sensor's time
// constant (a little less where the mixture changes fast, as on fast ramps
// through a rough VE table), the shift that lines up the readings of steady
// running, which is what Align should undo for an analysis of steady
// running. The edges of
// transients, which a lag delays by less, and their enrichment and fuel
// cut, which are not the steady mixture of a cell, do not pull the
// estimate; a log made only of steps between holds says less than it did
// with them (KeepTransients uses them).
//
// The log is resampled to Step. The cells are also grouped per RPM band,
// so a delay that shrinks with gas velocity can show; the band estimates
// are rougher than the overall one. Memory grows with the cells the log
// visits, not with its length: 24 bytes × lags per cell and cylinder,
// about 1.8 KB with the defaults (76 lags), allocated 64 at a time, at most
// 4096 of them; a dyno session of two cylinders fills about a thousand.
// Besides, a ring of lags + Settle/Step resampled points (18 KB).
type DelayEstimator struct {
	opt   EstimateOptions
	fuel  Fuel
	lags  int
	edges []float64
	cmd   int // -1 undecided, 0 no, 1 yes

	// accumulators: the moments of each slot per lag, in chunks of
	// chunkSlots slots (see moments); slotBand is the RPM band of each
	// slot's cell
	chunks   [][]moments
	slots    map[int32]int32 // cell·MaxCylinders + cylinder → slot
	slotBand []uint8
	rpmSum   []float64 // per band, of its steady states
	rpmN     []float64

	// resampler
	have     bool
	prev     point
	nextGrid time.Duration
	lastT    time.Duration
	count    int

	// steadiness of the resampled engine state
	win        int       // points in one window of the rate test
	hist       []float64 // the last 2·win MAP and TPS values, interleaved
	histN      int       // points in hist since the last restart
	steadyFrom time.Duration
	settle     time.Duration
	guard      int // points a reading waits for its state's future to be known

	// a ring of the past resampled points, the newest at head: a reading
	// is compared guard points after it was logged, with the states
	// before it
	head     int
	ring     []point
	ringSlot []int32 // per point and cylinder, the slot of its state's cell, -1 for none
	pending  int     // points in the ring since the last start
	cyl      int
}

type point struct {
	t              time.Duration
	rpm, map_, tps float64
	y              [dyno.MaxCylinders]float64 // log measured AFR
	cmd            [dyno.MaxCylinders]float64 // log commanded AFR
}

// Thresholds of the steadiness test and the reading filter.
const (
	steadyWindow   = 100 * time.Millisecond
	mapRateAbs     = 1.0  // kPa per window
	mapRateRel     = 0.05 // of the pressure, per window
	tpsRateAbs     = 5.0  // points per window
	tpsRateRel     = 0.10 // of the opening, per window
	maxCommandedLn = 0.3  // ln(1.35): a reading farther from the commanded AFR is not the engine's mixture
)

// Kinds of unsteady state.
const (
	steadyState = iota
	transientState
	closedState // closed throttle, or no history to judge by
)

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
	if opt.ClosedTPS == 0 {
		opt.ClosedTPS = DefaultClosedTPS
	}
	if opt.Settle == 0 {
		opt.Settle = DefaultSettle
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
	case !(opt.ClosedTPS <= 50):
		return nil, fmt.Errorf("%w: ClosedTPS %v above 50 %%", ErrEstimate, opt.ClosedTPS)
	case opt.Settle > 10*time.Second || opt.Settle/opt.Step >= maxLags:
		return nil, fmt.Errorf("%w: Settle %v longer than 10 s or than %d steps of %v", ErrEstimate, opt.Settle, maxLags-1, opt.Step)
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
		fuel = Gasoline()
	} else if err := fuel.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEstimate, err)
	}
	e := &DelayEstimator{
		opt:    opt,
		fuel:   fuel,
		lags:   int(opt.MaxDelay/opt.Step) + 1,
		edges:  slices.Clone(edges),
		cmd:    -1,
		slots:  map[int32]int32{},
		rpmSum: make([]float64, len(edges)+1),
		rpmN:   make([]float64, len(edges)+1),
		win:    max(1, int((steadyWindow+opt.Step/2)/opt.Step)),
		settle: max(opt.Settle, 0),
	}
	if opt.IgnoreCommanded {
		e.cmd = 0
	}
	e.hist = make([]float64, 4*e.win)
	if !opt.KeepTransients {
		e.guard = int((e.settle + opt.Step - 1) / opt.Step)
	}
	e.ring = make([]point, e.lags+e.guard)
	e.ringSlot = make([]int32, (e.lags+e.guard)*dyno.MaxCylinders)
	e.resetRings()
	return e, nil
}

func (e *DelayEstimator) resetRings() {
	for k := range e.ringSlot {
		e.ringSlot[k] = -1
	}
	e.histN = 0
	e.pending = 0
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
	cur := point{t: s.Time, rpm: nanIfMissing(s.RPM), map_: nanIfMissing(s.MAP), tps: nanIfMissing(s.TPS)}
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
				// A reading this far from what the ECU commanded is not
				// the mixture of a cell: fuel cut, a misfire, a fault.
				if math.Abs(cur.y[c]-cur.cmd[c]) > maxCommandedLn {
					cur.y[c] = math.NaN()
				}
			}
		}
	}
	if !e.have || s.Time-e.prev.t > e.opt.MaxGap {
		// Start (or restart after a gap) on this sample.
		if e.have {
			e.flush()
		}
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
		g := point{t: e.nextGrid, rpm: lerp(e.prev.rpm, cur.rpm, f), map_: lerp(e.prev.map_, cur.map_, f),
			tps: lerp(e.prev.tps, cur.tps, f)}
		for c := range e.cyl {
			g.y[c] = lerp(e.prev.y[c], cur.y[c], f)
			g.cmd[c] = lerp(e.prev.cmd[c], cur.cmd[c], f)
		}
		e.push(&g)
	}
	e.prev = cur
	return nil
}

// nanIfMissing maps dyno.Missing to NaN so arithmetic propagates it.
func nanIfMissing(v float64) float64 {
	if !dyno.Has(v) {
		return math.NaN()
	}
	return v
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

// unsteady classifies the resampled point p: steadyState, transientState
// (throttle or pressure moving fast) or closedState (closed throttle).
// Right after a start or a gap the rate test has no history, and p counts
// as closedState.
func (e *DelayEstimator) unsteady(p *point) int {
	w := e.win
	n := 2 * w
	k := e.histN % n
	e.hist[2*k], e.hist[2*k+1] = p.map_, p.tps
	e.histN++
	if e.histN < n {
		return closedState
	}
	if e.opt.ClosedTPS >= 0 && p.tps <= e.opt.ClosedTPS { // false for NaN
		return closedState
	}
	// Means of the newer and the older window.
	var mNew, mOld, tNew, tOld float64
	for j := range n {
		idx := (e.histN - 1 - j) % n
		mp, tp := e.hist[2*idx], e.hist[2*idx+1]
		if j < w {
			mNew += mp
			tNew += tp
		} else {
			mOld += mp
			tOld += tp
		}
	}
	fw := float64(w)
	mNew, mOld, tNew, tOld = mNew/fw, mOld/fw, tNew/fw, tOld/fw
	// False for NaN: a missing channel tells nothing.
	if math.Abs(mNew-mOld) > mapRateAbs+mapRateRel*math.Abs(mOld) ||
		math.Abs(tNew-tOld) > tpsRateAbs+tpsRateRel*math.Abs(tOld) {
		return transientState
	}
	return steadyState
}

// push adds one resampled point: its state enters the ring (left out when
// it is unsteady or near an unsteady state on either side), and the
// reading logged guard points earlier, whose state's future is now known,
// is compared with the states before it.
func (e *DelayEstimator) push(p *point) {
	size := len(e.ring)
	e.head = (e.head + 1) % size
	e.ring[e.head] = *p
	e.pending = min(e.pending+1, size)
	steady := true
	if !e.opt.KeepTransients {
		steady = false
		switch u := e.unsteady(p); {
		case u != steadyState:
			around := e.settle
			if u == transientState {
				around /= 4
			}
			e.steadyFrom = max(e.steadyFrom, p.t+around)
			e.leaveOut(p.t - around)
		case p.t >= e.steadyFrom:
			steady = true
		}
	}
	slots := e.ringSlot[e.head*dyno.MaxCylinders : (e.head+1)*dyno.MaxCylinders]
	for c := range slots {
		slots[c] = -1
	}
	if steady {
		cell := e.cell(p.rpm, p.map_)
		for c := range e.cyl {
			slots[c] = e.slot(cell, c)
		}
		if cell >= 0 {
			b := e.band(p.rpm)
			e.rpmSum[b] += p.rpm
			e.rpmN[b]++
		}
	}
	if e.pending > e.guard {
		e.compare((e.head-e.guard+size)%size, min(e.lags, e.pending-e.guard))
	}
}

// leaveOut leaves out the states in the ring from time from on; they are
// at most guard points old, so no reading has been compared with them.
func (e *DelayEstimator) leaveOut(from time.Duration) {
	size := len(e.ring)
	for j := 1; j <= e.guard && j < e.pending; j++ {
		idx := (e.head - j + size) % size
		if e.ring[idx].t < from {
			break
		}
		for c := range dyno.MaxCylinders {
			e.ringSlot[idx*dyno.MaxCylinders+c] = -1
		}
	}
}

// flush compares the readings still waiting when the log stops for a gap:
// the gap is unsteady, so the states within Settle before it are left out.
func (e *DelayEstimator) flush() {
	if e.guard == 0 {
		return
	}
	size := len(e.ring)
	e.leaveOut(e.ring[e.head].t - e.settle)
	for j := min(e.guard, e.pending) - 1; j >= 0; j-- {
		at := (e.head - j + size) % size
		e.compare(at, min(e.lags, e.pending-j))
	}
}

// compare accumulates the reading of ring point at against the states
// before it, one per lag up to lags.
func (e *DelayEstimator) compare(at, lags int) {
	size := len(e.ring)
	p := &e.ring[at]
	for c := range e.cyl {
		y := p.y[c]
		if math.IsNaN(y) {
			continue
		}
		for k := range lags {
			idx := at - k
			if idx < 0 {
				idx += size
			}
			slot := e.ringSlot[idx*dyno.MaxCylinders+c]
			if slot < 0 {
				continue
			}
			if r := y - e.ring[idx].cmd[c]; !math.IsNaN(r) {
				sl := uint32(slot)
				e.chunks[sl/chunkSlots][int(sl%chunkSlots)*e.lags+k].add(r)
			}
		}
	}
}

// chunkSlots is the number of slots allocated at once: growing by chunks
// copies nothing and wastes at most one chunk.
const chunkSlots = 64

// moments returns the per-lag moments of slot sl.
func (e *DelayEstimator) moments(sl int32) []moments {
	c := e.chunks[sl/chunkSlots]
	i := int(sl%chunkSlots) * e.lags
	return c[i : i+e.lags : i+e.lags]
}

// slot returns the slot of a cell's readings of cylinder cyl, allocating
// it on first use; -1 for no cell or when maxSlots are in use.
func (e *DelayEstimator) slot(cell int32, cyl int) int32 {
	if cell < 0 {
		return -1
	}
	key := cell*dyno.MaxCylinders + int32(cyl)
	if sl, ok := e.slots[key]; ok {
		return sl
	}
	if len(e.slots) >= maxSlots {
		return -1
	}
	sl := int32(len(e.slots))
	e.slots[key] = sl
	if int(sl)%chunkSlots == 0 {
		e.chunks = append(e.chunks, make([]moments, chunkSlots*e.lags))
	}
	nj := int32(math.Ceil(400 / e.opt.CellMAP))
	e.slotBand = append(e.slotBand, uint8(e.band((float64(cell/nj)+0.5)*e.opt.CellRPM)))
	return sl
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

// Full marks of the confidence grades: the share of the within-cell
// variance the best lag explains, the pairs behind it, and the rise of the
// criterion on either side of it, relative to its minimum.
const (
	minExplained = 0.1
	minPairs     = 2000
	minEnclosed  = 0.1
)

// curves returns, per lag, the geometric mean of the cells' variances
// (NaN where fewer than 20 readings are in cells of at least two), and the
// readings behind it: for all cells (index 0) and for each band's (index
// b+1).
func (e *DelayEstimator) curves() (v, pairs [][]float64) {
	nb := len(e.edges) + 1
	logs := make([][]float64, nb+1)
	v = make([][]float64, nb+1)
	pairs = make([][]float64, nb+1)
	for i := range logs {
		logs[i] = make([]float64, e.lags)
		v[i] = make([]float64, e.lags)
		pairs[i] = make([]float64, e.lags)
	}
	for s, b := range e.slotBand {
		ms := e.moments(int32(s))
		for k := range ms {
			// The geometric mean of the cells' variances, weighted by their
			// readings: the Gaussian likelihood with a variance per cell. A
			// cell whose readings scatter whatever the lag (a sharp feature
			// of the VE inside it) then weighs by its relative change, not
			// by its size.
			c := &ms[k]
			if c.n < 2 {
				continue
			}
			vc := max(c.sq-c.sum*c.sum/c.n, 0) / (c.n - 1)
			l := c.n * math.Log(vc+varianceFloor)
			logs[0][k] += l
			pairs[0][k] += c.n
			logs[b+1][k] += l
			pairs[b+1][k] += c.n
		}
	}
	for i := range v {
		for k := range v[i] {
			v[i][k] = math.NaN()
			if pairs[i][k] >= 20 {
				v[i][k] = math.Exp(logs[i][k] / pairs[i][k])
			}
		}
	}
	return v, pairs
}

// best is the best lag of a curve.
type best struct {
	delay     time.Duration
	conf      float64
	explained float64
	pairs     int
}

// bestOf finds the lag at which the criterion v is smallest and grades it.
func (e *DelayEstimator) bestOf(v, pairs []float64) (best, bool) {
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
	if kb > 0 && kb < len(v)-1 && !math.IsNaN(v[kb-1]) && !math.IsNaN(v[kb+1]) {
		a, b, c := v[kb-1], v[kb], v[kb+1]
		if d := a - 2*b + c; d > 0 {
			off = math.Max(-0.5, math.Min(0.5, 0.5*(a-c)/d))
		}
	}
	// A competitor is another local minimum that a ridge of at least a
	// tenth of the gain separates from the best one (a gap in the curve
	// separates too); the wiggles of a broad valley are not.
	second := 0.0
	for m, x := range v {
		if m == kb || math.IsNaN(x) ||
			(m > 0 && v[m-1] < x) || (m < len(v)-1 && v[m+1] < x) { // false for NaN
			continue
		}
		ridge, sep := x, false
		for j := min(m, kb); j <= max(m, kb); j++ {
			if math.IsNaN(v[j]) {
				sep = true
				break
			}
			ridge = max(ridge, v[j])
		}
		if sep || ridge-x >= gain/10 {
			second = max(second, med-x)
		}
	}
	// The minimum must be enclosed: the criterion rises on both sides of
	// it within the lags searched, or the true delay may lie beyond.
	var left, right float64
	for k, x := range v {
		switch {
		case math.IsNaN(x):
		case k < kb:
			left = max(left, x-v[kb])
		case k > kb:
			right = max(right, x-v[kb])
		}
	}
	explained := gain / med
	conf := (1 - second/gain) *
		math.Min(1, explained/minExplained) *
		math.Min(1, pairs[kb]/minPairs) *
		math.Min(1, min(left, right)/(minEnclosed*v[kb]))
	d := time.Duration((float64(kb) + off) * float64(e.opt.Step))
	return best{delay: max(d, 0), conf: math.Max(conf, 0), explained: explained, pairs: int(pairs[kb])}, true
}

// Estimate returns the delay read from the samples added so far (the
// readings of the last Settle are still waiting for their states' future
// and are not in it). It wraps ErrNoDelaySignal when there is nothing to
// read the delay from.
func (e *DelayEstimator) Estimate() (DelayEstimate, error) {
	out := DelayEstimate{Commanded: e.cmd == 1}
	v, pairs := e.curves()
	p, ok := e.bestOf(v[0], pairs[0])
	if !ok {
		return out, fmt.Errorf("%w (%d samples): no lag within %v makes the readings of steady states more consistent per cell than another",
			ErrNoDelaySignal, e.count, e.opt.MaxDelay)
	}
	out.Overall, out.Confidence, out.Explained, out.Pairs = p.delay, p.conf, p.explained, p.pairs
	out.Fixed = p.delay
	var fit []BandDelay
	lo := math.Inf(-1)
	for b, hi := range append(slices.Clone(e.edges), math.Inf(1)) {
		bd := BandDelay{}
		if !math.IsInf(lo, 0) {
			bd.MinRPM = lo
		}
		if !math.IsInf(hi, 0) {
			bd.MaxRPM = hi
		}
		lo = hi
		if e.rpmN[b] > 0 {
			bd.MeanRPM = e.rpmSum[b] / e.rpmN[b]
		}
		if bp, ok := e.bestOf(v[b+1], pairs[b+1]); ok {
			bd.Delay, bd.Confidence, bd.Explained, bd.Pairs = bp.delay, bp.conf, bp.explained, bp.pairs
			if bd.Confidence >= e.opt.MinBandConfidence && bd.MeanRPM > 0 {
				fit = append(fit, bd)
			}
		}
		out.Bands = append(out.Bands, bd)
	}
	out.Delay = Delay{Fixed: out.Fixed}
	if e.opt.FitRPM {
		if a, b, ok := fitDelay(fit); ok {
			out.Fixed = time.Duration(a * float64(time.Second))
			out.PerRPM = b
			out.Delay = Delay{Fixed: out.Fixed, PerRPM: b}
			// No growth below the slowest band the fit saw: 1/rpm
			// extrapolates steeply.
			slowest := fit[0].MeanRPM
			for _, bd := range fit {
				slowest = min(slowest, bd.MeanRPM)
			}
			out.Delay.Max = out.Delay.At(slowest)
			out.Max = out.Delay.Max
		}
	}
	return out, nil
}

// fitDelay fits d = a + b/rpm to bands by weighted least squares (weight
// confidence × pairs) and reports whether the data supports the fit: at
// least three bands, both terms non-negative, and the fit explaining at
// least half of the bands' spread around their weighted mean (two bands
// always fit, and noise fits a slope).
func fitDelay(bands []BandDelay) (a, b float64, ok bool) {
	if len(bands) < 3 {
		return 0, 0, false
	}
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
	if !(a >= 0 && b >= 0) {
		return 0, 0, false
	}
	mean := sd / sw
	var res, tot float64
	for _, bd := range bands {
		w := bd.Confidence * float64(bd.Pairs)
		d := bd.Delay.Seconds()
		r := d - a - b/bd.MeanRPM
		res += w * r * r
		tot += w * (d - mean) * (d - mean)
	}
	return a, b, res <= tot/2
}

// EstimateDelay reads src to its end and estimates its wideband delay.
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
