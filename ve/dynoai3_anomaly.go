package ve

import (
	"fmt"
	"math"
	"slices"
)

// DynoAI3Anomaly is one finding of the predecessor's anomaly diagnostics
// (ve-afr spec §6.6), in its order: spatial discontinuities (row-major),
// cylinder fueling imbalance, possible exhaust leak, knock cluster,
// electrical supply correlation. Exactly one of Cell, Band and Cells is set.
//
// The reference runs of the predecessor only ever flag spatial
// discontinuities, which match its files to the last digit; the other four
// checks follow the spec and reproduce its unit vectors (ve-afr spec §9.1),
// but their exact file text (the exhaust-leak type name, the knock
// cluster's score as a float) is the spec's word, not a file's.
type DynoAI3Anomaly struct {
	Type  string
	Score float64
	Cell  *DynoAI3Cell  // spatial discontinuity: the cell, by bin values
	Band  *DynoAI3Band  // imbalance and exhaust leak: the band looked at
	Cells []DynoAI3Cell // knock cluster: the first ten cells, Hot marked
	// Explanation and NextChecks are the predecessor's texts.
	Explanation string
	NextChecks  []string
}

// DynoAI3Cell is a cell by its bin values; Hot marks a knock-cluster cell
// whose intake ran at HotIATF or hotter.
type DynoAI3Cell struct {
	RPM, KPA float64
	Hot      bool
}

// DynoAI3Band is an inclusive RPM x kPa band.
type DynoAI3Band struct{ RPM, KPA [2]float64 }

// The predecessor's anomaly types.
const (
	DynoAI3Spatial      = "Spatial discontinuity"
	DynoAI3Imbalance    = "Cylinder fueling imbalance"
	DynoAI3ExhaustLeak  = "Possible exhaust leak (low MAP bias)"
	DynoAI3KnockCluster = "Knock cluster"
	DynoAI3Electrical   = "Electrical supply correlation"
)

// dynoai3AnomalyIn is what the diagnostics read.
type dynoai3AnomalyIn struct {
	ve             *Table       // final, clamped
	errF, errR     *Table       // per-cylinder AFR error (rear with its bias)
	knockF, knockR *Table       // knock max (0 where none)
	iatF, iatR     *Table       // IAT max (NaN where none)
	hits           []int        // coverage front + rear
	corr           *dynoai3Corr // (err, batt) correlation of the raw records
}

