package ve

import (
	"fmt"
	"math"
)

// Decel fuel management: the samples the analysis rejects as decel (closed
// throttle with falling RPM, or a fuel-cut reading; the conditioner's one
// decel detector) are kept apart, per cylinder, on a fine grid of their
// own: how many, how many read fuel cut (exhaust of air), and, for the
// fueled ones, how lean they ran against target. A cell whose fueled decel
// samples run lean by more than DecelOptions.LeanPct, and whose decel
// samples are mostly fueled (in a fuel-cut cell the readings between
// target and cut are the wideband's way into and out of the cut), is
// popping-prone (a lean closed-throttle mixture ignites in the exhaust),
// and the analysis
// proposes enriching the decel fuel there, within MaxEnrichPct. This is
// its own result (Result.Decel) and its own exports; the WOT and
// part-throttle correction never sees a decel sample.

// DecelOptions configure the decel analysis. The zero value is ready.
type DecelOptions struct {
	// LeanPct is how lean (measured/target - 1, percent) a cell's fueled
	// decel samples must run on average to be popping-prone; 0 means 3.
	LeanPct float64
	// MaxEnrichPct bounds a proposed enrichment; 0 means 15.
	MaxEnrichPct float64
	// MinSamples is the fueled decel samples a cell needs for a verdict;
	// 0 means 10.
	MinSamples int
}

func (o DecelOptions) filled() DecelOptions {
	if o.LeanPct == 0 {
		o.LeanPct = 3
	}
	if o.MaxEnrichPct == 0 {
		o.MaxEnrichPct = 15
	}
	if o.MinSamples == 0 {
		o.MinSamples = 10
	}
	return o
}

func (o DecelOptions) validate() error {
	switch {
	case math.IsNaN(o.LeanPct) || o.LeanPct < 0 || o.LeanPct > 50:
		return fmt.Errorf("ve: Decel.LeanPct %v is outside 0..50", o.LeanPct)
	case math.IsNaN(o.MaxEnrichPct) || o.MaxEnrichPct < 0 || o.MaxEnrichPct > 50:
		return fmt.Errorf("ve: Decel.MaxEnrichPct %v is outside 0..50", o.MaxEnrichPct)
	case o.MinSamples < 0:
		return fmt.Errorf("ve: Decel.MinSamples %d is negative", o.MinSamples)
	}
	return nil
}

// Fine bins of the decel accumulator, independent of the analysis grid
// (which decel samples, below its load range, often miss).
const (
	decelRPMBin  = 100.0
	decelLoadBin = 2.0
)

type decelKey struct{ r, l int32 }

type decelBin struct {
	n, cut, fueled int
	ratio          float64 // sum of measured/target over fueled samples
	maxAFR         float64
}

// decelAcc keeps one cylinder's decel samples; its size is bounded by the
// range of speed and load, not by the log's length.
type decelAcc struct {
	bins map[decelKey]*decelBin
}

// add records a decel sample; cut says it read fuel cut.
func (d *decelAcc) add(rpm, load, meas, target float64, cut bool) {
	if !Has(rpm) || !Has(load) {
		return
	}
	if d.bins == nil {
		d.bins = make(map[decelKey]*decelBin)
	}
	k := decelKey{int32(math.Round(rpm / decelRPMBin)), int32(math.Round(load / decelLoadBin))}
	b := d.bins[k]
	if b == nil {
		b = &decelBin{}
		d.bins[k] = b
	}
	b.n++
	if Has(meas) {
		b.maxAFR = math.Max(b.maxAFR, meas)
	}
	switch {
	case cut:
		b.cut++
	case Has(meas) && Has(target) && target > 0:
		b.fueled++
		b.ratio += meas / target
	}
}

// DecelCylinder is one cylinder's decel analysis on the result's grid.
type DecelCylinder struct {
	Cylinder int    `json:"cylinder"`
	Name     string `json:"name"`
	// Samples counts the decel samples per cell (fueled and fuel cut); Cut
	// those that read fuel cut.
	Samples int `json:"samples"`
	Cut     int `json:"fuel_cut_samples"`
	// Counts, LeanPct, MaxAFR and Enrichment are grids: decel samples per
	// cell, the fueled ones' mean lean (percent; NaN with none), the
	// leanest reading, and the proposed enrichment of the decel fuel in
	// percent (0 where none is needed, NaN where the evidence is short).
	Counts     *Table `json:"-"`
	LeanPct    *Table `json:"-"`
	MaxAFR     *Table `json:"-"`
	Enrichment *Table `json:"-"`
	// PopProne lists the cells where enrichment is proposed.
	PopProne []DecelCell `json:"pop_prone"`
}

