package ve

import (
	"fmt"

	"github.com/dynoai/dynoai/afr"
	"github.com/dynoai/dynoai/dyno"
)

// Reason is why a sample was left out of a cylinder's corrections.
type Reason int

// The reasons a sample is rejected. Checks common to all cylinders run
// first (speed and load present, sensor ranges, grid reach, warm-up, decel,
// transients), then the per-cylinder ones (AFR present and in range, target,
// weight); the first that fails is the one counted.
const (
	RejectNoSpeedLoad Reason = iota // RPM or MAP missing
	RejectLowRPM                    // below Filter.RPMMin
	RejectOffGrid                   // more than half a bin beyond the grid's edge
	RejectNoAFR                     // no measured AFR for this cylinder
	RejectNoTarget                  // no target (commanded AFR or table)
	RejectAFRRange                  // measured or target AFR outside the filter
	RejectMAPRange
	RejectTPSRange
	RejectIATRange
	RejectColdEngine // ECT below Filter.MinECT
	RejectDecel      // closed throttle with falling RPM, or fuel cut
	RejectTransient  // TPS or MAP changing too fast, or within the hold after
	RejectLowWeight  // weight (torque or power) too small to count
	numReasons
)

var reasonNames = [numReasons]string{
	"no_rpm_or_map", "low_rpm", "off_grid", "no_afr", "no_target", "afr_range", "map_range",
	"tps_range", "iat_range", "cold_engine", "decel", "transient", "low_weight",
}

func (r Reason) String() string {
	if r >= 0 && r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// Reasons lists every Reason in check order.
func Reasons() []Reason {
	out := make([]Reason, numReasons)
	for i := range out {
		out[i] = Reason(i)
	}
	return out
}

// Rejections counts rejected samples by reason.
type Rejections [numReasons]int

// Total returns the number of rejections.
func (r Rejections) Total() int {
	n := 0
	for _, v := range r {
		n += v
	}
	return n
}

// Map returns the non-zero counts keyed by reason name.
func (r Rejections) Map() map[string]int {
	m := map[string]int{}
	for i, v := range r {
		if v > 0 {
			m[Reason(i).String()] = v
		}
	}
	return m
}

// Confidence grades the evidence behind one cell's correction.
type Confidence int

const (
	ConfidenceNone   Confidence = iota // below MinSamples: correction not applied
	ConfidenceLow                      // enough samples, but noisy or few
	ConfidenceMedium                   // >= 20 effective samples, standard error < 1 %
	ConfidenceHigh                     // >= 50 effective samples, standard error < 0.5 %
)

func (c Confidence) String() string {
	switch c {
	case ConfidenceNone:
		return "none"
	case ConfidenceLow:
		return "low"
	case ConfidenceMedium:
		return "medium"
	case ConfidenceHigh:
		return "high"
	}
	return fmt.Sprintf("Confidence(%d)", int(c))
}

// MarshalText writes the confidence's name.
func (c Confidence) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Cell is the evidence behind one cell of one cylinder.
type Cell struct {
	Hits             int     // samples that touched the cell (any share)
	EffectiveSamples float64 // sum of the samples' shares in the cell
	Weight           float64 // sum of share x weight
	// Multiplier is the weighted mean of measured/target; NaN when the cell
	// saw nothing.
	Multiplier float64
	// StdErr is the standard error of Multiplier (NaN with under two samples).
	StdErr     float64
	Confidence Confidence
	MeanAFR    float64 // weighted mean measured AFR
	MeanTarget float64 // weighted mean target AFR
	Torque     float64 // weighted mean torque, NaN without torque
	Power      float64 // weighted mean power, NaN without power
	KnockMax   float64 // largest knock retard seen, NaN without knock
	IATMax     float64 // hottest IAT seen, °C, NaN without IAT
	Clamped    bool    // the correction was limited by the clamp
}

// CylinderResult is one cylinder's analysis.
type CylinderResult struct {
	Cylinder int
	// Correction holds the multiplier to apply to each VE cell: 1.0 where
	// the evidence is insufficient, smoothed and clamped where it counts.
	Correction *Table
	// Raw holds the unsmoothed, unclamped mean multiplier; NaN where no
	// sample landed.
	Raw *Table
	// Cells holds the evidence, row-major like the tables.
	Cells    []Cell
	Accepted int        // samples accepted for this cylinder
	Rejected Rejections // samples rejected for this cylinder, by reason
	Clamped  int        // cells whose correction the clamp limited
}

// Cell returns the evidence at row i (RPM) and column j (MAP).
func (c *CylinderResult) Cell(i, j int) Cell { return c.Cells[i*c.Correction.Cols()+j] }

// Result is the outcome of an analysis.
type Result struct {
	Source    string // the source's name
	Format    string // the source's format
	Grid      Grid
	Samples   int // samples read
	Cylinders []CylinderResult
	Options   Options // the settings used, defaults filled in
	// Delay is the transport delay the analysis undid: Options.SensorDelay,
	// or with LearnDelay the one learned (or its fallback).
	Delay dyno.TransportDelay
	// DelayEstimate is the learned delay with its confidence and per-band
	// figures, with LearnDelay; DelayNote says why there is none.
	DelayEstimate *afr.DelayEstimate
	DelayNote     string
}

// Cylinder returns the result for cylinder index c, or nil.
func (r *Result) Cylinder(c int) *CylinderResult {
	for i := range r.Cylinders {
		if r.Cylinders[i].Cylinder == c {
			return &r.Cylinders[i]
		}
	}
	return nil
}
