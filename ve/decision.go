package ve

import (
	"encoding/json"
	"fmt"
	"slices"
)

// The decision log says why each cell got its number: the verdict of the
// evidence gates (Cell.Verdict), the samples each filter rule turned away
// near it, the smoothing and the clamp; and, per rule, how many samples
// and cells it touched. It is aggregated per cell and per rule, so its
// size is the grid's, never the log's (Result.Decisions, Decision_Log.json
// and result.json's "decisions").

// Verdict is what the evidence gates made of a cell.
type Verdict int

const (
	VerdictNoData        Verdict = iota // no accepted sample touched the node
	VerdictBelowFloor                   // fewer effective samples than Options.MinSamples
	VerdictUncertain                    // the fit's standard error is above Options.MaxStdErr
	VerdictLowResolution                // the node's value comes mostly from its neighbours (Options.MinResolution)
	VerdictCorrected                    // the correction is applied
)

var verdictNames = []string{"no_data", "below_evidence_floor", "uncertain", "low_resolution", "corrected"}

func (v Verdict) String() string {
	if v >= 0 && int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "unknown"
}

// MarshalText writes the verdict's name.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// foldRejections moves a cylinder's fine-binned rejections onto the grid
// (nearest cell); those beyond half a cell from its edge go to off.
func foldRejections(at map[decelKey]*Rejections, g Grid) (cells []Rejections, off Rejections) {
	nc := len(g.MAP)
	cells = make([]Rejections, len(g.RPM)*nc)
	for k, rj := range at {
		rpm, load := float64(k.r)*decelRPMBin, float64(k.l)*decelLoadBin
		dst := &off
		if nearGrid(g.RPM, rpm) && nearGrid(g.MAP, load) {
			dst = &cells[Nearest(g.RPM, rpm)*nc+Nearest(g.MAP, load)]
		}
		for r, n := range rj {
			dst[r] += n
		}
	}
	return cells, off
}

// CellDecision is the log of one cell of one cylinder.
type CellDecision struct {
	Cylinder string  `json:"cylinder"`
	RPM      float64 `json:"rpm"`
	Load     float64 `json:"load"`
	Verdict  Verdict `json:"verdict"`
	Hits     int     `json:"hits"`
	// Evidence is the effective samples; Floor the minimum asked for.
	Evidence float64 `json:"effective_samples"`
	Floor    float64 `json:"min_samples"`
	// Rejected counts the samples each rule turned away near the cell.
	Rejected map[string]int `json:"rejected,omitempty"`
	// Estimate is the node's measured/target before smoothing and clamp,
	// Applied the multiplier written; Smoothed and Clamped say what
	// changed it in between.
	Estimate float64 `json:"estimate"`
	StdErr   float64 `json:"std_err"`
	Applied  float64 `json:"applied"`
	Smoothed bool    `json:"smoothed"`
	Clamped  bool    `json:"clamped"`
}

// RuleDecision is how often one rule decided, for one cylinder.
type RuleDecision struct {
	Cylinder string `json:"cylinder"`
	Rule     string `json:"rule"`
	// Samples is how many samples the rule turned away (a filter), or 0
	// for the gates on cells; Cells how many cells it decided.
	Samples int `json:"samples,omitempty"`
	Cells   int `json:"cells,omitempty"`
}

// DecisionLog is the analysis's decisions, per rule and per cell.
type DecisionLog struct {
	Rules []RuleDecision `json:"rules"`
	// Cells lists every cell that saw a sample (accepted or rejected).
	Cells []CellDecision `json:"cells"`
	// Unplaced counts, per cylinder and rule, the rejected samples with no
	// speed or load, or beyond the grid.
	Unplaced map[string]map[string]int `json:"unplaced,omitempty"`
}

// Decisions returns the decision log of r.
func (r *Result) Decisions() DecisionLog {
	log := DecisionLog{Rules: []RuleDecision{}, Cells: []CellDecision{}, Unplaced: map[string]map[string]int{}}
	smoothing := r.Options.Smoothing.Kernels && r.Options.Smoothing.Passes > 0
	for ci := range r.Cylinders {
		cr := &r.Cylinders[ci]
		name := cr.Name()
		cellRules := map[string]int{}
		for r, n := range cr.Rejected {
			if n > 0 {
				log.Rules = append(log.Rules, RuleDecision{Cylinder: name, Rule: Reason(r).String(), Samples: n})
			}
		}
		if un := cr.unplaced.Map(); len(un) > 0 {
			log.Unplaced[name] = un
		}
		nc := len(r.Grid.MAP)
		for i, c := range cr.Cells {
			var rej Rejections
			if i < len(cr.cellRejected) {
				rej = cr.cellRejected[i]
			}
			rm := rej.Map()
			if c.Hits == 0 && len(rm) == 0 {
				continue
			}
			// Figures rounded as the other exports round them: a log to
			// read, not a second copy of the fit's last bits.
			d := CellDecision{Cylinder: name, RPM: r.Grid.RPM[i/nc], Load: r.Grid.MAP[i%nc], Verdict: c.Verdict,
				Hits: c.Hits, Evidence: roundDecimal(c.EffectiveSamples, 3), Floor: r.Options.MinSamples, Rejected: rm,
				Estimate: roundDecimal(c.Multiplier, 6), StdErr: roundDecimal(c.StdErr, 6), Applied: cr.Correction.Values[i],
				Clamped: c.Clamped}
			if c.Verdict == VerdictCorrected && smoothing && Has(c.Multiplier) && !c.Clamped {
				d.Smoothed = roundDecimal(c.Multiplier, cr.Correction.Precision) != d.Applied
			}
			cellRules[c.Verdict.String()]++
			if c.Clamped {
				cellRules["clamp"]++
			}
			if d.Smoothed {
				cellRules["smoothing"]++
			}
			log.Cells = append(log.Cells, d)
		}
		keys := make([]string, 0, len(cellRules))
		for k := range cellRules {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			log.Rules = append(log.Rules, RuleDecision{Cylinder: name, Rule: k, Cells: cellRules[k]})
		}
	}
	return log
}

// MarshalJSON writes NaN figures as null.
func (d CellDecision) MarshalJSON() ([]byte, error) {
	type plain CellDecision
	out := struct {
		plain
		Estimate *float64 `json:"estimate"`
		StdErr   *float64 `json:"std_err"`
	}{plain: plain(d)}
	if Has(d.Estimate) {
		out.Estimate = &d.Estimate
	}
	if Has(d.StdErr) {
		out.StdErr = &d.StdErr
	}
	return json.Marshal(out)
}

// writeDecisions writes Decision_Log.json.
func (r *Result) writeDecisions(dir string) (string, error) {
	name := "Decision_Log.json"
	return name, writeJSONFile(dir, name, r.Decisions())
}

// UnmarshalText reads a verdict's name.
func (v *Verdict) UnmarshalText(b []byte) error {
	for i, n := range verdictNames {
		if n == string(b) {
			*v = Verdict(i)
			return nil
		}
	}
	return fmt.Errorf("ve: unknown verdict %q", b)
}
