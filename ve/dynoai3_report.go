package ve

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// AnomalyJSON returns Anomaly_Hypotheses.json as the predecessor writes it:
// the anomalies, then each cylinder's row counters and per-cell MAD and
// hits (json.dumps indent 2, ASCII only, no final newline).
func (r *DynoAI3Result) AnomalyJSON() ([]byte, error) {
	if r.MAD[0] == nil || r.MAD[1] == nil || r.Coverage[0] == nil || r.Coverage[1] == nil {
		return nil, fmt.Errorf("ve: %w", errNoDiagnostics)
	}
	anoms := make([]any, len(r.Anomalies))
	for i, a := range r.Anomalies {
		anoms[i] = a.object()
	}
	diag := DynoAI3Object{}
	for c, cyl := range []string{"front", "rear"} {
		d := r.Diagnostics[c]
		rows, cols := r.MAD[c].Rows(), r.MAD[c].Cols()
		mad, hits := make([]any, rows), make([]any, rows)
		for i := range rows {
			mr, hr := make([]any, cols), make([]any, cols)
			for j := range cols {
				if v := r.MAD[c].Get(i, j); Has(v) {
					mr[j] = v
				}
				hr[j] = int(r.Coverage[c].Get(i, j))
			}
			mad[i], hits[i] = mr, hr
		}
		diag = append(diag, DynoAI3Field{cyl, DynoAI3Object{
			{"accepted_wb", d.Accepted},
			{"temp_out_of_range", d.TempOutOfRange},
			{"map_out_of_range", d.MAPOutOfRange},
			{"tps_out_of_range", d.TPSOutOfRange},
			{"ve_out_of_range", 0},
			{"bad_afr_or_request_afr", d.BadAFR},
			{"no_requested_afr", d.NoRequestedAFR},
			{"total_records_processed", d.TotalRecords},
			{"per_bin_stats", DynoAI3Object{{"mad", mad}, {"hits", hits}}},
		}})
	}
	var b bytes.Buffer
	err := writePyJSON(&b, DynoAI3Object{{"anomalies", anoms}, {"correction_diagnostics", diag}}, 0, true)
	return b.Bytes(), err
}

// ConfidenceJSON returns ConfidenceReport.json as the predecessor writes
// it; its calculation_time_ms is volatile.
func (r *DynoAI3Result) ConfidenceJSON() ([]byte, error) {
	if r.Confidence == nil || r.Confidence.json == nil {
		return nil, fmt.Errorf("ve: %w", errNoDiagnostics)
	}
	var b bytes.Buffer
	err := writePyJSON(&b, r.Confidence.json, 0, true)
	return b.Bytes(), err
}

// DiagnosticsReport returns Diagnostics_Report.txt as the predecessor
// writes it: the confidence block, each cylinder's row counters and the
// anomalies (LF, no final newline). Its "Calculation time" line is
// volatile.
func (r *DynoAI3Result) DiagnosticsReport() ([]byte, error) {
	if r.Confidence == nil {
		return nil, fmt.Errorf("ve: %w", errNoDiagnostics)
	}
	var l []string
	add := func(f string, a ...any) { l = append(l, fmt.Sprintf(f, a...)) }
	add("Dyno AI Tuner v1.2 Diagnostics")
	add("")
	bar := strings.Repeat("=", 60)
	c := r.Confidence
	add("%s", bar)
	add("=== TUNE CONFIDENCE SCORE ===")
	add("%s", bar)
	add("")
	add("Overall Score: %s%%", pyRepr(c.Overall, false))
	add("Letter Grade: %s - %s", c.Grade, c.Description)
	add("")
	add("Component Scores:")
	for _, k := range c.Components {
		add("  %s: %.1f%% (weight: %s)", strings.ToUpper(k.Name), k.Score, k.Weight)
		for _, d := range k.Details {
			add("    - %s: %s", d.Key, pyStr(d.Value))
		}
	}
	add("")
	add("Region Breakdown:")
	for _, rg := range c.Regions {
		add("  %s:", strings.ToUpper(rg.Name))
		add("    Coverage: %.1f%% (%d/%d cells)", rg.CoveragePct, rg.Covered, rg.Total)
		add("    Avg MAD: %.3f", rg.AverageMAD)
	}
	add("")
	if len(c.Recommendations) > 0 {
		add("RECOMMENDATIONS:")
		for i, t := range c.Recommendations {
			add("  %d. %s", i+1, t)
		}
		add("")
	}
	if len(c.WeakAreas) > 0 {
		add("WEAK AREAS NEEDING MORE DATA:")
		for _, t := range c.WeakAreas {
			add("  - %s", t)
		}
		add("")
	}
	add("Calculation time: %.2f ms", c.Elapsed.Seconds()*1000)
	add("")
	add("%s", bar)
	add("")
	add("=== AFR Correction Data Quality ===")
	add("")
	for i, cyl := range []string{"FRONT", "REAR"} {
		d := r.Diagnostics[i]
		add("%s CYLINDER:", cyl)
		add("  Total records processed: %d", d.TotalRecords)
		add("  Accepted WB records: %d", d.Accepted)
		add("  No requested AFR: %d", d.NoRequestedAFR)
		add("  Bad AFR or request AFR: %d", d.BadAFR)
		add("  Temp out of range: %d", d.TempOutOfRange)
		add("  MAP out of range: %d", d.MAPOutOfRange)
		add("  TPS out of range: %d", d.TPSOutOfRange)
		add("  VE out of range: 0")
		add("")
	}
	add("")
	add("=== Anomaly Detection ===")
	add("")
	if len(r.Anomalies) == 0 {
		add("No strong anomalies detected under current data/thresholds.")
	}
	for i, a := range r.Anomalies {
		add("%d. [%s] score=%s", i+1, a.Type, pyRepr(a.Score, false))
		switch {
		case a.Cell != nil:
			add("   cell: RPM %s / %s kPa", pyStr(pyBin(a.Cell.RPM)), pyStr(pyBin(a.Cell.KPA)))
		case a.Band != nil:
			add("   band: RPM [%s, %s] / kPa [%s, %s]", pyStr(pyBin(a.Band.RPM[0])), pyStr(pyBin(a.Band.RPM[1])),
				pyStr(pyBin(a.Band.KPA[0])), pyStr(pyBin(a.Band.KPA[1])))
		case a.Cells != nil:
			cells := make([]string, len(a.Cells))
			for k, cl := range a.Cells {
				hot := ""
				if cl.Hot {
					hot = " hot"
				}
				cells[k] = fmt.Sprintf("(%s,%s%s)", pyStr(pyBin(cl.RPM)), pyStr(pyBin(cl.KPA)), hot)
			}
			add("   cells: %s ...", strings.Join(cells, ", "))
		}
		add("   why: %s", a.Explanation)
		add("   next: %s", strings.Join(a.NextChecks, ", "))
	}
	return []byte(strings.Join(l, "\n")), nil
}

// errNoDiagnostics is the error of the writing methods on a result that
// DynoAI3Compat did not make.
var errNoDiagnostics = errors.New("the result lacks the toolkit's grids or diagnostics (only DynoAI3Compat's results have them)")

// pyStr is Python's str of a JSON-like scalar.
func pyStr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case float64:
		return pyRepr(x, false)
	}
	return fmt.Sprint(v)
}
