package ve

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dynoai/dynoai/afr"
	"github.com/dynoai/dynoai/dyno"
)

// Name returns the name files use for the cylinder: CylinderName, or
// "Combined" for one wideband's correction of every cylinder.
func (c *CylinderResult) Name() string {
	if c.Combined {
		return "Combined"
	}
	return CylinderName(c.Cylinder)
}

// CylinderName returns the name files use for cylinder c: "Front" and
// "Rear" for a V-twin's two, "Cyl3" and so on after.
func CylinderName(c int) string {
	switch c {
	case 0:
		return "Front"
	case 1:
		return "Rear"
	}
	return fmt.Sprintf("Cyl%d", c+1)
}

// Percent returns the correction as a percent change per cell
// ((multiplier - 1) x 100), the form tuning software pastes as "% change".
// Cells without evidence are empty.
func (c *CylinderResult) Percent() *Table {
	out := c.Correction.Clone()
	out.Precision = 2
	for i, m := range c.Correction.Values {
		if c.Cells[i].Confidence == ConfidenceNone {
			out.Values[i] = math.NaN()
			continue
		}
		out.Values[i] = (m - 1) * 100
	}
	return out
}

// grid builds a table from a per-cell function.
func (c *CylinderResult) grid(prec int, f func(Cell) float64) *Table {
	t := MustTable(c.Correction.RPM, c.Correction.MAP, math.NaN())
	t.Precision = prec
	for i, cell := range c.Cells {
		t.Values[i] = f(cell)
	}
	return t
}

// AFRError returns the mean measured minus target AFR per cell, in AFR
// points (positive = lean). Empty where no sample landed.
func (c *CylinderResult) AFRError() *Table {
	return c.grid(2, func(x Cell) float64 { return x.MeanAFR - x.MeanTarget })
}

// Coverage returns the hits per cell.
func (c *CylinderResult) Coverage() *Table {
	return c.grid(0, func(x Cell) float64 { return float64(x.Hits) })
}

// TorqueMap and PowerMap return the weighted mean torque and power per cell.
func (c *CylinderResult) TorqueMap() *Table {
	return c.grid(1, func(x Cell) float64 { return x.Torque })
}

// PowerMap returns the weighted mean power (HP) per cell.
func (c *CylinderResult) PowerMap() *Table { return c.grid(1, func(x Cell) float64 { return x.Power }) }

// SparkSuggestions returns the K3 spark change per cell in degrees
// (negative = retard) from the knock and intake temperature each cell saw;
// 0 where nothing calls for a change.
func (c *CylinderResult) SparkSuggestions() *Table {
	return c.grid(2, func(x Cell) float64 {
		k := x.KnockMax
		if math.IsNaN(k) {
			k = 0
		}
		iatF := math.NaN()
		if Has(x.IATMax) {
			iatF = x.IATMax*9/5 + 32
		}
		return SparkSuggestion(k, iatF)
	})
}

// Anomaly is something in the data a tuner should look at.
type Anomaly struct {
	Kind     string  `json:"kind"`
	Cylinder string  `json:"cylinder,omitempty"`
	RPM      float64 `json:"rpm,omitempty"`
	MAP      float64 `json:"map_kpa,omitempty"`
	Value    float64 `json:"value"`
	Detail   string  `json:"detail"`
}

