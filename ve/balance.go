package ve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
)

// Cylinder balance compares the cylinders of one analysis cell by cell:
// where one cylinder runs leaner or richer than another against its own
// target, by more than the threshold and by more than the evidence's
// noise, the cell is imbalanced. For each imbalanced cell it proposes a
// per-cylinder trim within an authority limit, for ECUs with per-cylinder
// trim tables (or to apply to each cylinder's VE table).
//
// Unlike the predecessor's module (predecessor-modules.md §2), it judges
// each cylinder against its own target (CB-3: two cylinders equally lean
// against different commands are balanced), it uses the analyzer's cells,
// filters and node estimates (CB-2: no second binning with other windows),
// it refuses a negative authority instead of inverting its clamp (CB-1), a
// log with one wideband for every cylinder says balance cannot be judged
// instead of reporting a silent "balanced" (CB-5), and its report has one
// type per field (CB-7).

// BalanceMode says which way a balance trim moves the cylinders.
type BalanceMode int

const (
	// BalanceToTarget trims each cylinder of an imbalanced cell toward its
	// own target: both end on target, so they end balanced.
	BalanceToTarget BalanceMode = iota
	// BalanceEqualize moves each cylinder toward the cylinders' mean
	// (relative to target) and leaves the cell's overall mixture alone: the
	// predecessor's "equalize".
	BalanceEqualize
	// BalanceMatchFirst leaves the first cylinder (front) alone and trims
	// the others to match it: the predecessor's "match_front".
	BalanceMatchFirst
)

var balanceModeNames = []string{"to_target", "equalize", "match_first"}

func (m BalanceMode) String() string {
	if int(m) < len(balanceModeNames) && m >= 0 {
		return balanceModeNames[m]
	}
	return fmt.Sprintf("BalanceMode(%d)", int(m))
}

