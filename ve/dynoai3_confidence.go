package ve

import (
	"fmt"
	"strings"
	"time"
)

// DynoAI3Confidence is the predecessor's tune confidence score
// (ConfidenceReport.json and the report's first block; ve-afr spec §6.8):
// coverage 40 %, consistency 30 %, anomalies 15 % and clamping 15 %.
type DynoAI3Confidence struct {
	Overall     float64 // 0..100, one decimal
	Grade       string  // A, B, C or D
	Description string  // the grade's text
	// Components are coverage, consistency, anomalies and clamping, in that
	// order.
	Components      [4]DynoAI3Component
	Regions         [3]DynoAI3Region // idle, cruise, wot
	Recommendations []string
	WeakAreas       []string
	// Elapsed is the scoring's own time (volatile, as in the predecessor).
	Elapsed time.Duration

	json DynoAI3Object // the report as the predecessor writes it, ints and all
}

// DynoAI3Component is one weighted part of the confidence score; Details
// are the predecessor's keys and values in its order.
type DynoAI3Component struct {
	Name    string
	Score   float64
	Weight  string
	Details DynoAI3Object
}

// DynoAI3Region is the coverage and consistency of one operating region.
type DynoAI3Region struct {
	Name             string
	CoveragePct      float64
	Covered, Total   int
	AverageMAD       float64
	RPMBand, KPABand [2]float64
}

var dynoai3Regions = [3]DynoAI3Region{
	{Name: "idle", RPMBand: [2]float64{1000, 2000}, KPABand: [2]float64{20, 40}},
	{Name: "cruise", RPMBand: [2]float64{2000, 3500}, KPABand: [2]float64{40, 70}},
	{Name: "wot", RPMBand: [2]float64{3000, 6500}, KPABand: [2]float64{85, 105}},
}

// pyNum is a Python number: an int where the predecessor's arithmetic
// stays in ints (min(100, x) returning its 100, max(0, x) its 0), else a
// float.
type pyNum struct {
	v     float64
	isInt bool
}

func (n pyNum) json() any {
	if n.isInt {
		return int(n.v)
	}
	return n.v
}

func pyInt(v int) pyNum       { return pyNum{float64(v), true} }
func pyFloat(v float64) pyNum { return pyNum{v, false} }

// pyMin is Python's min(a, b): the first of equal values.
func pyMin(a, b pyNum) pyNum {
	if b.v < a.v {
		return b
	}
	return a
}

// pyMax is Python's max(a, b): the first of equal values.
func pyMax(a, b pyNum) pyNum {
	if b.v > a.v {
		return b
	}
	return a
}

func (n pyNum) round(d int) pyNum {
	if n.isInt {
		return n
	}
	return pyFloat(pyRound(n.v, d))
}

