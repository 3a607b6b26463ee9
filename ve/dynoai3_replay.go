package ve

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"time"
)

// DynoAI3Replay is the predecessor's session_replay.json: its "decision
// log", reproduced entry for entry for parity with its run folders
// (predecessor-modules spec §6).
//
// The layout keeps the predecessor's defects, because parity is its only
// purpose: it is not a replay of the run (SR-1: at most the first three
// accepted samples per cell and cylinder, no inputs, no final grid, nothing
// from the feature modules), and its "cell" key holds bin values (rpm, kpa)
// for samples and anomalies but grid indices (rpm_index, kpa_index) for
// smoothing and clamping (SR-2). The project's own answer to "why did this
// cell get its number" is the analyzer's decision log (Result.Decisions,
// Decision_Log.json): every verdict aggregated per cell and rule.
//
// The actions, in the predecessor's order: AFR_CORRECTION (the first three
// accepted samples of each cell, front cylinder's pass then rear's),
// SMOOTHING_START, GRADIENT_LIMITING (cells whose gradient exceeds 1.5 x
// the threshold), CLAMPING_START, CLAMPING_APPLIED (when a cell moved more
// than 0.01), ANOMALY_DETECTION_START, ANOMALY_DETECTED (spatial
// discontinuities only, as the predecessor logs them) and
// CONFIDENCE_SCORING_START/_COMPLETE. RunID, GeneratedAt, every decision's
// Time and the elapsed_ms value are volatile, as in the predecessor's
// files; everything else is deterministic.
type DynoAI3Replay struct {
	RunID       string // the predecessor's run id form: 2006-01-02T15-04-05Z-xxxxxx
	GeneratedAt time.Time
	Decisions   []DynoAI3Decision
}

// DynoAI3Decision is one entry of the session replay. Values and Cell are
// nil when the predecessor writes no such key.
type DynoAI3Decision struct {
	Time   time.Time
	Action string
	Reason string
	Values DynoAI3Object
	Cell   DynoAI3Object
}

// The predecessor's replay actions.
const (
	DynoAI3AFRCorrection        = "AFR_CORRECTION"
	DynoAI3SmoothingStart       = "SMOOTHING_START"
	DynoAI3GradientLimiting     = "GRADIENT_LIMITING"
	DynoAI3ClampingStart        = "CLAMPING_START"
	DynoAI3ClampingApplied      = "CLAMPING_APPLIED"
	DynoAI3AnomalyStart         = "ANOMALY_DETECTION_START"
	DynoAI3AnomalyDetected      = "ANOMALY_DETECTED"
	DynoAI3ConfidenceStart      = "CONFIDENCE_SCORING_START"
	DynoAI3ConfidenceComplete   = "CONFIDENCE_SCORING_COMPLETE"
	dynoai3ReplayFile           = "session_replay.json"
	dynoai3ReplaySchema         = "1.0"
	dynoai3TimeLayout           = "2006-01-02T15:04:05.000Z"
	dynoai3RunIDLayout          = "2006-01-02T15-04-05Z"
	dynoai3ReplayGradientFactor = 1.5
)

// JSON returns the file's bytes: json.dumps(indent=2, ensure_ascii=False),
// LF, no final newline.
func (r *DynoAI3Replay) JSON() ([]byte, error) {
	decisions := make([]any, len(r.Decisions))
	for i, d := range r.Decisions {
		o := DynoAI3Object{
			{"timestamp", dynoai3Time(d.Time)},
			{"action", d.Action},
			{"reason", d.Reason},
		}
		if d.Values != nil {
			o = append(o, DynoAI3Field{"values", d.Values})
		}
		if d.Cell != nil {
			o = append(o, DynoAI3Field{"cell", d.Cell})
		}
		decisions[i] = o
	}
	doc := DynoAI3Object{
		{"schema_version", dynoai3ReplaySchema},
		{"run_id", r.RunID},
		{"generated_at", dynoai3Time(r.GeneratedAt)},
		{"total_decisions", len(r.Decisions)},
		{"decisions", decisions},
	}
	var b bytes.Buffer
	if err := writePyJSON(&b, doc, 0, false); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func dynoai3Time(t time.Time) string { return t.UTC().Format(dynoai3TimeLayout) }

// newDynoAI3RunID makes a run id the way the predecessor's manifest does:
// the UTC time, then 6 hex digits of the SHA-256 of 16 random bytes.
func newDynoAI3RunID(now time.Time) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	sum := sha256.Sum256(b[:])
	return now.UTC().Format(dynoai3RunIDLayout) + "-" + hex.EncodeToString(sum[:])[:6]
}

