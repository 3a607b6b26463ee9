package ve

import (
	"fmt"
	"math"
	"time"

	"github.com/dynoai/dynoai/afr"
	"github.com/dynoai/dynoai/dyno"
)

// Version is the library version recorded in manifests and result documents.
const Version = "0.1.0"

// Attribution says how a sample is shared among grid cells.
type Attribution int

const (
	// Bilinear shares each sample among the four cells around it with
	// bilinear weights, so a sample between bins informs both. The default.
	Bilinear Attribution = iota
	// NearestCell gives each sample to the nearest cell; ties go to the lower
	// bin (the predecessor's rule).
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

// Weighting says how much a sample counts in its cell's mean.
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

// Grid is the RPM x MAP grid an analysis works on. Axes are strictly
// increasing bin centres.
type Grid struct {
	RPM []float64
	MAP []float64
}

// DefaultGrid returns the library's one default grid: RPM 1500..6500 by
// 500 and MAP 20..100 by 10 kPa, the shape of a naturally aspirated ECU's
// VE table. (The predecessor's 35..95 kPa by 15 lives on in DynoAI3Compat.)
func DefaultGrid() Grid {
	return Grid{
		RPM: []float64{1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500, 6000, 6500},
		MAP: []float64{20, 30, 40, 50, 60, 70, 80, 90, 100},
	}
}

// Filter holds the checks that keep untrustworthy samples out of the
// corrections. A zero limit in a rate field disables that check. Use
// DefaultFilter and adjust.
type Filter struct {
	AFRMin, AFRMax float64 // measured and target AFR outside this are rejected
	MAPMin, MAPMax float64 // kPa
	TPSMin, TPSMax float64 // percent
	IATMin, IATMax float64 // °C; checked only when the sample has IAT
	RPMMin         float64 // below this (idle, stall) the sample is rejected

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

	// DecelTPS: a sample with TPS at or below it and RPM falling is decel or
	// fuel cut, as is any sample whose measured AFR exceeds FuelCutAFR.
	DecelTPS   float64
	FuelCutAFR float64

	// MinECT rejects samples of a cold engine (warm-up enrichment), when the
	// sample has ECT.
	MinECT float64
}

// DefaultFilter returns the filter the default analyzer uses: the
// predecessor's sensor ranges (AFR 9..18, MAP 10..110 kPa, TPS 0..100 %,
// IAT 30..300 °F) plus transient, decel and warm-up checks it lacked.
func DefaultFilter() Filter {
	return Filter{
		AFRMin: 9, AFRMax: 18,
		MAPMin: 10, MAPMax: 110,
		TPSMin: 0, TPSMax: 100,
		IATMin: fToC(30), IATMax: fToC(300),
		RPMMin:        500,
		MaxTPSRate:    150,
		MaxMAPRate:    120,
		TransientHold: 150 * time.Millisecond,
		RateWindow:    100 * time.Millisecond,
		DecelTPS:      1.5,
		FuelCutAFR:    18,
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
// default grid, bilinear attribution, equal weights, DefaultFilter, targets
// from the log's commanded AFR, no smoothing, a 7 % clamp.
type Options struct {
	Grid        Grid // zero means DefaultGrid
	Attribution Attribution
	Weighting   Weighting
	// Filter; nil means DefaultFilter().
	Filter *Filter
	// Targets, when set, is the one source of target AFR (for example the
	// ECU's target table). When nil, each sample's commanded AFR is used.
	Targets dyno.Surface
	// MinSamples is the evidence (effective samples after bilinear sharing)
	// a cell needs before its correction counts; below it the cell keeps 1.0
	// and is marked. Zero means 5.
	MinSamples float64
	// ClampPercent limits every correction to +/- this percent. Zero means 7;
	// negative disables the clamp.
	ClampPercent float64
	Smoothing    Smoothing
	// SensorDelay shifts measured AFR back in time against RPM/MAP by the
	// wideband's transport delay (afr.Align) so each reading lands on the
	// cell that made the exhaust. The zero value means no shift.
	SensorDelay dyno.TransportDelay
	// LearnDelay estimates the transport delay from the log itself (afr.AutoAlign,
	// reading a bounded prefix first) and undoes it; SensorDelay, when set, is
	// the fallback used when the log holds too little signal for a confident
	// estimate. The estimate is reported in Result.DelayEstimate.
	LearnDelay        bool
	LearnDelayOptions afr.AutoAlignOptions
	// Fuel converts lambda channels to AFR and, when Filter is nil, sets the
	// AFR range. The zero value means gasoline.
	Fuel afr.Fuel
}

// resolved returns o with defaults filled and validates it.
func (o Options) resolved() (Options, error) {
	if len(o.Grid.RPM) == 0 && len(o.Grid.MAP) == 0 {
		o.Grid = DefaultGrid()
	}
	if err := checkAxis("RPM", o.Grid.RPM); err != nil {
		return o, err
	}
	if err := checkAxis("MAP", o.Grid.MAP); err != nil {
		return o, err
	}
	if o.Fuel.Stoich == 0 {
		o.Fuel = afr.Gasoline
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
	if o.MinSamples == 0 {
		o.MinSamples = 5
	}
	if o.MinSamples < 0 || math.IsNaN(o.MinSamples) {
		return o, fmt.Errorf("ve: MinSamples %v is negative", o.MinSamples)
	}
	if o.ClampPercent == 0 {
		o.ClampPercent = 7
	}
	if math.IsNaN(o.ClampPercent) || o.ClampPercent >= 100 {
		return o, fmt.Errorf("ve: ClampPercent %v must be below 100", o.ClampPercent)
	}
	if o.Attribution != Bilinear && o.Attribution != NearestCell {
		return o, fmt.Errorf("ve: unknown attribution %v", o.Attribution)
	}
	if o.Weighting < WeightEqual || o.Weighting > WeightPower {
		return o, fmt.Errorf("ve: unknown weighting %v", o.Weighting)
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