// Anomalies lists what the result suggests checking: cylinders that
// disagree, knock, noisy cells, lean cells under high load, corrections at
// the clamp. The list is sorted by severity, then cylinder and cell.
func (r *Result) Anomalies() []Anomaly {
	var out []Anomaly
	g := r.Grid
	for ci := range r.Cylinders {
		cr := &r.Cylinders[ci]
		name := cr.Name()
		spark := cr.SparkSuggestions()
		for i := range g.RPM {
			for j := range g.MAP {
				cell := cr.Cell(i, j)
				rpm, mp := g.RPM[i], g.MAP[j]
				if Has(cell.KnockMax) && cell.KnockMax >= 0.5 {
					out = append(out, Anomaly{"knock", name, rpm, mp, cell.KnockMax,
						fmt.Sprintf("up to %.1f° of knock retard; spark suggestion %+.1f°", cell.KnockMax, spark.Get(i, j))})
				}
				if cell.Confidence == ConfidenceNone {
					continue
				}
				if Has(cell.StdErr) && cell.StdErr > 0.02 {
					out = append(out, Anomaly{"noisy_cell", name, rpm, mp, cell.StdErr,
						fmt.Sprintf("standard error %.1f %% over %.0f samples: check the wideband and for transients", cell.StdErr*100, cell.EffectiveSamples)})
				}
				if r.Load == LoadMAP && mp >= 85 && cell.MeanAFR-cell.MeanTarget > 0.5 {
					out = append(out, Anomaly{"lean_under_load", name, rpm, mp, cell.MeanAFR - cell.MeanTarget,
						fmt.Sprintf("%.2f AFR lean of target at high load: fix before more pulls", cell.MeanAFR-cell.MeanTarget)})
				}
				if cell.Clamped {
					out = append(out, Anomaly{"clamped", name, rpm, mp, (cell.Multiplier - 1) * 100,
						fmt.Sprintf("needs %+.1f %%, limited to %+.1f %%: expect another iteration", (cell.Multiplier-1)*100, r.Options.ClampPercent*math.Copysign(1, cell.Multiplier-1))})
				}
			}
		}
	}
	if len(r.Cylinders) >= 2 {
		a, b := &r.Cylinders[0], &r.Cylinders[1]
		for i := range g.RPM {
			for j := range g.MAP {
				ca, cb := a.Cell(i, j), b.Cell(i, j)
				if ca.Confidence == ConfidenceNone || cb.Confidence == ConfidenceNone {
					continue
				}
				if d := (ca.Multiplier - cb.Multiplier) * 100; math.Abs(d) > 3 {
					out = append(out, Anomaly{"cylinder_imbalance", "", g.RPM[i], g.MAP[j], d,
						fmt.Sprintf("%s and %s need corrections %.1f %% apart: check injectors and exhaust leaks", a.Name(), b.Name(), math.Abs(d))})
				}
			}
		}
	}
	// Most dangerous first: a lean cell under load or knock can hurt the
	// engine; the rest costs power or another pull.
	rank := map[string]int{"lean_under_load": 0, "knock": 1, "cylinder_imbalance": 2, "clamped": 3, "noisy_cell": 4}
	sort.SliceStable(out, func(x, y int) bool { return rank[out[x].Kind] < rank[out[y].Kind] })
	return out
}

// Formats of the default exports: LF lines, plain numbers.
var (
	percentCSV = CSVFormat{Cell: CellFormat{Decimals: 2, Signed: true}}
	multCSV    = CSVFormat{Cell: CellFormat{Decimals: 4}}
	oneDPCSV   = CSVFormat{Cell: CellFormat{Decimals: 1}}
	countCSV   = CSVFormat{Cell: CellFormat{Decimals: 0}}
)

// WriteFiles writes the result's exports into dir (created if needed) and
// returns the file names: per cylinder the VE correction in percent and as
// multipliers, a paste-ready block, the AFR error map, coverage, torque and
// power maps and spark suggestions; a Diagnostics.txt report and a
// result.json document for both.
func (r *Result) WriteFiles(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var names []string
	put := func(name string, t *Table, f CSVFormat) error {
		names = append(names, name)
		return writeFileAtomic(filepath.Join(dir, name), func(w io.Writer) error { return t.WriteCSV(w, f) })
	}
	for ci := range r.Cylinders {
		cr := &r.Cylinders[ci]
		n := cr.Name()
		pct := cr.Percent()
		steps := []struct {
			name string
			t    *Table
			f    CSVFormat
		}{
			{"VE_Correction_" + n + ".csv", pct, percentCSV},
			{"VE_Multiplier_" + n + ".csv", cr.Correction, multCSV},
			{"AFR_Error_Map_" + n + ".csv", cr.AFRError(), percentCSV},
			{"Coverage_" + n + ".csv", cr.Coverage(), countCSV},
			{"Torque_Map_" + n + ".csv", cr.TorqueMap(), oneDPCSV},
			{"HP_Map_" + n + ".csv", cr.PowerMap(), oneDPCSV},
			{"Spark_Adjust_Suggestion_" + n + ".csv", cr.SparkSuggestions(), percentCSV},
		}
		for _, s := range steps {
			if err := put(s.name, s.t, s.f); err != nil {
				return names, err
			}
		}
		paste := "VE_Correction_" + n + "_PasteReady.txt"
		names = append(names, paste)
		if err := writeFileAtomic(filepath.Join(dir, paste), func(w io.Writer) error {
			_, err := io.WriteString(w, pct.PasteBlock(percentCSV.Cell))
			return err
		}); err != nil {
			return names, err
		}
	}
	decel, err := r.writeDecel(dir, put)
	names = append(names, decel...)
	if err != nil {
		return names, err
	}
	dl, err := r.writeDecisions(dir)
	names = append(names, dl)
	if err != nil {
		return names, err
	}
	names = append(names, "Diagnostics.txt", "result.json")
	if err := writeFileAtomic(filepath.Join(dir, "Diagnostics.txt"), r.WriteReport); err != nil {
		return names, err
	}
	if err := writeJSONFile(dir, "result.json", r.Document()); err != nil {
		return names, err
	}
	return names, nil
}