// dynoai3Logged is an accepted sample kept for the replay.
type dynoai3Logged struct {
	at                     time.Time
	cell                   int
	err, weight, cmd, meas float64
}

// afrDecision is the AFR_CORRECTION entry of a logged sample.
func (l dynoai3Logged) decision(g Grid, cyl string) DynoAI3Decision {
	afr := func(v float64) any {
		if math.IsNaN(v) || v == 0 {
			return nil // Python: round(x, 2) if x else None
		}
		return pyRound(v, 2)
	}
	i, j := l.cell/len(g.MAP), l.cell%len(g.MAP)
	return DynoAI3Decision{
		Time:   l.at,
		Action: DynoAI3AFRCorrection,
		Reason: "Accepted AFR error sample for " + cyl + " cylinder",
		Values: DynoAI3Object{
			{"afr_error_pct", pyRound(l.err, 2)},
			{"weight", pyRound(l.weight, 1)},
			{"afr_commanded", afr(l.cmd)},
			{"afr_measured", afr(l.meas)},
		},
		Cell: DynoAI3Object{{"rpm", pyBin(g.RPM[i])}, {"kpa", pyBin(g.MAP[j])}, {"cylinder", cyl}},
	}
}

// pyBin is a bin value as the predecessor holds it: an int.
func pyBin(v float64) any {
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		return int(v)
	}
	return v
}

// smoothingDecisions are SMOOTHING_START and the GRADIENT_LIMITING entries
// of the frozen K1 kernel on g (the combined grid before smoothing). It
// traces K1's first three stages as SmoothK1K2 runs them (gradients on the
// original grid, Gauss-Seidel adaptive passes, blending toward the
// original) to report each blended cell's original, smoothed and result
// values; K2 does not log.
func smoothingDecisions(g *Table, passes int, threshold float64, now func() time.Time) []DynoAI3Decision {
	passes = max(0, min(5, passes))
	out := []DynoAI3Decision{{
		Time:   now(),
		Action: DynoAI3SmoothingStart,
		Reason: fmt.Sprintf("Starting gradient-limited smoothing with %d passes, threshold=%s%%", passes, pyRepr(threshold, false)),
		Values: DynoAI3Object{{"passes", passes}, {"gradient_threshold", threshold}},
	}}
	grad, a := k1Stages(g, passes)
	cols := g.Cols()
	for i, gv := range g.Values {
		av := a.Values[i]
		if !Has(gv) || !Has(av) || grad[i] <= threshold {
			continue
		}
		bf := math.Min(1, grad[i]/(2*threshold))
		b := (1-bf)*av + bf*gv
		if grad[i] > dynoai3ReplayGradientFactor*threshold {
			out = append(out, DynoAI3Decision{
				Time:   now(),
				Action: DynoAI3GradientLimiting,
				Reason: "High gradient detected, blending toward original value",
				Values: DynoAI3Object{
					{"gradient", pyRound(grad[i], 2)},
					{"threshold", threshold},
					{"blend_factor", pyRound(bf, 3)},
					{"original", pyRound(gv, 2)},
					{"smoothed", pyRound(av, 2)},
					{"result", pyRound(b, 2)},
				},
				Cell: DynoAI3Object{{"rpm_index", i / cols}, {"kpa_index", i % cols}},
			})
		}
	}
	return out
}

// clampDecisions are CLAMPING_START and, when a cell moved by more than
// 0.01, CLAMPING_APPLIED with the first ten such cells; before and after
// are the grid before and after ClampPercent.
func clampDecisions(before, after *Table, limit float64, now func() time.Time) []DynoAI3Decision {
	lim := pyRepr(limit, false)
	out := []DynoAI3Decision{{
		Time:   now(),
		Action: DynoAI3ClampingStart,
		Reason: "Clamping VE corrections to +/- " + lim + "%",
		Values: DynoAI3Object{{"limit", limit}},
	}}
	cols := before.Cols()
	n := 0
	var cells []any
	for i, v := range before.Values {
		if !Has(v) || math.Abs(v-after.Values[i]) <= 0.01 {
			continue
		}
		n++
		if len(cells) < 10 {
			cells = append(cells, DynoAI3Object{
				{"rpm_index", i / cols},
				{"kpa_index", i % cols},
				{"original", pyRound(v, 2)},
				{"clamped", pyRound(after.Values[i], 2)},
			})
		}
	}
	if n > 0 {
		out = append(out, DynoAI3Decision{
			Time:   now(),
			Action: DynoAI3ClampingApplied,
			Reason: fmt.Sprintf("Clamped %d cells exceeding +/- %s%% limit", n, lim),
			Values: DynoAI3Object{{"clamped_count", n}, {"cells", cells}},
		})
	}
	return out
}
