package ve

import (
	"fmt"
	"math"
	"time"

	"github.com/dynoai/dynoai/afr"
	"github.com/dynoai/dynoai/dyno"
)

// Version is the library version recorded in manifests and result documents.
const Version = "0.2.0"

// Attribution says how a sample is shared among grid nodes.
type Attribution int

const (
	// Bilinear shares each sample among the four nodes around it with
	// bilinear weights, the way the ECU interpolates its table. The
	// default.
	Bilinear Attribution = iota
	// NearestCell gives each sample to the nearest node; ties go to the
	// lower bin (the predecessor's rule). It implies CellMean.
	NearestCell
)

func (a Attribution) String() string {
	switch a {
	case Bilinear:
		return "bilinear"
	case NearestCell:
		return "nearest"
	}
	return fmt.Sprintf("Attribution(%d)", int(a))
}

// Estimator says how node corrections are computed from the accepted
// samples.
type Estimator int

const (
	// NodeFit fits the node values (what the VE table stores) to the
	// samples by weighted least squares on their bilinear weights, with a
	// smoothness prior between neighbouring nodes whose weight the data
	// choose: the correction that, interpolated the way the ECU
	// interpolates, best explains every sample. A node is corrected only
	// where its standard error is small (Options.MaxStdErr). The default.
	NodeFit Estimator = iota
	// CellMean takes each node's weighted mean of measured/target over the
	// samples attributed to it, the predecessor's method. Near a node whose
	// neighbours need different corrections it blurs them.
	CellMean
)

func (e Estimator) String() string {
	switch e {
	case NodeFit:
		return "node_fit"
	case CellMean:
		return "cell_mean"
	}
	return fmt.Sprintf("Estimator(%d)", int(e))
}

// Weighting says how much a sample counts.
type Weighting int

const (
	// WeightEqual counts every sample once. The default.
	WeightEqual Weighting = iota
	// WeightTorque weights a sample by its torque (ft·lbf, negatives as 0).
	WeightTorque
	// WeightPower weights a sample by its power (HP). A log without a power
	// channel is an error, not a crash.
	WeightPower
)

func (w Weighting) String() string {
	switch w {
	case WeightEqual:
		return "equal"
	case WeightTorque:
		return "torque"
	case WeightPower:
		return "power"
	}
	return fmt.Sprintf("Weighting(%d)", int(w))
}

// LoadAxis says what the grid's second axis (a Table's MAP axis) measures.
type LoadAxis int

const (
	// LoadAuto uses MAP when the log has a live one, else the ECU's own
	// load channel, else the throttle (alpha-N). The default; the result
	// says which and why.
	LoadAuto LoadAxis = iota
	// LoadMAP indexes by manifold absolute pressure, kPa (speed density).
	LoadMAP
	// LoadTPS indexes by throttle position, percent (alpha-N).
	LoadTPS
	// LoadECU indexes by the ECU's load channel (dyno.Sample.Load), in the
	// log's unit.
	LoadECU
)

func (l LoadAxis) String() string {
	switch l {
	case LoadAuto:
		return "auto"
	case LoadMAP:
		return "map"
	case LoadTPS:
		return "tps"
	case LoadECU:
		return "ecu_load"
	}
	return fmt.Sprintf("LoadAxis(%d)", int(l))
}

// ParseLoadAxis reads "auto", "map", "tps" or "load" (or "ecu_load").
func ParseLoadAxis(s string) (LoadAxis, error) {
	switch s {
	case "", "auto":
		return LoadAuto, nil
	case "map", "kpa":
		return LoadMAP, nil
	case "tps", "alpha-n", "alphan", "throttle":
		return LoadTPS, nil
	case "load", "ecu", "ecu_load":
		return LoadECU, nil
	}
	return LoadAuto, fmt.Errorf("ve: unknown load axis %q (want auto, map, tps or load)", s)
}

// Grid is the RPM x load grid an analysis works on: the nodes of the VE
// table. Axes are strictly increasing; MAP holds the load axis (kPa for
// MAP, percent for TPS).
type Grid struct {
	RPM []float64
	MAP []float64
}

// DefaultGrid returns the library's one default grid: RPM 1500..6500 by
// 500 and MAP 20..100 by 10 kPa, the shape of a naturally aspirated ECU's
// VE table. Unless Options.Grid is set, an analysis extends it at the same
// steps to where the data is (boost, high RPM, idle) without moving its
// nodes. (The predecessor's 35..95 kPa by 15 lives on in DynoAI3Compat.)
func DefaultGrid() Grid {
	return Grid{
		RPM: []float64{1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500, 6000, 6500},
		MAP: []float64{20, 30, 40, 50, 60, 70, 80, 90, 100},
	}
}