// WriteReport writes a readable summary: the channels the log gave, the
// settings, per cylinder the correction grid with hits, what was rejected
// and why, the anomalies, and, when nothing could be corrected, why and
// what to try.
func (r *Result) WriteReport(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "DynoAI %s analysis of %s (%s)\n", Version, nameOr(r.Source), r.Format)
	if r.Channels != nil {
		b.WriteString(r.Channels.String())
	}
	fmt.Fprintf(&b, "samples read: %d; grid %d RPM x %d %s; load axis %s (%s); estimator %s, weighting %s, min samples %g, clamp ±%g %%\n",
		r.Samples, len(r.Grid.RPM), len(r.Grid.MAP), r.loadUnit(), r.Load, r.LoadWhy, r.Options.Estimator, r.Options.Weighting,
		r.Options.MinSamples, r.Options.ClampPercent)
	fmt.Fprintf(&b, "target: %s\n", r.Target)
	if r.Combined {
		b.WriteString("one wideband for all cylinders: one combined correction, to apply to every cylinder's table\n")
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	switch {
	case r.DelayEstimate != nil && r.Delay == r.DelayEstimate.Delay:
		fmt.Fprintf(&b, "wideband delay learned from the log: %v (confidence %.2f, %d pairs); undone: %s\n",
			r.DelayEstimate.Overall.Round(time.Millisecond), r.DelayEstimate.Confidence, r.DelayEstimate.Pairs, delayText(r.Delay))
	case r.DelayEstimate != nil:
		fmt.Fprintf(&b, "wideband delay not learned: the best estimate, %v, has confidence %.2f only (%d pairs); undone: %s (the fallback; -delay sets it)\n",
			r.DelayEstimate.Overall.Round(time.Millisecond), r.DelayEstimate.Confidence, r.DelayEstimate.Pairs, delayText(r.Delay))
	case r.DelayNote != "":
		fmt.Fprintf(&b, "wideband delay could not be learned (%s); undone: %v\n", r.DelayNote, r.Delay.Fixed)
	case !r.Delay.IsZero():
		fmt.Fprintf(&b, "wideband delay undone: %s\n", delayText(r.Delay))
	}
	if len(r.Cylinders) == 0 {
		b.WriteString("\nno cylinder had wideband data: nothing to correct\n")
	}
	for ci := range r.Cylinders {
		cr := &r.Cylinders[ci]
		fmt.Fprintf(&b, "\n%s: %d samples accepted, %d rejected, %d cells corrected, %d clamped\n",
			strings.ToLower(cr.Name()), cr.Accepted, cr.Rejected.Total(), cr.Corrected(), cr.Clamped)
		if cr.Smoothness > 0 {
			fmt.Fprintf(&b, "  node fit: prior weight %.0e (%s), nodes corrected where the standard error is within %.1f %%\n",
				cr.Smoothness, smoothnessSource(r.Options.Smoothness), 100*r.Options.MaxStdErr)
		}
		for _, reason := range Reasons() {
			if n := cr.Rejected[reason]; n > 0 {
				fmt.Fprintf(&b, "  rejected %-14s %d\n", reason.String()+":", n)
			}
		}
		b.WriteString("  VE correction % (hits); '.' = not enough evidence\n")
		fmt.Fprintf(&b, "  %6s", "RPM")
		for _, m := range r.Grid.MAP {
			fmt.Fprintf(&b, " %13s", formatAxis(m)+" "+r.loadUnit())
		}
		b.WriteByte('\n')
		for i, rpm := range r.Grid.RPM {
			fmt.Fprintf(&b, "  %6s", formatAxis(rpm))
			for j := range r.Grid.MAP {
				cell := cr.Cell(i, j)
				if cell.Confidence == ConfidenceNone {
					fmt.Fprintf(&b, " %13s", fmt.Sprintf(". (%d)", cell.Hits))
					continue
				}
				fmt.Fprintf(&b, " %13s", fmt.Sprintf("%+.2f (%d)", (cr.Correction.Get(i, j)-1)*100, cell.Hits))
			}
			b.WriteByte('\n')
		}
	}
	an := r.Anomalies()
	fmt.Fprintf(&b, "\nanomalies: %d\n", len(an))
	const shown = 20
	for k, a := range an {
		if k == shown {
			fmt.Fprintf(&b, "  ... and %d more (all are in result.json)\n", len(an)-shown)
			break
		}
		where := ""
		if a.RPM != 0 || a.MAP != 0 {
			where = fmt.Sprintf(" at %s RPM / %s %s", formatAxis(a.RPM), formatAxis(a.MAP), r.loadUnit())
		}
		cyl := ""
		if a.Cylinder != "" {
			cyl = " " + a.Cylinder
		}
		fmt.Fprintf(&b, "  [%s]%s%s: %s\n", a.Kind, cyl, where, a.Detail)
	}
	if r.Corrected() == 0 {
		b.WriteString("\nno cell has the evidence for a correction.\n")
		for _, adv := range r.Advice() {
			fmt.Fprintf(&b, "  - %s\n", adv)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// loadUnit names the load axis's unit for reports.
func (r *Result) loadUnit() string {
	switch r.Load {
	case LoadTPS:
		return "%"
	case LoadECU:
		if ci := r.Channels.Find(dyno.ChanLoad, 0); ci != nil && ci.Unit == dyno.UnitPercent {
			return "%"
		}
	}
	return "kPa"
}

// Document is the JSON form of a Result. Empty cells are null.
type Document struct {
	Schema  string    `json:"schema"` // "dynoai.result@2"
	Version string    `json:"library_version"`
	Source  string    `json:"source"`
	Format  string    `json:"format"`
	Samples int       `json:"samples"`
	RPM     []float64 `json:"rpm"`
	// MAP is the load axis: kPa for MAP, percent for throttle; LoadAxis
	// and LoadUnit say which.
	MAP      []float64 `json:"map_kpa"`
	LoadAxis string    `json:"load_axis"`
	LoadUnit string    `json:"load_unit"`
	LoadWhy  string    `json:"load_reason"`
	Target   string    `json:"target"`
	// Combined is set when one wideband measured every cylinder: the one
	// "combined" cylinder's correction is for every cylinder's table.
	Combined bool `json:"combined"`
	// Channels is the channel report of the log: what fed each channel,
	// in which unit and why, its health, and what was left out.
	Channels *dyno.ChannelReport `json:"channels,omitempty"`
	Notes    []string            `json:"notes,omitempty"`
	// Corrected counts the cells with a correction, all cylinders; when it
	// is zero, Advice says why and what to try.
	Corrected int      `json:"cells_corrected"`
	Advice    []string `json:"advice,omitempty"`
	// Decisions is the decision log: why each cell got its number.
	Decisions *DecisionLog       `json:"decisions,omitempty"`
	Settings  DocumentSettings   `json:"settings"`
	Cylinders []DocumentCylinder `json:"cylinders"`
	Anomalies []Anomaly          `json:"anomalies"`
	// DelayEstimate is the learned wideband delay, when the analysis learned one.
	DelayEstimate *afr.DelayEstimate `json:"delay_estimate,omitempty"`
}

// DocumentSettings records the analyzer settings in a Document.
type DocumentSettings struct {
	Attribution  string  `json:"attribution"`
	Estimator    string  `json:"estimator"`
	Weighting    string  `json:"weighting"`
	MinSamples   float64 `json:"min_samples"`
	ClampPercent float64 `json:"clamp_percent"`
	Smoothing    bool    `json:"smoothing"`
	SmoothPasses int     `json:"smooth_passes,omitempty"`
	Fuel         string  `json:"fuel"`
	SensorDelay  string  `json:"sensor_delay_fixed"`
	DelayPerRPM  float64 `json:"sensor_delay_per_rpm,omitempty"`
	LearnDelay   bool    `json:"learn_delay"`
	TargetSource string  `json:"target_source"`
	Filter       Filter  `json:"filter"`
}

// DocumentCylinder is one cylinder of a Document.
type DocumentCylinder struct {
	Name     string         `json:"name"`
	Combined bool           `json:"combined"`
	Accepted int            `json:"accepted"`
	Rejected map[string]int `json:"rejected"`
	Clamped  int            `json:"cells_clamped"`
	// Smoothness is the node fit's prior weight (relative to the data's),
	// as given or as chosen from the log; 0 for cell means.
	Smoothness float64      `json:"smoothness,omitempty"`
	Multiplier [][]*float64 `json:"multiplier"`
	Percent    [][]*float64 `json:"percent"`
	Hits       [][]int      `json:"hits"`
	Confidence [][]string   `json:"confidence"`
	StdErr     [][]*float64 `json:"std_err"`
	Resolution [][]*float64 `json:"resolution,omitempty"`
	AFRError   [][]*float64 `json:"afr_error"`
}

func jsonGrid(t *Table) [][]*float64 {
	out := make([][]*float64, t.Rows())
	for i := range out {
		out[i] = make([]*float64, t.Cols())
		for j := range out[i] {
			if v := t.Get(i, j); Has(v) {
				v = roundDecimal(v, 6)
				out[i][j] = &v
			}
		}
	}
	return out
}

// Document returns the result as a JSON-ready document.
func (r *Result) Document() Document {
	d := Document{Schema: "dynoai.result@2", Version: Version, Source: r.Source, Format: r.Format,
		Samples: r.Samples, RPM: r.Grid.RPM, MAP: r.Grid.MAP, Anomalies: r.Anomalies(), DelayEstimate: r.DelayEstimate,
		LoadAxis: r.Load.String(), LoadUnit: r.loadUnit(), LoadWhy: r.LoadWhy, Target: r.Target, Combined: r.Combined,
		Channels: r.Channels, Notes: r.Notes, Corrected: r.Corrected()}
	if d.Corrected == 0 {
		d.Advice = r.Advice()
	}
	dl := r.Decisions()
	d.Decisions = &dl
	o := r.Options
	d.Settings = DocumentSettings{Attribution: o.Attribution.String(), Estimator: o.Estimator.String(), Weighting: o.Weighting.String(),
		MinSamples: o.MinSamples, ClampPercent: o.ClampPercent, Smoothing: o.Smoothing.Kernels,
		SmoothPasses: o.Smoothing.Passes, Fuel: o.Fuel.Name, SensorDelay: r.Delay.Fixed.String(),
		DelayPerRPM: r.Delay.PerRPM, LearnDelay: !o.NoLearnDelay, TargetSource: "commanded"}
	if o.Targets != nil {
		d.Settings.TargetSource = "table"
	}
	if o.Filter != nil {
		d.Settings.Filter = *o.Filter
	}
	if d.Anomalies == nil {
		d.Anomalies = []Anomaly{}
	}
	for ci := range r.Cylinders {
		cr := &r.Cylinders[ci]
		dc := DocumentCylinder{Name: cr.Name(), Combined: cr.Combined, Accepted: cr.Accepted, Rejected: cr.Rejected.Map(),
			Clamped: cr.Clamped, Smoothness: cr.Smoothness, Multiplier: jsonGrid(cr.Correction), Percent: jsonGrid(cr.Percent()),
			AFRError: jsonGrid(cr.AFRError()),
			StdErr:   jsonGrid(cr.grid(6, func(x Cell) float64 { return x.StdErr }))}
		if o.Estimator == NodeFit {
			dc.Resolution = jsonGrid(cr.grid(3, func(x Cell) float64 { return x.Resolution }))
		}
		rows, cols := cr.Correction.Rows(), cr.Correction.Cols()
		dc.Hits = make([][]int, rows)
		dc.Confidence = make([][]string, rows)
		for i := range rows {
			dc.Hits[i] = make([]int, cols)
			dc.Confidence[i] = make([]string, cols)
			for j := range cols {
				dc.Hits[i][j] = cr.Cell(i, j).Hits
				dc.Confidence[i][j] = cr.Cell(i, j).Confidence.String()
			}
		}
		d.Cylinders = append(d.Cylinders, dc)
	}
	return d
}

// smoothnessSource says where the node fit's prior weight came from.
func smoothnessSource(given float64) string {
	if given > 0 {
		return "given"
	}
	return "chosen from the log"
}

// delayText writes a transport delay as a tuner reads it: "280ms", or
// "100ms + 150/rpm s" when it depends on engine speed.
func delayText(d dyno.TransportDelay) string {
	t := d.Fixed.Round(time.Millisecond).String()
	if d.PerRPM != 0 {
		t += fmt.Sprintf(" + %.0f/rpm s", d.PerRPM)
	}
	return t
}

// writeJSONFile writes v into dir/name as indented JSON, atomically.
func writeJSONFile(dir, name string, v any) error {
	return writeFileAtomic(filepath.Join(dir, name), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}