// DecelCell is one popping-prone cell.
type DecelCell struct {
	RPM          float64 `json:"rpm"`
	Load         float64 `json:"load"`
	Fueled       int     `json:"fueled_samples"`
	LeanPct      float64 `json:"lean_pct"`
	MaxAFR       float64 `json:"max_afr"`
	EnrichPct    float64 `json:"enrich_pct"`
	Limited      bool    `json:"limited"`
	CutFraction  float64 `json:"fuel_cut_fraction"`
	SamplesTotal int     `json:"samples"`
}

// finishDecel folds a cylinder's decel bins onto g (nearest cell; samples
// beyond half a cell from the grid's edge are left out).
func finishDecel(d *decelAcc, c int, name string, g Grid, o DecelOptions) DecelCylinder {
	o = o.filled()
	out := DecelCylinder{Cylinder: c, Name: name, PopProne: []DecelCell{}}
	nan := math.NaN()
	out.Counts = MustTable(g.RPM, g.MAP, 0)
	out.Counts.Precision = 0
	out.LeanPct, out.MaxAFR, out.Enrichment = MustTable(g.RPM, g.MAP, nan), MustTable(g.RPM, g.MAP, nan), MustTable(g.RPM, g.MAP, nan)
	nc := len(g.MAP)
	cells := make([]decelBin, len(g.RPM)*nc)
	for k, b := range d.bins {
		rpm, load := float64(k.r)*decelRPMBin, float64(k.l)*decelLoadBin
		if !nearGrid(g.RPM, rpm) || !nearGrid(g.MAP, load) {
			continue
		}
		i := Nearest(g.RPM, rpm)*nc + Nearest(g.MAP, load)
		cb := &cells[i]
		cb.n += b.n
		cb.cut += b.cut
		cb.fueled += b.fueled
		cb.ratio += b.ratio
		cb.maxAFR = math.Max(cb.maxAFR, b.maxAFR)
	}
	for i, b := range cells {
		if b.n == 0 {
			continue
		}
		out.Samples += b.n
		out.Cut += b.cut
		out.Counts.Values[i] = float64(b.n)
		out.MaxAFR.Values[i] = b.maxAFR
		if b.fueled == 0 {
			continue
		}
		lean := 100 * (b.ratio/float64(b.fueled) - 1)
		out.LeanPct.Values[i] = lean
		if b.fueled < o.MinSamples || 2*b.cut >= b.n {
			// Too few, or a fuel-cut cell: its "fueled" readings are the
			// wideband's way into and out of the cut, not a mixture.
			continue
		}
		enrich := 0.0
		if lean > o.LeanPct {
			enrich = lean
		}
		limited := enrich > o.MaxEnrichPct
		enrich = math.Min(enrich, o.MaxEnrichPct)
		out.Enrichment.Values[i] = enrich
		if enrich > 0 {
			out.PopProne = append(out.PopProne, DecelCell{RPM: g.RPM[i/nc], Load: g.MAP[i%nc], Fueled: b.fueled,
				LeanPct: lean, MaxAFR: b.maxAFR, EnrichPct: enrich, Limited: limited,
				CutFraction: float64(b.cut) / float64(b.n), SamplesTotal: b.n})
		}
	}
	return out
}

// nearGrid reports whether x is within half a step of axis's range.
func nearGrid(axis []float64, x float64) bool {
	n := len(axis)
	if n == 0 {
		return false
	}
	lo, hi := axis[0], axis[n-1]
	step := 0.0
	if n > 1 {
		step = math.Min(axis[1]-axis[0], axis[n-1]-axis[n-2])
	}
	return x >= lo-step/2 && x <= hi+step/2
}

// writeDecel writes Decel_Enrichment_<cylinder>.csv per cylinder with decel
// samples (through put, which records their names), and Decel_Report.json
// when any cylinder had some; it returns the report's name.
func (r *Result) writeDecel(dir string, put func(name string, t *Table, f CSVFormat) error) ([]string, error) {
	var names []string
	found := false
	for _, d := range r.Decel {
		if d.Samples == 0 {
			continue
		}
		found = true
		if err := put("Decel_Enrichment_"+d.Name+".csv", d.Enrichment, percentCSV); err != nil {
			return names, err
		}
	}
	if !found {
		return names, nil
	}
	name := "Decel_Report.json"
	names = append(names, name)
	err := writeJSONFile(dir, name, map[string]any{"options": r.Options.Decel.filled(), "cylinders": r.Decel})
	return names, err
}