// DefaultThrottleGrid is the default grid of an alpha-N analysis: RPM as
// DefaultGrid, throttle 0..100 % finer where the engine's breathing
// changes fastest.
func DefaultThrottleGrid() Grid {
	g := DefaultGrid()
	g.MAP = []float64{0, 2.5, 5, 7.5, 10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90, 100}
	return g
}

// GridOf returns t's axes as a grid: the grid of the ECU table a tuner
// will paste the corrections into.
func GridOf(t *Table) Grid {
	return Grid{RPM: append([]float64(nil), t.RPM...), MAP: append([]float64(nil), t.MAP...)}
}

// IsZero reports whether g has no axes.
func (g Grid) IsZero() bool { return len(g.RPM) == 0 && len(g.MAP) == 0 }

// Filter holds the checks that keep untrustworthy samples out of the
// corrections. A zero limit in a rate field disables that check. Use
// DefaultFilter and adjust.
type Filter struct {
	AFRMin, AFRMax float64 // measured and target AFR outside this are rejected
	MAPMin, MAPMax float64 // kPa
	TPSMin, TPSMax float64 // percent
	IATMin, IATMax float64 // °C; checked only when the sample has IAT
	RPMMin         float64 // below this (cranking, stall) the sample is rejected

	// MaxTPSRate and MaxMAPRate (percent/s and kPa/s) flag a transient:
	// acceleration enrichment and wall wetting make AFR lie about VE there.
	MaxTPSRate float64
	MaxMAPRate float64
	// TransientHold keeps rejecting samples this long after a transient.
	TransientHold time.Duration
	// RateWindow is the span over which TPS and MAP rates are measured, so
	// sensor noise at high sample rates does not pass for a transient. Zero
	// means 100 ms.
	RateWindow time.Duration

	// Decel and fuel cut. A sample is decel when the throttle is closed
	// (TPS at or below DecelTPS) and the engine speed, smoothed over
	// SlopeWindow, falls faster than DecelRPMRate; or, without a live
	// throttle, when MAP is below DecelMAPRatio of the barometer while the
	// speed falls; or when a wideband reads the fuel-cut signature (above
	// FuelCutAFR, or FuelCutRatio times the target with the throttle
	// closed, the speed falling or the manifold near vacuum). Decel rejects
	// the samples DecelHold after it ends (the exhaust of the cut is still
	// passing the sensor) and PreGuard before it starts (a wideband delay
	// learned a little long).
	DecelTPS      float64
	DecelRPMRate  float64 // rev/min per second
	DecelMAPRatio float64
	FuelCutAFR    float64
	FuelCutRatio  float64
	DecelHold     time.Duration
	PreGuard      time.Duration
	SlopeWindow   time.Duration

	// Smoothing is the widest span over which speed and load (MAP, TPS or
	// ECU load) are smoothed before a sample is placed on the grid: noise
	// on the axes would otherwise pass for differences between
	// neighbouring nodes. Each sample gets a local straight-line fit over
	// the widest window, up to this span, whose estimate agrees with the
	// narrower ones' (the intersection of confidence intervals rule), so
	// a sweep is averaged over the whole span and a throttle step stays a
	// step. Negative disables it.
	Smoothing time.Duration
	// SteadySpan rejects a sample as a transient when its speed or load
	// bends within this span either side of it (the smoothing could not
	// widen to it) by more than a tenth of a grid step: its place on the
	// grid, and which exhaust the wideband read, are uncertain there. Zero means 200 ms; negative disables it.
	// It needs Smoothing.
	SteadySpan time.Duration

	// MinECT rejects samples of a cold engine (warm-up enrichment), when the
	// sample has ECT.
	MinECT float64
}

// DefaultFilter returns the filter the default analyzer uses: sensor
// ranges that take boost (MAP to 500 kPa), idle (from 500 rev/min) and
// the fuel's AFR range, plus transient, decel, fuel-cut and warm-up checks.
func DefaultFilter() Filter {
	return Filter{
		AFRMin: 9, AFRMax: 18,
		MAPMin: 10, MAPMax: 500,
		TPSMin: -5, TPSMax: 105,
		IATMin: fToC(30), IATMax: fToC(300),
		RPMMin:        500,
		MaxTPSRate:    150,
		MaxMAPRate:    120,
		TransientHold: 150 * time.Millisecond,
		RateWindow:    100 * time.Millisecond,
		DecelTPS:      3,
		DecelRPMRate:  100,
		DecelMAPRatio: 0.3,
		FuelCutAFR:    18,
		FuelCutRatio:  1.25,
		DecelHold:     500 * time.Millisecond,
		PreGuard:      150 * time.Millisecond,
		SlopeWindow:   300 * time.Millisecond,
		Smoothing:     time.Second,
		SteadySpan:    200 * time.Millisecond,
		MinECT:        60,
	}
}