// median is the predecessor's median: the middle value, or the mean of the
// two middle values. It sorts v.
func median(v []float64) float64 {
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// madOf is the median absolute deviation from the median (unscaled). It
// sorts v.
func madOf(v []float64) float64 {
	m := median(v)
	dev := make([]float64, len(v))
	for i, x := range v {
		dev[i] = math.Abs(x - m)
	}
	return median(dev)
}

// meanOf is Python's sum(v) / len(v), summed left to right.
func meanOf(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func inBand(rpm, kpa float64, b DynoAI3Band) bool {
	return rpm >= b.RPM[0] && rpm <= b.RPM[1] && kpa >= b.KPA[0] && kpa <= b.KPA[1]
}

// dynoai3Anomalies runs the five checks of the predecessor's
// anomaly diagnostics.
func dynoai3Anomalies(in dynoai3AnomalyIn) []DynoAI3Anomaly {
	var out []DynoAI3Anomaly
	g := in.ve
	rows, cols := g.Rows(), g.Cols()

	// 1. Spatial discontinuity: robust z-score of each cell's roughness.
	rough := make([]float64, len(g.Values))
	var roughs []float64
	for r := range rows {
		for c := range cols {
			v := g.Get(r, c)
			if !Has(v) {
				continue
			}
			sum, k := 0.0, 0
			neighbours(g, r, c, func(n float64) { sum += n; k++ })
			x := 0.0
			if k > 0 {
				x = math.Abs(v - sum/float64(k))
			}
			rough[r*cols+c] = x
			roughs = append(roughs, x)
		}
	}
	if len(roughs) > 0 {
		med := median(slices.Clone(roughs))
		mad := madOf(slices.Clone(roughs))
		if mad == 0 {
			mad = 1e-6
		}
		for i, v := range g.Values {
			if !Has(v) {
				continue
			}
			z := 0.6745 * (rough[i] - med) / mad
			if z > 3.5 && in.hits[i] > 0 {
				out = append(out, DynoAI3Anomaly{
					Type: DynoAI3Spatial, Score: z,
					Cell:        &DynoAI3Cell{RPM: g.RPM[i/cols], KPA: g.MAP[i%cols]},
					Explanation: "Large VE change vs neighbors; could be data artifact or real airflow quirk.",
					NextChecks:  []string{"Re-run steady-state in this cell", "Inspect for vacuum leaks, throttle sync, or sensor noise"},
				})
			}
		}
	}

	// 2. Cylinder fueling imbalance: rear minus front in the mid band.
	midBand := DynoAI3Band{RPM: [2]float64{2500, 3800}, KPA: [2]float64{65, 95}}
	var diffs []float64
	for i, f := range in.errF.Values {
		rr := in.errR.Values[i]
		if Has(f) && Has(rr) && inBand(g.RPM[i/cols], g.MAP[i%cols], midBand) {
			diffs = append(diffs, rr-f)
		}
	}
	if len(diffs) > 0 {
		if mid := meanOf(diffs); math.Abs(mid) >= 3.0 {
			out = append(out, DynoAI3Anomaly{
				Type: DynoAI3Imbalance, Score: math.Abs(mid), Band: &midBand,
				Explanation: fmt.Sprintf("Rear minus front AFR error ~ %+.1f%% in mid band; suggests rear needs VE bias or injector variance.", mid),
				NextChecks:  []string{"Flow test injectors", "Apply rear VE bias 2–3% then retest", "Check exhaust leaks near rear sensor"},
			})
		}
	}

	// 3. Possible exhaust leak: lean bias at low MAP not seen at mid load.
	both := combineDynoAI3(in.errF, in.errR)
	bandMean := func(b DynoAI3Band) (float64, bool) {
		var v []float64
		for i, x := range both.Values {
			if Has(x) && inBand(g.RPM[i/cols], g.MAP[i%cols], b) {
				v = append(v, x)
			}
		}
		if len(v) == 0 {
			return 0, false
		}
		return meanOf(v), true
	}
	lowBand := DynoAI3Band{RPM: [2]float64{1500, 2500}, KPA: [2]float64{35, 50}}
	low, okLow := bandMean(lowBand)
	mid, okMid := bandMean(DynoAI3Band{RPM: [2]float64{2500, 3500}, KPA: [2]float64{65, 80}})
	if okLow && okMid && low-mid >= 4.0 {
		out = append(out, DynoAI3Anomaly{
			Type: DynoAI3ExhaustLeak, Score: low - mid, Band: &lowBand,
			Explanation: "Lean bias at low MAP not seen at higher load suggests O2 contamination/leak upstream.",
			NextChecks:  []string{"Smoke test exhaust joints", "Check O2 bung welds", "Use TT sensor condition test in ambient air"},
		})
	}

	// 4. Knock cluster.
	var knock []DynoAI3Cell
	for i := range g.Values {
		if in.knockF.Values[i] >= 1.5 || in.knockR.Values[i] >= 1.5 {
			hot := in.iatF.Values[i] >= HotIATF || in.iatR.Values[i] >= HotIATF // NaN compares false
			knock = append(knock, DynoAI3Cell{RPM: g.RPM[i/cols], KPA: g.MAP[i%cols], Hot: hot})
		}
	}
	if len(knock) > 0 {
		out = append(out, DynoAI3Anomaly{
			Type: DynoAI3KnockCluster, Score: float64(len(knock)), Cells: knock[:min(10, len(knock))],
			Explanation: "Knock retard ≥1.5° observed; hotter cells likely need richer AFR and/or timing pull.",
			NextChecks:  []string{"Richen 0.1–0.2 λ eq. in affected cells", "Pull 1–2° timing; validate"},
		})
	}

	// 5. Electrical supply correlation: Pearson r of AFR error and battery.
	if c := in.corr; c != nil && c.n >= 10 && c.ready {
		r := c.exact()
		if r <= -0.4 {
			out = append(out, DynoAI3Anomaly{
				Type: DynoAI3Electrical, Score: math.Abs(r),
				Explanation: fmt.Sprintf("AFR error correlates with low battery voltage (r=%+.2f); injector latency or pump voltage sag may bias fueling.", r),
				NextChecks:  []string{"Log battery voltage under load", "Check grounds/charging", "Compensate injector offset if supported"},
			})
		}
	}
	return out
}

// object is the anomaly as Anomaly_Hypotheses.json holds it.
func (a DynoAI3Anomaly) object() DynoAI3Object {
	o := DynoAI3Object{{"type", a.Type}, {"score", a.Score}}
	switch {
	case a.Cell != nil:
		o = append(o, DynoAI3Field{"cell", DynoAI3Object{{"rpm", pyBin(a.Cell.RPM)}, {"kpa", pyBin(a.Cell.KPA)}}})
	case a.Band != nil:
		o = append(o, DynoAI3Field{"cell_band", DynoAI3Object{
			{"rpm", []any{pyBin(a.Band.RPM[0]), pyBin(a.Band.RPM[1])}},
			{"kpa", []any{pyBin(a.Band.KPA[0]), pyBin(a.Band.KPA[1])}},
		}})
	case a.Cells != nil:
		cells := make([]any, len(a.Cells))
		for i, c := range a.Cells {
			cells[i] = DynoAI3Object{{"rpm", pyBin(c.RPM)}, {"kpa", pyBin(c.KPA)}, {"hot", c.Hot}}
		}
		o = append(o, DynoAI3Field{"cells", cells})
	}
	checks := make([]any, len(a.NextChecks))
	for i, c := range a.NextChecks {
		checks[i] = c
	}
	return append(o, DynoAI3Field{"explanation", a.Explanation}, DynoAI3Field{"next_checks", checks})
}
