package ve

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DynoAI3Options are the predecessor toolkit's command-line options. Start
// from DefaultDynoAI3Options: unlike the default analyzer, the zero value is
// not the toolkit's default (it means no smoothing passes and no rear rule).
type DynoAI3Options struct {
	Weighting    Weighting // WeightTorque (the toolkit's default) or WeightPower
	SmoothPasses int       // K1 passes, clamped into [0, 5]
	Clamp        float64   // percent; the toolkit's default is 7
	RearBias     float64   // percent added to the rear AFR-error map's mid band
	RearRuleDeg  float64   // spark retard added in the rear band (degrees)
	HotExtra     float64   // extra spark change where the rear band runs hot
	// BaseFront and BaseRear, when set, produce absolute VE tables
	// (VE_Front_Updated.csv and friends). BaseRear defaults to BaseFront.
	BaseFront, BaseRear *Table
	// Now stamps the session replay's entries; nil means time.Now.
	Now func() time.Time
}

// DefaultDynoAI3Options returns the toolkit's defaults.
func DefaultDynoAI3Options() DynoAI3Options {
	return DynoAI3Options{Weighting: WeightTorque, SmoothPasses: 2, Clamp: 7, RearRuleDeg: 2, HotExtra: -1}
}

// DynoAI3Diagnostics are the toolkit's per-cylinder row counters.
type DynoAI3Diagnostics struct {
	TotalRecords     int
	Accepted         int
	NoRequestedAFR   int
	BadAFR           int
	TempOutOfRange   int
	MAPOutOfRange    int
	TPSOutOfRange    int
	LowWeightDropped int // rows the toolkit drops silently (weight < 5)
}

// DynoAI3Result holds the grids of one toolkit run. Percent grids use the
// toolkit's sign: (commanded - measured) / measured x 100, so positive
// means the cell ran rich. That sign is the predecessor's defect, kept here
// only for comparison with its files.
type DynoAI3Result struct {
	Format        string // detected log format
	Rows          int    // records loaded
	AFRError      [2]*Table
	Coverage      [2]*Table
	Torque, Power [3]*Table // front, rear, combined
	VEDelta       *Table    // smoothed and clamped combined percent grid
	Spark         [2]*Table
	Clamped       int
	VEUpdated     [2]*Table // with a base table: absolute VE
	Diagnostics   [2]DynoAI3Diagnostics
	// MAD is each cylinder's per-cell median absolute deviation of its AFR
	// error samples (percent, unscaled; NaN where the cell has none).
	MAD [2]*Table
	// Anomalies are the predecessor's anomaly diagnostics of the run and
	// Confidence its tune confidence score (Anomaly_Hypotheses.json,
	// ConfidenceReport.json and Diagnostics_Report.txt).
	Anomalies    []DynoAI3Anomaly
	Confidence   *DynoAI3Confidence
	DerivedPower bool // power was derived from torque x RPM / 5252
	// SessionReplay is the predecessor's session_replay.json for this run
	// (see DynoAI3Replay for what it holds, and what it lacks).
	SessionReplay *DynoAI3Replay
}