func fToC(f float64) float64 { return (f - 32) * 5 / 9 }

// Smoothing selects the smoothing applied to correction grids.
type Smoothing struct {
	// Kernels enables the predecessor's K1 (gradient-limited) and K2
	// (coverage-weighted) kernels, exactly as specified.
	Kernels bool
	// Passes for K1, 0..5. The predecessor's default is 2.
	Passes int
	// GradientThreshold for K1 in percent; 0 means 1.0.
	GradientThreshold float64
}

// Options configure the default Analyzer. The zero value is useful: the
// default grid extended to the data, the load axis chosen from the log,
// bilinear node fit, equal weights, DefaultFilter, targets from the log's
// commanded AFR, the wideband delay learned from the log, no smoothing, a
// 15 % clamp.
type Options struct {
	// Grid is the analysis grid. Zero means DefaultGrid (DefaultThrottleGrid
	// for alpha-N), extended at its own steps to cover the data. A grid
	// given here (the ECU table's, see GridOf) is kept as is unless
	// ExtendGrid is set: samples beyond it are rejected as off grid.
	Grid       Grid
	ExtendGrid bool
	// Load chooses the load axis; LoadAuto decides from the log.
	Load        LoadAxis
	Attribution Attribution
	Estimator   Estimator
	Weighting   Weighting
	// Filter; nil means DefaultFilter() with the fuel's AFR range.
	Filter *Filter
	// Targets, when set, is the one source of target AFR (the ECU's target
	// table, or ConstantTarget). When nil, each sample's commanded AFR is
	// used, and a log without one is refused (ErrNoTarget).
	Targets dyno.Surface
	// MinSamples is the evidence (effective samples: the sum of the
	// samples' bilinear weights on a node) a node needs before it is
	// corrected. Zero means 5.
	MinSamples float64
	// MaxStdErr is the largest standard error (a fraction: 0.01 is 1 %) a
	// fitted node may have and still be corrected. The standard error is
	// the node's posterior standard deviation: it is small where the
	// node's own samples pin it down, and grows where the prior has to
	// fill in between paths through the table. Zero means 0.012; NodeFit
	// only (CellMean nodes are judged by MinSamples alone).
	MaxStdErr float64
	// MinResolution, when set, also requires this much of a node's fitted
	// value to come from its own samples rather than from its neighbours
	// (the diagonal of the fit's resolution matrix, 0..1). Zero means no
	// such requirement; NodeFit only.
	MinResolution float64
	// Smoothness is the weight of the prior that ties neighbouring nodes
	// together, relative to the data's median weight on a node. Zero (the
	// default) chooses it from the log, as the most likely given the data
	// (restricted maximum likelihood): weak for a table whose error
	// changes from node to node, strong for a smooth one.
	// Result cylinders report the weight used.
	Smoothness float64
	// ClampPercent limits every correction to +/- this percent. Zero means
	// 15; negative disables the clamp.
	ClampPercent float64
	Smoothing    Smoothing
	// SensorDelay is the wideband's transport delay to undo when it is not
	// learned (NoLearnDelay), or when the log holds too little signal to
	// learn it. The zero value means none.
	SensorDelay dyno.TransportDelay
	// SensorLag is the wideband's first-order time constant (what is left
	// of its response once the transport delay is undone): each reading is
	// corrected to the exhaust the sensor saw, reading + SensorLag × its
	// rate of change. A lag left in smears the readings along a pull, and
	// a cell whose neighbours need different corrections comes out short.
	// Zero means none.
	SensorLag time.Duration
	// NoLearnDelay stops the analysis from learning the transport delay from
	// the log (afr.AutoAlign, on a bounded prefix) and uses SensorDelay as
	// given. Learning is the default; Result.DelayEstimate reports it.
	NoLearnDelay bool
	// Decel configures the decel fuel analysis (Result.Decel): the samples
	// rejected as decel or fuel cut, judged for lean, popping-prone cells.
	Decel             DecelOptions
	LearnDelayOptions afr.AutoAlignOptions
	// Fuel converts lambda channels to AFR and, when Filter is nil, sets the
	// AFR range. The zero value means gasoline.
	Fuel afr.Fuel
}