// dynoai3Confidence scores a run. mad are the two cylinders' MAD grids;
// hits the coverage front + rear; anomalies the diagnostics' findings;
// clamped the number of cells the clamp moved.
func dynoai3Confidence(g Grid, mad [2]*Table, hits []int, anomalies []DynoAI3Anomaly, clamped int) *DynoAI3Confidence {
	start := time.Now()
	const total = 55
	cols := len(g.MAP)
	in := func(i int, r DynoAI3Region) bool {
		rpm, kpa := g.RPM[i/cols], g.MAP[i%cols]
		return rpm >= r.RPMBand[0] && rpm <= r.RPMBand[1] && kpa >= r.KPABand[0] && kpa <= r.KPABand[1]
	}

	// Coverage.
	well := 0
	for _, h := range hits {
		if h >= 10 {
			well++
		}
	}
	covPct := float64(well) / total * 100
	cov := pyMin(pyInt(100), pyFloat(covPct*1.2))
	regions := dynoai3Regions
	for k := range regions {
		r := &regions[k]
		var mads []float64
		for i, h := range hits {
			if !in(i, *r) {
				continue
			}
			r.Total++
			if h >= 10 {
				r.Covered++
			}
			for c := range 2 {
				if v := mad[c].Values[i]; Has(v) && v > 0 {
					mads = append(mads, v)
				}
			}
		}
		if r.Total > 0 {
			r.CoveragePct = float64(r.Covered) / float64(r.Total) * 100
		}
		if len(mads) > 0 {
			r.AverageMAD = meanOf(mads)
		}
	}

	// Consistency.
	var mads []float64
	for c := range 2 {
		for _, v := range mad[c].Values {
			if Has(v) && v > 0 {
				mads = append(mads, v)
			}
		}
	}
	m := 0.0
	if len(mads) > 0 {
		m = meanOf(mads)
	}
	var cons pyNum
	switch {
	case m < 0.5:
		cons = pyInt(100)
	case m < 1.0:
		cons = pyFloat(90 - (m-0.5)*40)
	case m < 2.0:
		cons = pyFloat(70 - (m-1)*40)
	default:
		cons = pyMax(pyInt(0), pyFloat(30-(m-2)*15))
	}

	// Anomalies.
	n, high := len(anomalies), 0
	for _, a := range anomalies {
		if a.Score > 3.0 {
			high++
		}
	}
	var anom pyNum
	switch {
	case n == 0:
		anom = pyInt(100)
	case n <= 2:
		anom = pyInt(85)
	case n <= 5:
		anom = pyInt(70)
	default:
		anom = pyMax(pyInt(0), pyInt(70-(n-5)*10))
	}
	anom = pyMax(pyInt(0), pyNum{anom.v - float64(10*high), anom.isInt})

	// Clamping.
	cp := float64(clamped) / total * 100
	var clamp pyNum
	switch {
	case cp == 0:
		clamp = pyInt(100)
	case cp < 5:
		clamp = pyInt(90)
	case cp < 10:
		clamp = pyInt(75)
	case cp < 20:
		clamp = pyInt(50)
	default:
		clamp = pyMax(pyInt(0), pyFloat(50-(cp-20)*2))
	}

	overall := pyRound(cov.v*0.4+cons.v*0.3+anom.v*0.15+clamp.v*0.15, 1)
	grade, desc := "D", "Poor - Significant issues require attention"
	switch {
	case overall >= 85:
		grade, desc = "A", "Excellent - Ready for deployment"
	case overall >= 70:
		grade, desc = "B", "Good - Minor improvements recommended"
	case overall >= 50:
		grade, desc = "C", "Fair - Additional data collection needed"
	}

	var recs, weak []string
	if covPct < 60 {
		recs = append(recs, fmt.Sprintf("Collect more data: Only %.1f%% of cells have sufficient data (≥10 hits)", covPct))
		for _, r := range regions {
			if r.CoveragePct < 50 {
				weak = append(weak, fmt.Sprintf("%s (%.0f%% covered)", r.Name, r.CoveragePct))
			}
		}
		if len(weak) > 0 {
			recs = append(recs, "Focus data collection on: "+strings.Join(weak, ", "))
		}
	}
	if m > 1.5 {
		recs = append(recs, fmt.Sprintf("Data consistency is poor (MAD=%.2f). Check for mechanical issues, sensor problems, or unstable operating conditions.", m))
		var worst []string
		for _, r := range regions {
			if r.AverageMAD > 2.0 {
				worst = append(worst, fmt.Sprintf("%s (MAD=%.2f)", r.Name, r.AverageMAD))
			}
		}
		if len(worst) > 0 {
			recs = append(recs, "Worst consistency in: "+strings.Join(worst, ", "))
		}
	}
	if cp > 10 {
		recs = append(recs, fmt.Sprintf("%.1f%% of corrections hit clamp limits. Consider increasing clamp limits or investigating root causes.", cp))
	}
	if high > 0 {
		recs = append(recs, fmt.Sprintf("%d high-severity anomalies detected. Review Anomaly_Hypotheses.json for details.", high))
	}
	if overall >= 85 && len(recs) == 0 {
		recs = append(recs, "Tune quality is excellent. No major improvements needed.")
	}

	c := &DynoAI3Confidence{Overall: overall, Grade: grade, Description: desc, Regions: regions,
		Recommendations: recs, WeakAreas: weak}
	c.Components = [4]DynoAI3Component{
		{Name: "coverage", Score: cov.round(1).v, Weight: "40%", Details: DynoAI3Object{
			{"well_covered_cells", well}, {"total_cells", total},
			{"coverage_percentage", pyRound(covPct, 1)}, {"threshold_hits", 10}}},
		{Name: "consistency", Score: cons.round(1).v, Weight: "30%", Details: DynoAI3Object{
			{"average_mad", pyRound(m, 3)}, {"mad_samples", len(mads)}}},
		{Name: "anomalies", Score: anom.v, Weight: "15%", Details: DynoAI3Object{
			{"total_anomalies", n}, {"high_severity", high}}},
		{Name: "clamping", Score: clamp.round(1).v, Weight: "15%", Details: DynoAI3Object{
			{"clamped_cells", clamped}, {"clamp_percentage", pyRound(cp, 1)}}},
	}
	scores := [4]pyNum{cov.round(1), cons.round(1), anom, clamp.round(1)}
	c.Elapsed = time.Since(start)

	comps := DynoAI3Object{}
	for i, k := range c.Components {
		comps = append(comps, DynoAI3Field{k.Name, DynoAI3Object{
			{"score", scores[i].json()}, {"weight", k.Weight}, {"details", k.Details}}})
	}
	regs := DynoAI3Object{}
	for _, r := range regions {
		regs = append(regs, DynoAI3Field{r.Name, DynoAI3Object{
			{"coverage_percentage", pyRound(r.CoveragePct, 1)},
			{"cells_covered", r.Covered}, {"cells_total", r.Total},
			{"average_mad", pyRound(r.AverageMAD, 3)}}})
	}
	c.json = DynoAI3Object{
		{"overall_score", overall},
		{"letter_grade", grade},
		{"grade_description", desc},
		{"component_scores", comps},
		{"region_breakdown", regs},
		{"recommendations", anySlice(recs)},
		{"weak_areas", anySlice(weak)},
		{"performance", DynoAI3Object{{"calculation_time_ms", pyRound(c.Elapsed.Seconds()*1000, 2)}}},
		{"methodology", DynoAI3Object{
			{"description", "Confidence score based on weighted combination of coverage, consistency, anomalies, and clamping"},
			{"weights", DynoAI3Object{
				{"coverage", "40% - Cells with ≥10 hits"},
				{"consistency", "30% - Average MAD (lower is better)"},
				{"anomalies", "15% - Detected issues"},
				{"clamping", "15% - Corrections hitting limits"},
			}},
			{"grading_scale", DynoAI3Object{
				{"A", "≥85% - Excellent"},
				{"B", "70-85% - Good"},
				{"C", "50-70% - Fair"},
				{"D", "<50% - Poor"},
			}},
		}},
	}
	return c
}

func anySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