// DynoAI3Compat runs the predecessor's offline toolkit ("Pipeline A") on a
// log and reproduces its grids number for number, then its anomaly
// diagnostics, tune confidence score and session replay. Where the toolkit
// crashed it does the right thing instead: a base table produces the
// absolute VE tables and the run completes; power weighting on a log
// without a power column derives power from torque x RPM / 5252 (physics)
// instead of failing, and says so in DerivedPower. Unlike the toolkit it
// streams: memory is the grid's plus, per cell, the distinct AFR errors its
// median absolute deviation needs (a few thousand for a real sensor's
// two-decimal readings, however long the log). The electrical check's
// correlation is estimated in the same pass; only when it comes near the
// predecessor's flag is the log read a second time for the exact value.
// Where the toolkit would write empty grids (no row passed its windows) it
// returns a *CompatNoDataError, which matches ErrNoCorrections.
func DynoAI3Compat(ctx context.Context, r io.Reader, name string, opts DynoAI3Options) (*DynoAI3Result, error) {
	if opts.Weighting != WeightTorque && opts.Weighting != WeightPower {
		return nil, fmt.Errorf("ve: DynoAI3Compat weighting must be torque or power, not %v", opts.Weighting)
	}
	if opts.Clamp <= 0 || math.IsNaN(opts.Clamp) {
		return nil, fmt.Errorf("ve: DynoAI3Compat clamp %v must be positive", opts.Clamp)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	g := dynoAI3Grid()
	acc := [2]*dynoai3Acc{newDynoAI3Acc(g, now), newDynoAI3Acc(g, now)}
	derive := false // power weighting on a log without power: derived per record
	rows := 0
	// The electrical check correlates (AFR error, battery) pairs: records
	// with torque over 5 and a battery voltage, front then rear. Its exact
	// value may need a second pass over the log, so the log must be
	// seekable (a reader that is not is read into memory, as the loader
	// would anyway).
	rs, start, err := seekable(r, name)
	if err != nil {
		return nil, err
	}
	pairs := func(rec *dynoai3Record, each func(x, y float64)) {
		if rec.tq > 5 && !math.IsNaN(rec.batt) {
			for c := range 2 {
				if e := rec.afrErr[c]; !math.IsNaN(e) {
					each(e, rec.batt)
				}
			}
		}
	}
	corr := &dynoai3Corr{}
	h, err := scanDynoAI3(rs, name, func(rec *dynoai3Record) {
		rows++
		if derive {
			rec.hp = rec.tq * rec.rpm / 5252
		}
		pairs(rec, corr.add)
		for c := range 2 {
			acc[c].add(rec, c, opts.Weighting)
		}
	}, func(h dynoai3Header) { derive = opts.Weighting == WeightPower && !h.hasHP })
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if corr.needExact() {
		if _, err := rs.Seek(start, io.SeekStart); err != nil {
			return nil, fmt.Errorf("ve: reading %s again: %w", name, err)
		}
		corr.startExact()
		if _, err := scanDynoAI3(rs, name, func(rec *dynoai3Record) { pairs(rec, corr.addExact) }, nil); err != nil {
			return nil, fmt.Errorf("ve: reading %s again: %w", name, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	res := &DynoAI3Result{Format: h.format, Rows: rows, DerivedPower: derive}
	var knockMax, iatMax [2]*Table
	var decisions []DynoAI3Decision
	for c, cyl := range []string{"f", "r"} {
		for _, l := range acc[c].logged {
			decisions = append(decisions, l.decision(g, cyl))
		}
	}
	for c := range 2 {
		a := acc[c].finish()
		res.AFRError[c], res.Coverage[c] = a.err, a.cov
		res.Torque[c], res.Power[c] = a.tq, a.hp
		knockMax[c], iatMax[c] = a.knock, a.iat
		res.Diagnostics[c] = a.diag
		res.MAD[c] = a.mad
	}
	if res.Diagnostics[0].Accepted == 0 && res.Diagnostics[1].Accepted == 0 {
		return nil, &CompatNoDataError{Name: name, Rows: rows, Diagnostics: res.Diagnostics}
	}
	res.VEDelta = combineDynoAI3(res.AFRError[0], res.AFRError[1])
	res.Torque[2] = combineDynoAI3(res.Torque[0], res.Torque[1])
	res.Power[2] = combineDynoAI3(res.Power[0], res.Power[1])
	if opts.RearBias != 0 {
		rear := res.AFRError[1]
		for i, rpm := range g.RPM {
			for j, kpa := range g.MAP {
				if v := rear.Get(i, j); Has(v) && rpm >= 2500 && rpm <= 3800 && kpa >= 65 && kpa <= 95 {
					rear.Set(i, j, v+opts.RearBias)
				}
			}
		}
	}
	decisions = append(decisions, smoothingDecisions(res.VEDelta, opts.SmoothPasses, 1.0, now)...)
	res.VEDelta = SmoothK1K2(res.VEDelta, opts.SmoothPasses, 1.0)
	smoothed := res.VEDelta.Clone()
	res.Clamped = ClampPercent(res.VEDelta, opts.Clamp)
	decisions = append(decisions, clampDecisions(smoothed, res.VEDelta, opts.Clamp, now)...)
	for c := range 2 {
		res.Spark[c] = sparkK3(knockMax[c], iatMax[c], c == 1, opts.RearRuleDeg, opts.HotExtra)
	}
	hits := make([]int, len(res.VEDelta.Values))
	for i := range hits {
		hits[i] = int(res.Coverage[0].Values[i]) + int(res.Coverage[1].Values[i])
	}
	decisions = append(decisions, DynoAI3Decision{Time: now(), Action: DynoAI3AnomalyStart, Reason: "Starting anomaly detection analysis"})
	res.Anomalies = dynoai3Anomalies(dynoai3AnomalyIn{
		ve: res.VEDelta, errF: res.AFRError[0], errR: res.AFRError[1],
		knockF: knockMax[0], knockR: knockMax[1], iatF: iatMax[0], iatR: iatMax[1],
		hits: hits, corr: corr,
	})
	for _, a := range res.Anomalies {
		if a.Type == DynoAI3Spatial { // the only type the predecessor logs
			decisions = append(decisions, DynoAI3Decision{Time: now(), Action: DynoAI3AnomalyDetected, Reason: a.Explanation,
				Values: DynoAI3Object{{"type", a.Type}, {"score", a.Score}},
				Cell:   DynoAI3Object{{"rpm", pyBin(a.Cell.RPM)}, {"kpa", pyBin(a.Cell.KPA)}}})
		}
	}
	decisions = append(decisions, DynoAI3Decision{Time: now(), Action: DynoAI3ConfidenceStart, Reason: "Calculating tune confidence metrics"})
	res.Confidence = dynoai3Confidence(g, res.MAD, hits, res.Anomalies, res.Clamped)
	decisions = append(decisions, DynoAI3Decision{Time: now(), Action: DynoAI3ConfidenceComplete,
		Reason: fmt.Sprintf("Confidence score calculated: %.1f%% (Grade %s)", res.Confidence.Overall, res.Confidence.Grade),
		Values: DynoAI3Object{{"overall_score", res.Confidence.Overall}, {"letter_grade", res.Confidence.Grade},
			{"elapsed_ms", pyRound(res.Confidence.Elapsed.Seconds()*1000, 2)}}})
	if opts.BaseFront != nil {
		bases := [2]*Table{opts.BaseFront, opts.BaseRear}
		if bases[1] == nil {
			bases[1] = opts.BaseFront
		}
		for c, base := range bases {
			up, err := absoluteDynoAI3(base, res.VEDelta)
			if err != nil {
				return nil, err
			}
			res.VEUpdated[c] = up
		}
	}
	at := now()
	res.SessionReplay = &DynoAI3Replay{RunID: newDynoAI3RunID(at), GeneratedAt: at, Decisions: decisions}
	return res, nil
}

type dynoai3Agg struct {
	err, cov, tq, hp, knock, iat, mad *Table
	diag                              DynoAI3Diagnostics
}

// dynoai3Acc accumulates one cylinder's cells as records stream by, in the
// toolkit's order, so its sums (and files) are the toolkit's to the bit
// without holding the log: memory is the grid's.
type dynoai3Acc struct {
	g                        Grid
	s, w, tq, hp, knock, iat []float64
	cov                      []int
	d                        DynoAI3Diagnostics
	now                      func() time.Time
	// logged holds the first three accepted samples of each cell for the
	// session replay: at most 3 x 55, whatever the log's length.
	logged []dynoai3Logged
	// vals holds each cell's accepted AFR errors for its median absolute
	// deviation, as a multiset: the one part of the run that can grow with
	// the log (with the distinct values it sees).
	vals []sampleBag
}

func newDynoAI3Acc(g Grid, now func() time.Time) *dynoai3Acc {
	n := len(g.RPM) * len(g.MAP)
	a := &dynoai3Acc{g: g, now: now, vals: make([]sampleBag, n), s: make([]float64, n), w: make([]float64, n), tq: make([]float64, n),
		hp: make([]float64, n), knock: make([]float64, n), iat: make([]float64, n), cov: make([]int, n)}
	for i := range a.iat {
		a.iat[i] = math.NaN()
	}
	return a
}

// add applies the toolkit's filters to one record for cylinder c and, when
// it passes, adds it to its nearest cell.
func (a *dynoai3Acc) add(r *dynoai3Record, c int, wt Weighting) {
	d := &a.d
	d.TotalRecords++
	cmd, meas, e := r.afrCmd[c], r.afrMeas[c], r.afrErr[c]
	switch {
	case math.IsNaN(cmd):
		d.NoRequestedAFR++
		return
	case math.IsNaN(e) || math.IsNaN(meas):
		d.BadAFR++
		return
	case cmd < 9 || cmd > 18 || meas < 9 || meas > 18:
		d.BadAFR++
		return
	case !math.IsNaN(r.iat) && (r.iat < 30 || r.iat > 300):
		d.TempOutOfRange++
		return
	case !math.IsNaN(r.kpa) && (r.kpa < 10 || r.kpa > 110):
		d.MAPOutOfRange++
		return
	case !math.IsNaN(r.tps) && (r.tps < 0 || r.tps > 100):
		d.TPSOutOfRange++
		return
	}
	weight := r.tq
	if wt == WeightPower {
		weight = r.hp
	}
	weight = math.Max(0, weight)
	if math.IsNaN(weight) || weight < 5 {
		d.LowWeightDropped++
		return
	}
	d.Accepted++
	k := Nearest(a.g.RPM, r.rpm)*len(a.g.MAP) + Nearest(a.g.MAP, r.kpa)
	if a.cov[k] < 3 {
		a.logged = append(a.logged, dynoai3Logged{at: a.now(), cell: k, err: e, weight: weight, cmd: cmd, meas: meas})
	}
	a.s[k] += e * weight
	a.w[k] += weight
	if !math.IsNaN(r.tq) {
		a.tq[k] += r.tq * weight
	}
	if !math.IsNaN(r.hp) {
		a.hp[k] += r.hp * weight
	}
	a.cov[k]++
	a.vals[k].add(e)
	if kn := r.knock[c]; !math.IsNaN(kn) && kn > a.knock[k] {
		a.knock[k] = kn
	}
	if !math.IsNaN(r.iat) && (math.IsNaN(a.iat[k]) || r.iat > a.iat[k]) {
		a.iat[k] = r.iat
	}
}

// finish turns the sums into the toolkit's grids.
func (a *dynoai3Acc) finish() dynoai3Agg {
	nan := math.NaN()
	g := a.g
	out := dynoai3Agg{diag: a.d}
	out.err = MustTable(g.RPM, g.MAP, nan)
	out.cov = MustTable(g.RPM, g.MAP, 0)
	out.cov.Precision = 0
	out.tq = MustTable(g.RPM, g.MAP, nan)
	out.hp = MustTable(g.RPM, g.MAP, nan)
	out.knock = MustTable(g.RPM, g.MAP, 0)
	out.iat = MustTable(g.RPM, g.MAP, nan)
	out.mad = MustTable(g.RPM, g.MAP, nan)
	for k := range a.s {
		out.mad.Values[k] = a.vals[k].mad()
		a.vals[k] = sampleBag{}
		out.cov.Values[k] = float64(a.cov[k])
		out.knock.Values[k] = a.knock[k]
		out.iat.Values[k] = a.iat[k]
		if a.w[k] > 0 {
			out.err.Values[k] = a.s[k] / a.w[k]
			if a.tq[k] > 0 {
				out.tq.Values[k] = a.tq[k] / a.w[k]
			}
			if a.hp[k] > 0 {
				out.hp.Values[k] = a.hp[k] / a.w[k]
			}
		}
	}
	return out
}

// CompatNoDataError reports a log of which no row passed the toolkit's
// windows for either cylinder: the toolkit would write empty grids; the
// compatibility run refuses instead, and says which windows the rows fell
// outside. It matches ErrNoCorrections.
type CompatNoDataError struct {
	Name        string
	Rows        int
	Diagnostics [2]DynoAI3Diagnostics
}

func (e *CompatNoDataError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: none of its %d rows passed the predecessor's windows, so there is nothing to correct", e.Name, e.Rows)
	d := e.Diagnostics[0]
	for _, why := range []struct {
		n    int
		what string
	}{
		{d.NoRequestedAFR, "no commanded AFR"},
		{d.BadAFR, "AFR missing or outside 9-18"},
		{d.TempOutOfRange, "intake temperature outside 30-300 (the toolkit reads °F: a log in °C falls outside)"},
		{d.MAPOutOfRange, "MAP outside 10-110 kPa"},
		{d.TPSOutOfRange, "throttle outside 0-100 %"},
		{d.LowWeightDropped, "torque or power under 5"},
	} {
		if why.n > 0 {
			fmt.Fprintf(&b, "; %d rows: %s", why.n, why.what)
		}
	}
	b.WriteString(" (front cylinder's counts; the default analyzer, without -compat, reads units and targets itself)")
	return b.String()
}

// Unwrap makes the error match ErrNoCorrections.
func (e *CompatNoDataError) Unwrap() error { return ErrNoCorrections }

// combineDynoAI3 averages two grids cell by cell; a cell present in only one
// grid takes that value.
func combineDynoAI3(a, b *Table) *Table {
	out := a.Clone()
	for i, x := range a.Values {
		y := b.Values[i]
		switch {
		case Has(x) && Has(y):
			out.Values[i] = (x + y) / 2
		case Has(y):
			out.Values[i] = y
		}
	}
	return out
}

// HotIATF is the toolkit's hot intake threshold, °F.
const HotIATF = 120.0

// SparkSuggestion is the predecessor's frozen K3 base rule for one cell:
// knock retard k (degrees, its maximum in the cell) of 0.5 or more pulls
// min(2, max(0.5, 2k/3)) degrees, half a degree more when the intake ran at
// HotIATF or hotter (iatF NaN means unknown).
func SparkSuggestion(k, iatF float64) float64 {
	pull := 0.0
	if k >= 0.5 {
		pull = -math.Min(2.0, math.Max(0.5, k/3*2))
	}
	if !math.IsNaN(iatF) && iatF >= HotIATF && pull < 0 {
		pull -= 0.5
	}
	return pull
}

func sparkK3(knock, iat *Table, rear bool, rearRuleDeg, hotExtra float64) *Table {
	out := MustTable(knock.RPM, knock.MAP, 0)
	out.Precision = 2
	for i, rpm := range knock.RPM {
		for j, kpa := range knock.MAP {
			v := SparkSuggestion(knock.Get(i, j), iat.Get(i, j))
			if rear && rpm >= 2800 && rpm <= 3600 && kpa >= 75 && kpa <= 95 {
				v += -math.Abs(rearRuleDeg)
				if x := iat.Get(i, j); Has(x) && x >= HotIATF {
					v += hotExtra
				}
			}
			out.Set(i, j, v)
		}
	}
	return out
}

// absoluteDynoAI3 applies the percent grid to a base VE table the toolkit's
// way: base x (1 + delta/100); an empty base stays empty, an empty delta
// keeps the base. The base is read on the toolkit's grid.
func absoluteDynoAI3(base, delta *Table) (*Table, error) {
	out := MustTable(delta.RPM, delta.MAP, math.NaN())
	out.Precision = 2
	if !equalFloats(base.MAP, delta.MAP) {
		return nil, fmt.Errorf("%w: base table MAP bins %v, the toolkit needs %v", ErrShape, base.MAP, delta.MAP)
	}
	for bi, rpm := range base.RPM {
		i := -1
		for k, r := range delta.RPM {
			if r == rpm {
				i = k
			}
		}
		if i < 0 {
			continue // the toolkit ignores rows off its grid
		}
		for j := range delta.MAP {
			b, d := base.Get(bi, j), delta.Get(i, j)
			switch {
			case !Has(b):
			case !Has(d):
				out.Set(i, j, b)
			default:
				out.Set(i, j, b*(1+d/100))
			}
		}
	}
	return out, nil
}

// The toolkit's file formats (spec §5).
var (
	dynoai3Signed = CSVFormat{Layout: RPMMajor, CRLF: true, Cell: CellFormat{Decimals: 2, Signed: true, Guard: true}}
	dynoai3OneDP  = CSVFormat{Layout: RPMMajor, CRLF: true, Cell: CellFormat{Decimals: 1, Guard: true}}
	dynoai3Count  = CSVFormat{Layout: RPMMajor, CRLF: true, Cell: CellFormat{Decimals: 0}}
	dynoai3TwoDP  = CSVFormat{Layout: RPMMajor, CRLF: true, Cell: CellFormat{Decimals: 2, Guard: true}}
)

// WriteFiles writes the toolkit's grid CSVs and paste-ready blocks into dir
// (created if needed) with its exact bytes, then Diagnostics_Report.txt,
// Anomaly_Hypotheses.json, ConfidenceReport.json and session_replay.json,
// byte for byte but for their volatile fields (the calculation time, the
// replay's run id, times and elapsed_ms), and returns the file names.
func (r *DynoAI3Result) WriteFiles(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	type file struct {
		name  string
		t     *Table
		f     CSVFormat
		paste bool
	}
	files := []file{
		{"VE_Correction_Delta_DYNO.csv", r.VEDelta, dynoai3Signed, false},
		{"VE_Delta_PasteReady.txt", r.VEDelta, dynoai3Signed, true},
		{"AFR_Error_Map_Front.csv", r.AFRError[0], dynoai3Signed, false},
		{"AFR_Error_Map_Rear.csv", r.AFRError[1], dynoai3Signed, false},
		{"Coverage_Front.csv", r.Coverage[0], dynoai3Count, false},
		{"Coverage_Rear.csv", r.Coverage[1], dynoai3Count, false},
		{"Torque_Map_Front.csv", r.Torque[0], dynoai3OneDP, false},
		{"Torque_Map_Rear.csv", r.Torque[1], dynoai3OneDP, false},
		{"Torque_Map_Combined.csv", r.Torque[2], dynoai3OneDP, false},
		{"HP_Map_Front.csv", r.Power[0], dynoai3OneDP, false},
		{"HP_Map_Rear.csv", r.Power[1], dynoai3OneDP, false},
		{"HP_Map_Combined.csv", r.Power[2], dynoai3OneDP, false},
		{"Spark_Adjust_Suggestion_Front.csv", r.Spark[0], dynoai3Signed, false},
		{"Spark_Adjust_Suggestion_Rear.csv", r.Spark[1], dynoai3Signed, false},
		{"Spark_Front_PasteReady.txt", r.Spark[0], dynoai3Signed, true},
		{"Spark_Rear_PasteReady.txt", r.Spark[1], dynoai3Signed, true},
	}
	if r.VEUpdated[0] != nil {
		files = append(files,
			file{"VE_Front_Updated.csv", r.VEUpdated[0], dynoai3TwoDP, false},
			file{"VE_Rear_Updated.csv", r.VEUpdated[1], dynoai3TwoDP, false},
			file{"VE_Front_Absolute_PasteReady.txt", r.VEUpdated[0], dynoai3TwoDP, true},
			file{"VE_Rear_Absolute_PasteReady.txt", r.VEUpdated[1], dynoai3TwoDP, true},
		)
	}
	for _, f := range files {
		if f.t == nil {
			return nil, fmt.Errorf("ve: writing %s: %w", f.name, errNoDiagnostics)
		}
	}
	var names []string
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		var err error
		if f.paste {
			err = writeFileAtomic(path, func(w io.Writer) error {
				_, err := io.WriteString(w, f.t.PasteBlock(f.f.Cell))
				return err
			})
		} else {
			err = writeFileAtomic(path, func(w io.Writer) error { return f.t.WriteCSV(w, f.f) })
		}
		if err != nil {
			return names, fmt.Errorf("ve: writing %s: %w", f.name, err)
		}
		names = append(names, f.name)
	}
	type side struct {
		name string
		data func() ([]byte, error)
	}
	var sides []side
	if r.Confidence != nil {
		sides = append(sides,
			side{"Diagnostics_Report.txt", r.DiagnosticsReport},
			side{"Anomaly_Hypotheses.json", r.AnomalyJSON},
			side{"ConfidenceReport.json", r.ConfidenceJSON},
		)
	}
	if r.SessionReplay != nil {
		sides = append(sides, side{dynoai3ReplayFile, r.SessionReplay.JSON})
	}
	for _, f := range sides {
		data, err := f.data()
		if err == nil {
			err = writeFileAtomic(filepath.Join(dir, f.name), func(w io.Writer) error {
				_, err := w.Write(data)
				return err
			})
		}
		if err != nil {
			return names, fmt.Errorf("ve: writing %s: %w", f.name, err)
		}
		names = append(names, f.name)
	}
	return names, nil
}

// writeFileAtomic writes path through a temporary file and a rename, so a
// reader never sees half a file and a failed write leaves the old one. The
// file gets mode 0666 masked by the umask, like os.WriteFile's exports
// elsewhere (os.CreateTemp would make it 0600 whatever the umask).
func writeFileAtomic(path string, write func(io.Writer) error) error {
	tmp, err := createExport(path)
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// createExport creates a new temporary file beside path with mode 0666
// (masked by the umask).
func createExport(path string) (*os.File, error) {
	for range 100 {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		name := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+"."+hex.EncodeToString(b[:]))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("ve: no free temporary name beside %s", path)
}

// dynoAI3Grid is the predecessor's analysis grid: RPM 1500..6500 by 500 and
// MAP 35..95 by 15 kPa (ve-afr spec §2).
func dynoAI3Grid() Grid {
	return Grid{
		RPM: []float64{1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500, 6000, 6500},
		MAP: []float64{35, 50, 65, 80, 95},
	}
}