// resolved returns o with defaults filled and validates it.
func (o Options) resolved() (Options, error) {
	if err := o.Decel.validate(); err != nil {
		return o, err
	}
	if !o.Grid.IsZero() {
		if err := checkAxis("RPM", o.Grid.RPM); err != nil {
			return o, err
		}
		if err := checkAxis("MAP", o.Grid.MAP); err != nil {
			return o, err
		}
	}
	if o.Fuel.Stoich == 0 {
		o.Fuel = afr.Gasoline()
	}
	if err := o.Fuel.Validate(); err != nil {
		return o, err
	}
	if o.Filter == nil {
		f := DefaultFilter()
		f.AFRMin, f.AFRMax = o.Fuel.MinAFR, o.Fuel.MaxAFR
		f.FuelCutAFR = o.Fuel.MaxAFR
		o.Filter = &f
	} else {
		f := *o.Filter // never alias the caller's struct
		o.Filter = &f
	}
	if o.Filter.SteadySpan == 0 {
		o.Filter.SteadySpan = 200 * time.Millisecond
	}
	if o.MinSamples == 0 {
		o.MinSamples = 5
	}
	if o.MinSamples < 0 || math.IsNaN(o.MinSamples) {
		return o, fmt.Errorf("ve: MinSamples %v is negative", o.MinSamples)
	}
	if o.MaxStdErr == 0 {
		o.MaxStdErr = 0.012
	}
	if !(o.MaxStdErr > 0 && o.MaxStdErr <= 1) {
		return o, fmt.Errorf("ve: MaxStdErr %v outside (0, 1]", o.MaxStdErr)
	}
	if !(o.MinResolution >= 0 && o.MinResolution <= 1) {
		return o, fmt.Errorf("ve: MinResolution %v outside [0, 1]", o.MinResolution)
	}
	if !(o.Smoothness >= 0 && o.Smoothness < 1e6) {
		return o, fmt.Errorf("ve: Smoothness %v is negative", o.Smoothness)
	}
	if o.ClampPercent == 0 {
		o.ClampPercent = 15
	}
	if math.IsNaN(o.ClampPercent) || o.ClampPercent >= 100 {
		return o, fmt.Errorf("ve: ClampPercent %v must be below 100", o.ClampPercent)
	}
	if o.Attribution != Bilinear && o.Attribution != NearestCell {
		return o, fmt.Errorf("ve: unknown attribution %v", o.Attribution)
	}
	if o.Estimator != NodeFit && o.Estimator != CellMean {
		return o, fmt.Errorf("ve: unknown estimator %v", o.Estimator)
	}
	if o.Attribution == NearestCell {
		o.Estimator = CellMean
	}
	if o.Weighting < WeightEqual || o.Weighting > WeightPower {
		return o, fmt.Errorf("ve: unknown weighting %v", o.Weighting)
	}
	if o.Load < LoadAuto || o.Load > LoadECU {
		return o, fmt.Errorf("ve: unknown load axis %v", o.Load)
	}
	if o.Smoothing.Passes < 0 || o.Smoothing.Passes > 5 {
		return o, fmt.Errorf("ve: smoothing passes %d outside 0..5", o.Smoothing.Passes)
	}
	if o.Smoothing.GradientThreshold == 0 {
		o.Smoothing.GradientThreshold = 1
	}
	if err := o.SensorDelay.Validate(); err != nil {
		return o, err
	}
	f := o.Filter
	if f.AFRMin >= f.AFRMax || f.MAPMin >= f.MAPMax || f.TPSMin >= f.TPSMax || f.IATMin >= f.IATMax {
		return o, fmt.Errorf("ve: filter has an empty range (AFR %v..%v, MAP %v..%v, TPS %v..%v, IAT %v..%v)",
			f.AFRMin, f.AFRMax, f.MAPMin, f.MAPMax, f.TPSMin, f.TPSMax, f.IATMin, f.IATMax)
	}
	return o, nil
}

// ConstantTarget is one target AFR everywhere: for a log without a
// commanded AFR whose tune targets one mixture (a fuel-based default, or a
// tuner's "13.2 everywhere").
type ConstantTarget float64

// At returns the constant.
func (c ConstantTarget) At(rpm, load float64) float64 { return float64(c) }

// String describes the target.
func (c ConstantTarget) String() string { return fmt.Sprintf("constant AFR %g", float64(c)) }