// MarshalText writes the mode's name.
func (m BalanceMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// ParseBalanceMode reads a mode's name (also the predecessor's
// "match_front").
func ParseBalanceMode(s string) (BalanceMode, error) {
	switch s {
	case "to_target", "target", "":
		return BalanceToTarget, nil
	case "equalize":
		return BalanceEqualize, nil
	case "match_first", "match_front":
		return BalanceMatchFirst, nil
	}
	return 0, fmt.Errorf("ve: balance mode %q: want to_target, equalize or match_first", s)
}

// BalanceOptions configure Balance. The zero value is ready to use.
type BalanceOptions struct {
	Mode BalanceMode
	// ThresholdPct is the spread between the leanest and the richest
	// cylinder of a cell, in percent of fuel (measured/target), from which
	// a cell is imbalanced; 0 means 3 % (about 0.4 AFR at 13:1, the
	// predecessor's 0.5 AFR at 14.7).
	ThresholdPct float64
	// MaxTrimPct is the authority of one trim, in percent; 0 means 3 (the
	// predecessor's default). At most 5, the predecessor's absolute cap.
	MaxTrimPct float64
	// MinSamples is the evidence (effective samples) each cylinder needs in
	// a cell for it to be compared; 0 means the analysis's MinSamples.
	MinSamples float64
}

// MaxBalanceTrimPct is the largest authority BalanceOptions accepts.
const MaxBalanceTrimPct = 5

// ErrBalanceOneSensor is returned by Balance for an analysis whose single
// wideband measured every cylinder together: their balance cannot be told.
var ErrBalanceOneSensor = errors.New("ve: one wideband measured every cylinder together; their balance cannot be judged (log a wideband per cylinder)")

// BalanceCylinder is one cylinder's side of a compared cell.
type BalanceCylinder struct {
	Name       string  `json:"name"`
	Samples    float64 `json:"effective_samples"`
	MeanAFR    float64 `json:"mean_afr"`
	MeanTarget float64 `json:"mean_target_afr"`
	// ErrorPct is measured/target - 1, in percent: positive runs lean.
	ErrorPct  float64 `json:"error_pct"`
	StdErrPct float64 `json:"std_err_pct"` // NaN (null) when it cannot be told
	// TrimPct is the proposed fuel change, in percent (0 where the cell is
	// balanced); Limited says the authority limited it.
	TrimPct float64 `json:"trim_pct"`
	Limited bool    `json:"limited"`
}

// BalanceCell is one cell where every cylinder had enough evidence.
type BalanceCell struct {
	RPM  float64 `json:"rpm"`
	Load float64 `json:"load"`
	Row  int     `json:"row"`
	Col  int     `json:"col"`
	// SpreadPct is the leanest cylinder's error minus the richest's, in
	// percent of fuel; SpreadAFR the same in AFR at the cell's mean target.
	SpreadPct float64 `json:"spread_pct"`
	SpreadAFR float64 `json:"spread_afr"`
	// Noise is two standard errors of the spread (NaN when unknown): a
	// spread within it is not called an imbalance.
	NoisePct   float64           `json:"noise_pct"`
	Imbalanced bool              `json:"imbalanced"`
	Severity   string            `json:"severity"` // "high" (>= 2 x threshold), "medium" (>= 1.4 x), "low", or "" when balanced
	Cylinders  []BalanceCylinder `json:"cylinders"`
}

// BalanceReport is the outcome of Balance.
type BalanceReport struct {
	Mode         BalanceMode `json:"mode"`
	ThresholdPct float64     `json:"threshold_pct"`
	MaxTrimPct   float64     `json:"max_trim_pct"`
	Cylinders    []string    `json:"cylinders"`
	Analysed     int         `json:"cells_analysed"`
	Imbalanced   int         `json:"cells_imbalanced"`
	MaxSpreadPct float64     `json:"max_spread_pct"`
	// MeanSpreadPct averages the spread over the analysed cells.
	MeanSpreadPct float64 `json:"mean_spread_pct"`
	// Cells holds every analysed cell, the most imbalanced first.
	Cells []BalanceCell `json:"cells"`
	// Trims holds each cylinder's trim as multipliers (1 = no change), on
	// the analysis's grid.
	Trims []*Table `json:"-"`
	// Anomalies describes patterns a tuner should look at (a cylinder
	// consistently leaner than another, in most imbalanced cells).
	Anomalies []string `json:"anomalies"`
}

// Balance compares the cylinders of res cell by cell (see the package's
// note above BalanceMode).
func Balance(res *Result, opts BalanceOptions) (*BalanceReport, error) {
	if res == nil || len(res.Cylinders) == 0 {
		return nil, errors.New("ve: balance needs an analysis result with cylinders")
	}
	if res.Combined || (len(res.Cylinders) == 1 && res.Cylinders[0].Combined) {
		return nil, ErrBalanceOneSensor
	}
	if len(res.Cylinders) < 2 {
		return nil, errors.New("ve: balance needs two or more cylinders with their own wideband")
	}
	switch {
	case math.IsNaN(opts.ThresholdPct) || opts.ThresholdPct < 0:
		return nil, fmt.Errorf("ve: balance threshold %v %% must be positive", opts.ThresholdPct)
	case math.IsNaN(opts.MaxTrimPct) || opts.MaxTrimPct < 0 || opts.MaxTrimPct > MaxBalanceTrimPct:
		// The predecessor inverted its clamp on a negative value (CB-1).
		return nil, fmt.Errorf("ve: balance authority %v %% must be within 0..%d", opts.MaxTrimPct, MaxBalanceTrimPct)
	case math.IsNaN(opts.MinSamples) || opts.MinSamples < 0:
		return nil, fmt.Errorf("ve: balance minimum samples %v must not be negative", opts.MinSamples)
	case opts.Mode < BalanceToTarget || opts.Mode > BalanceMatchFirst:
		return nil, fmt.Errorf("ve: unknown balance mode %v", opts.Mode)
	}
	if opts.ThresholdPct == 0 {
		opts.ThresholdPct = 3
	}
	if opts.MaxTrimPct == 0 {
		opts.MaxTrimPct = 3
	}
	if opts.MinSamples == 0 {
		opts.MinSamples = res.Options.MinSamples
	}
	g := res.Grid
	rep := &BalanceReport{Mode: opts.Mode, ThresholdPct: opts.ThresholdPct, MaxTrimPct: opts.MaxTrimPct, Anomalies: []string{}}
	for i := range res.Cylinders {
		rep.Cylinders = append(rep.Cylinders, res.Cylinders[i].Name())
		rep.Trims = append(rep.Trims, MustTable(g.RPM, g.MAP, 1))
	}
	n := len(res.Cylinders)
	var spreadSum float64
	leaner := make([][]int, n) // leaner[a][b]: imbalanced cells where a ran leaner than b
	for a := range leaner {
		leaner[a] = make([]int, n)
	}
	for i := range g.RPM {
		for j := range g.MAP {
			cell, ok := balanceCell(res, i, j, opts)
			if !ok {
				continue
			}
			rep.Analysed++
			spreadSum += cell.SpreadPct
			rep.MaxSpreadPct = math.Max(rep.MaxSpreadPct, cell.SpreadPct)
			if cell.Imbalanced {
				rep.Imbalanced++
				lean, rich := extremes(cell.Cylinders)
				leaner[lean][rich]++
				for c := range cell.Cylinders {
					rep.Trims[c].Set(i, j, 1+cell.Cylinders[c].TrimPct/100)
				}
			}
			rep.Cells = append(rep.Cells, cell)
		}
	}
	if rep.Analysed > 0 {
		rep.MeanSpreadPct = spreadSum / float64(rep.Analysed)
	}
	slices.SortStableFunc(rep.Cells, func(a, b BalanceCell) int {
		switch {
		case a.SpreadPct > b.SpreadPct:
			return -1
		case a.SpreadPct < b.SpreadPct:
			return 1
		}
		return 0
	})
	for a := range n {
		for b := range n {
			if k := leaner[a][b]; a != b && k >= 3 && k*4 >= rep.Imbalanced*3 {
				rep.Anomalies = append(rep.Anomalies, fmt.Sprintf(
					"%s runs leaner than %s in %d of %d imbalanced cells: a steady offset means the cylinders' VE tables differ from their engine (each cylinder's correction fixes that) or, where the tables already match, an injector, an intake leak or a wideband's calibration",
					rep.Cylinders[a], rep.Cylinders[b], k, rep.Imbalanced))
			}
		}
	}
	if rep.Analysed == 0 {
		rep.Anomalies = append(rep.Anomalies, fmt.Sprintf(
			"no cell had %g effective samples on every cylinder: nothing to compare", opts.MinSamples))
	}
	return rep, nil
}

// balanceCell compares the cylinders at (i, j); ok is false when one of
// them lacks the evidence.
func balanceCell(res *Result, i, j int, opts BalanceOptions) (BalanceCell, bool) {
	g := res.Grid
	cell := BalanceCell{RPM: g.RPM[i], Load: g.MAP[j], Row: i, Col: j}
	var targets float64
	var variance float64
	known := true
	for ci := range res.Cylinders {
		cr := &res.Cylinders[ci]
		c := cr.Cell(i, j)
		if c.EffectiveSamples < opts.MinSamples || !Has(c.MeanAFR) || !Has(c.MeanTarget) || c.MeanTarget <= 0 {
			return cell, false
		}
		// The cell's own samples judge the balance: the fit's neighbours
		// would blur a cylinder's offset into the next cell.
		e := c.MeanAFR/c.MeanTarget - 1
		se := c.StdErr
		if !Has(se) {
			known = false
		} else {
			variance += se * se
		}
		cell.Cylinders = append(cell.Cylinders, BalanceCylinder{Name: cr.Name(), Samples: c.EffectiveSamples,
			MeanAFR: c.MeanAFR, MeanTarget: c.MeanTarget, ErrorPct: 100 * e, StdErrPct: 100 * se})
		targets += c.MeanTarget
	}
	lean, rich := extremes(cell.Cylinders)
	cell.SpreadPct = cell.Cylinders[lean].ErrorPct - cell.Cylinders[rich].ErrorPct
	cell.SpreadAFR = cell.SpreadPct / 100 * targets / float64(len(cell.Cylinders))
	cell.NoisePct = math.NaN()
	if known {
		// Two cylinders' worth of standard error, the pair that decides.
		cell.NoisePct = 2 * 100 * math.Sqrt(variance*2/float64(len(cell.Cylinders)))
	}
	cell.Imbalanced = cell.SpreadPct >= opts.ThresholdPct && (!known || cell.SpreadPct > cell.NoisePct)
	if !cell.Imbalanced {
		return cell, true
	}
	switch {
	case cell.SpreadPct >= 2*opts.ThresholdPct:
		cell.Severity = "high"
	case cell.SpreadPct >= 1.4*opts.ThresholdPct:
		cell.Severity = "medium"
	default:
		cell.Severity = "low"
	}
	// Trims in fuel: a lean cylinder (ratio > 1) needs more fuel.
	var meanRatio float64
	for _, c := range cell.Cylinders {
		meanRatio += 1 + c.ErrorPct/100
	}
	meanRatio /= float64(len(cell.Cylinders))
	first := 1 + cell.Cylinders[0].ErrorPct/100
	for k := range cell.Cylinders {
		c := &cell.Cylinders[k]
		ratio := 1 + c.ErrorPct/100
		var trim float64
		switch opts.Mode {
		case BalanceToTarget:
			trim = ratio - 1
		case BalanceEqualize:
			trim = ratio/meanRatio - 1
		case BalanceMatchFirst:
			trim = ratio/first - 1
		}
		limit := opts.MaxTrimPct / 100
		if trim > limit || trim < -limit {
			trim = math.Copysign(limit, trim)
			c.Limited = true
		}
		c.TrimPct = 100 * trim
	}
	return cell, true
}

// extremes returns the leanest and the richest cylinder of a cell.
func extremes(cs []BalanceCylinder) (lean, rich int) {
	for k, c := range cs {
		if c.ErrorPct > cs[lean].ErrorPct {
			lean = k
		}
		if c.ErrorPct < cs[rich].ErrorPct {
			rich = k
		}
	}
	return lean, rich
}

// WriteFiles writes the report into dir: Balance_Trim_<cylinder>.csv (the
// trims as multipliers, 1.0000 where the cell is balanced or unknown) and
// Cylinder_Balance_Report.json. It returns the names written.
func (b *BalanceReport) WriteFiles(dir string) ([]string, error) {
	var names []string
	for c, t := range b.Trims {
		name := "Balance_Trim_" + b.Cylinders[c] + ".csv"
		names = append(names, name)
		if err := writeFileAtomic(filepath.Join(dir, name), func(w io.Writer) error { return t.WriteCSV(w, multCSV) }); err != nil {
			return names, err
		}
	}
	name := "Cylinder_Balance_Report.json"
	names = append(names, name)
	err := writeJSONFile(dir, name, b)
	return names, err
}

// MarshalJSON writes NaN figures as null.
func (c BalanceCylinder) MarshalJSON() ([]byte, error) {
	type plain BalanceCylinder
	p := plain(c)
	out := struct {
		plain
		StdErrPct *float64 `json:"std_err_pct"`
	}{plain: p}
	if Has(c.StdErrPct) {
		out.StdErrPct = &c.StdErrPct
	}
	return json.Marshal(out)
}

// MarshalJSON writes NaN figures as null.
func (c BalanceCell) MarshalJSON() ([]byte, error) {
	type plain BalanceCell
	out := struct {
		plain
		NoisePct *float64 `json:"noise_pct"`
	}{plain: plain(c)}
	if Has(c.NoisePct) {
		out.NoisePct = &c.NoisePct
	}
	return json.Marshal(out)
}
