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

// Cell is the evidence behind one node (cell) of one cylinder's table.
type Cell struct {
	Hits             int     // samples that touched the node (any share)
	EffectiveSamples float64 // sum of the samples' bilinear shares on the node: its evidence
	Weight           float64 // sum of share x weight
	// Multiplier is the node's estimate of measured/target: the node fit's
	// value (NodeFit), or the weighted cell mean (CellMean); NaN when the
	// node saw nothing. The correction applied is this, smoothed and
	// clamped, where Confidence is not ConfidenceNone.
	Multiplier float64
	// CellMean is the weighted mean of measured/target over the samples
	// attributed to the node, whatever the estimator.
	CellMean float64
	// StdErr is the standard error of Multiplier: the fit's posterior
	// standard deviation (NodeFit), or the mean's standard error
	// (CellMean); NaN when it cannot be told.
	StdErr float64
	// Resolution is how much of the node's fitted value comes from its own
	// samples rather than its neighbours', 0..1 (NodeFit; NaN otherwise).
	Resolution float64
	Confidence Confidence
	MeanAFR    float64 // weighted mean measured AFR
	MeanTarget float64 // weighted mean target AFR
	Torque     float64 // weighted mean torque, NaN without torque
	Power      float64 // weighted mean power, NaN without power
	KnockMax   float64 // largest knock retard seen, NaN without knock
	IATMax     float64 // hottest IAT seen, °C, NaN without IAT
	Clamped    bool    // the correction was limited by the clamp
	// Verdict is what the evidence gates made of the node (see Verdict).
	Verdict Verdict
}

// CylinderResult is one cylinder's analysis.
type CylinderResult struct {
	// Cylinder is the slot (0 front, 1 rear, ...). With Combined it is 0
	// and the correction is for every cylinder.
	Cylinder int
	// Combined is set when one wideband measured every cylinder (a
	// collector probe): the correction is the engine's as a whole, to
	// apply to every cylinder's table.
	Combined bool
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
	// cellRejected counts, row-major, the rejections near each cell;
	// unplaced those without speed or load or beyond the grid.
	cellRejected []Rejections
	unplaced     Rejections
	// Smoothness is the weight of the node fit's prior, relative to the
	// data's (the one Options gave, or the one chosen from the log); zero
	// for CellMean.
	Smoothness float64
}

// Cell returns the evidence at row i (RPM) and column j (MAP).
func (c *CylinderResult) Cell(i, j int) Cell { return c.Cells[i*c.Correction.Cols()+j] }

// Result is the outcome of an analysis.
type Result struct {
	Source string // the source's name
	Format string // the source's format
	// Grid is the grid the corrections are on: the one given, or the
	// default grid as extended to the data.
	Grid      Grid
	Samples   int // samples read
	Cylinders []CylinderResult
	// Decel is the decel fuel analysis per cylinder (see DecelOptions),
	// for the cylinders that had decel samples; empty without any.
	Decel   []DecelCylinder
	Options Options // the settings used, defaults filled in
	// Load is the load axis (the grid's second axis) and LoadWhy why it
	// was chosen.
	Load    LoadAxis
	LoadWhy string
	// Target says where the target AFR came from.
	Target string
	// Combined is set when the log has one wideband for every cylinder.
	Combined bool
	// Channels is the source's channel report, when it has one.
	Channels *dyno.ChannelReport
	// Notes are remarks on what the analysis did to the log as a whole (a
	// time base rebuilt, a grid extended).
	Notes []string
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

// Corrected counts the cells the cylinder corrects (with evidence enough,
// Confidence above ConfidenceNone).
func (c *CylinderResult) Corrected() int {
	n := 0
	for _, cell := range c.Cells {
		if cell.Confidence != ConfidenceNone {
			n++
		}
	}
	return n
}

// Corrected counts the corrected cells over every cylinder.
func (r *Result) Corrected() int {
	n := 0
	for i := range r.Cylinders {
		n += r.Cylinders[i].Corrected()
	}
	return n
}

// Advice says, for a result without a single correction, why (the most
// frequent rejection reasons) and what to try: a flag, a unit, a channel.
// It is empty when something was corrected.
func (r *Result) Advice() []string {
	if r.Corrected() > 0 {
		return nil
	}
	var tot Rejections
	accepted := 0
	for i := range r.Cylinders {
		cr := &r.Cylinders[i]
		accepted += cr.Accepted
		for k, n := range cr.Rejected {
			tot[k] += n
		}
	}
	var out []string
	if len(r.Cylinders) == 0 || r.Samples == 0 {
		return []string{"the log has no rows with a wideband reading: check the channel report for the AFR column"}
	}
	reasons := sortedReasons(tot)
	all := tot.Total() + accepted
	for k, reason := range reasons {
		if k == 3 {
			break
		}
		pct := 100 * float64(tot[reason]) / float64(max(1, all))
		out = append(out, fmt.Sprintf("%.0f %% of samples rejected as %s: %s", pct, reason, reasonAdvice(reason, r)))
	}
	if accepted > 0 {
		out = append(out, fmt.Sprintf("%d samples were accepted, but no cell reached %g effective samples resolved on its own: log longer steady-state pulls or holds through the cells, or lower the evidence floor (-min-samples)", accepted, r.Options.MinSamples))
	}
	return out
}

// reasonAdvice says what to try against a rejection reason.
func reasonAdvice(reason Reason, r *Result) string {
	switch reason {
	case RejectColdEngine:
		return "the engine was below the warm-up threshold: log it warm, or check the coolant unit (-unit ect=C or -unit ect=F)"
	case RejectOffGrid:
		return "the data lies outside the grid: drop -grid/-targets grid limits or let the default grid extend"
	case RejectNoAFR:
		return "the wideband gave no reading there: check the AFR column in the channel report (-map afr=COLUMN)"
	case RejectNoTarget:
		return "no target for those samples: give -targets FILE or -target-afr 13.2"
	case RejectAFRRange:
		return "AFR or target outside the fuel's range: check the fuel (-fuel) and the wideband's unit (-unit afr=lambda)"
	case RejectDecel:
		return "closed throttle, falling rpm or fuel cut: log pulls and steady holds, not coast-downs"
	case RejectTransient:
		return "throttle or MAP moving fast: hold the throttle steady through the cells"
	case RejectLowRPM:
		return "engine speed below the minimum: check the rpm unit (-unit rpm=krpm)"
	case RejectMAPRange:
		return "MAP outside the plausible range: check its unit (-unit map=psi, -unit map=bar)"
	case RejectTPSRange:
		return "throttle outside 0..100 %: check the TPS column (-map tps=COLUMN)"
	case RejectIATRange:
		return "intake air temperature implausible: check its unit (-unit iat=C or -unit iat=F)"
	case RejectNoSpeedLoad:
		return "rows without engine speed or load: check the channel report (-map rpm=COLUMN, -map map=COLUMN, -load tps)"
	case RejectLowWeight:
		return "torque or power too small for the weighting: use -weighting equal"
	}
	return "see the channel report"
}
