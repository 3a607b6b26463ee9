// Package dynoai3importtest writes predecessor-shaped run folders for
// tests: one of every family dynoai3import reads, and corrupted ones, the
// way DynoAI_3 writes them (compact one-line manifests with the toolkit's
// key order, written twice with mode 0600; the API's uploads beside its
// outputs; the RunManager's run_state.json with input/ and output/; the
// JetDrive and AutoTune manifests; transient outputs). An integrator
// migrating a shop can test its own pipeline on them.
package dynoai3importtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// SHA256 is the lowercase hex SHA-256 of b.
func SHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func write(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, data, mode))
}

// Output is one file of a toolkit folder: registered ones go in the
// manifest's outputs.
type Output struct {
	Name       string
	Data       []byte
	Registered bool   // listed in the manifest's outputs, with size and SHA-256
	Type       string // csv, text, json
	Schema     string
}

type ManifestSpec struct {
	RunID     string
	Code      string // success, error, partial
	Message   string
	Stage     string
	InputPath string
	Input     []byte // the input's bytes as the manifest hashed them
	Start     time.Time
	Args      string // the args object
	Outputs   []Output
}

// ToolkitManifest renders a dynoai.manifest@1 the way the toolkit
// writes it: compact, keys in its order, no final newline.
func ToolkitManifest(m ManifestSpec) []byte {
	end := m.Start.Add(221 * time.Millisecond)
	ts := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
	var outs []string
	for _, o := range m.Outputs {
		if !o.Registered {
			continue
		}
		rows, cols := "null", "null"
		if o.Type == "csv" {
			rows, cols = "11", "5"
		}
		outs = append(outs, fmt.Sprintf(`{"name":%q,"path":%q,"type":%q,"schema":%q,"rows":%s,"cols":%s,"size_bytes":%d,"sha256":%q,"created":%q}`,
			o.Name, o.Name, o.Type, o.Schema, rows, cols, len(o.Data), SHA256(o.Data), ts(end)))
	}
	stats := "{}"
	if m.Code == "success" {
		stats = `{"rows_read":12000,"bins_total":55,"bins_covered":39,"front_accepted":12000,"rear_accepted":12000}`
	}
	msg, _ := json.Marshal(m.Message)
	inSHA := ""
	if len(m.Input) > 0 {
		inSHA = SHA256(m.Input)
	}
	inPath, _ := json.Marshal(m.InputPath)
	return fmt.Appendf(nil, `{"schema_id":"dynoai.manifest@1","tool_version":"1.2","run_id":%q,"session_id":null,`+
		`"status":{"code":%q,"message":%s,"last_stage":%q},`+
		`"input":{"path":%s,"size_bytes":%d,"sha256":%q,"dialect":{"sep":",","encoding":"utf-8","newline":"auto"},"required_columns_present":true,"missing_columns":[]},`+
		`"config":{"args":%s,"base_tables":{"front":null,"rear":null}},`+
		`"env":{"python":"3.11.2","os":"Linux","platform":"x86_64","hostname":"vm"},`+
		`"timing":{"start":%q,"end":%q,"duration_ms":221},"stats":%s,"diagnostics":[],"outputs":[%s],`+
		`"apply":{"allowed":false,"reasons_blocked":["pending"]}}`,
		m.RunID, m.Code, msg, m.Stage, inPath, len(m.Input), inSHA, m.Args, ts(m.Start), ts(end), stats, strings.Join(outs, ","))
}

// WriteToolkitFolder writes the outputs and both manifest copies.
func WriteToolkitFolder(t testing.TB, dir string, m ManifestSpec) []byte {
	t.Helper()
	for _, o := range m.Outputs {
		write(t, filepath.Join(dir, o.Name), o.Data, 0o644)
	}
	man := ToolkitManifest(m)
	write(t, filepath.Join(dir, m.RunID+".manifest.json"), man, 0o600)
	write(t, filepath.Join(dir, "manifest.json"), man, 0o600)
	return man
}

// DefaultArgs is the toolkit's args object with its defaults (the part of
// config every manifest since Nov 2025 has).
const DefaultArgs = `{"csv":"in.csv","outdir":"out","verbose":false,"weighting":"torque","smooth_passes":2,"clamp":7.0,"rear_bias":0.0,"rear_rule_deg":2.0,"hot_extra":-1.0,"base_front":null,"base_rear":null}`

// DeltaGrid is a small VE delta grid in the toolkit's format (RPM rows, MAP columns,
// the "'" guard, CRLF).
func DeltaGrid(vals [][]string) []byte {
	var b bytes.Buffer
	b.WriteString("RPM,35,50,65,80,95\r\n")
	for i, row := range vals {
		fmt.Fprintf(&b, "%d,%s\r\n", 1500+500*i, strings.Join(row, ","))
	}
	return b.Bytes()
}

// SmallOutputs are a toolkit folder's files: three registered, and
// ConfidenceReport.json, which the toolkit never registers. seed makes
// each folder's contents its own.
func SmallOutputs(seed string) []Output {
	return []Output{
		{Name: "VE_Correction_Delta_DYNO.csv", Type: "csv", Schema: "ve_delta_grid", Registered: true, Data: DeltaGrid([][]string{
			{"'+0.19", "'+2.50", "'-0.06", "'-4.16", "'+0.11"},
			{"'+0.09", "'-0.00", "", "'-0.03", "'+0.20"},
		})},
		{Name: "VE_Delta_PasteReady.txt", Type: "text", Schema: "ve_delta_paste", Registered: true, Data: []byte("'+0.19\t'+2.50\n" + seed)},
		{Name: "Diagnostics_Report.txt", Type: "text", Schema: "diagnostics_report", Registered: true, Data: []byte("DynoAI diagnostics\n" + seed + "\n")},
		{Name: "ConfidenceReport.json", Data: []byte(`{"overall_score":87.5,"seed":"` + seed + `"}`)}, // never registered (RF-2)
	}
}

// VETable renders a VE table in the predecessor's base layout (RPM rows,
// the MAP columns 35..95) with the given decimals.
func VETable(vals [][]float64, decimals int) []byte {
	var b bytes.Buffer
	b.WriteString("RPM,35,50,65,80,95\n")
	for i, row := range vals {
		fmt.Fprintf(&b, "%d", 1500+500*i)
		for _, v := range row {
			fmt.Fprintf(&b, ",%.*f", decimals, v)
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

// BaseVE is the base table of the API folder's apply (two rows of the
// FXDLS base).
var BaseVE = [][]float64{{58.0, 58.0, 58.0, 59.5, 67.2}, {58.0, 58.0, 59.3, 68.2, 77.1}}

// AppliedVE is BaseVE as the predecessor's /api/apply writes it: base ×
// (1 + delta/100), two decimals.
func AppliedVE() [][]float64 {
	deltas := [][]float64{{0.19, 2.5, -0.06, -4.16, 0.11}, {0.09, 0, 0, -0.03, 0.2}}
	out := make([][]float64, len(BaseVE))
	for i := range BaseVE {
		for j, v := range BaseVE[i] {
			out[i] = append(out[i], float64(int64(v*(1+deltas[i][j]/100)*100+0.5))/100)
		}
	}
	return out
}

// The folders BuildTree writes, relative to its root.
const (
	DirToolkit         = "experiments/dense_decel"
	DirToolkitCRLF     = "experiments/windows_run"
	DirToolkitError    = "experiments/load_error"
	DirToolkitPartial  = "experiments/partial"
	DirAPI             = "data/outputs/6f1c2a0e-3b7d-4c2e-9a55-0d9a2b7c1e44"
	DirRunManager      = "runs/run_2025-11-25T14-30-00Z-abc123"
	DirRunManagerError = "runs/run_2025-11-26T09-00-00Z-def456"
	DirJetDrive        = "runs/jd_pull_2025_12_01"
	DirAutoTune        = "runs/autotune_20251201_101010"
	DirTransient       = "outputs/transient_20251201_101010"
	DirNoManifest      = "outputs/k2_coverage_skew_test"
	DirEmpty           = "outputs/traceback_run"
	DirCorruptHash     = "experiments/edited_after"
	DirCorruptJSON     = "experiments/truncated_manifest"
	DirCorruptMissing  = "experiments/missing_output"
)

// What Import makes of BuildTree's folders: Importable runs; the three
// corrupted folders and the empty one are skipped.
const (
	Importable = 11
	Skipped    = 4
)

// BuildTree writes one folder of every family, and three corrupted ones,
// under root; the toolkit runs' input logs go in inputs (outside root).
func BuildTree(t testing.TB, root, inputs string) {
	t.Helper()
	start := time.Date(2025, 11, 10, 14, 2, 3, 456e6, time.UTC)
	logLF := []byte("rpm,map_kpa,torque,afr_meas_f,afr_meas_r\n3000,65,110.5,13.1,13.2\n3500,80,120.0,12.9,13.0\n")
	logCRLF := bytes.ReplaceAll(logLF, []byte("\n"), []byte("\r\n"))
	write(t, filepath.Join(inputs, "logs", "dense_dyno_test.csv"), logLF, 0o644)
	other := []byte("rpm,map_kpa,torque\n2000,50,80\n")
	write(t, filepath.Join(inputs, "logs", "test_realistic.csv"), other, 0o644)

	// A: a success, its input found in inputs by SHA-256.
	WriteToolkitFolder(t, filepath.Join(root, DirToolkit), ManifestSpec{RunID: "2025-11-10T14-02-03Z-72b270", Code: "success", Message: "OK", Stage: "export",
		InputPath: "/home/tuner/dynoai3/tests/data/dense_dyno_test.csv", Input: logLF, Start: start, Args: DefaultArgs, Outputs: SmallOutputs("a")})
	// A from Windows: the manifest hashed the CRLF form, the path is C:\...
	WriteToolkitFolder(t, filepath.Join(root, DirToolkitCRLF), ManifestSpec{RunID: "2025-11-10T09-00-00Z-0a0b0c", Code: "success", Message: "OK", Stage: "export",
		InputPath: `C:\Users\tuner\DynoAI_2\experiments\dense_dyno_test.csv`, Input: logCRLF, Start: start.Add(-5 * time.Hour), Args: DefaultArgs, Outputs: SmallOutputs("crlf")})
	// A error in load: no outputs, the loader's message verbatim.
	WriteToolkitFolder(t, filepath.Join(root, DirToolkitError), ManifestSpec{RunID: "2025-11-11T08-00-00Z-eeee01", Code: "error",
		Message: "Missing required columns in WinPEP CSV: Torque\nFound: RPM, MAP", Stage: "load",
		InputPath: "/tmp/sample_winpep_log.csv", Input: []byte("RPM,MAP\n1000,30\n"), Start: start.Add(24 * time.Hour), Args: DefaultArgs})
	// A partial: files written, none registered.
	partial := SmallOutputs("partial")
	for i := range partial {
		partial[i].Registered = false
	}
	WriteToolkitFolder(t, filepath.Join(root, DirToolkitPartial), ManifestSpec{RunID: "2025-11-12T08-00-00Z-pppp01", Code: "partial",
		Message: "cannot access local variable 'extra_specs' where it is not associated with a value", Stage: "export",
		InputPath: "/data/dense_dyno_test.csv", Input: logLF, Start: start.Add(48 * time.Hour), Args: DefaultArgs, Outputs: partial})

	// B: upload beside the outputs, a session log, a snapshot, an apply
	// then a rollback.
	uuid := filepath.Base(DirAPI)
	upload := []byte("rpm,map_kpa,torque\n4000,95,130.0\n")
	write(t, filepath.Join(root, "data", "uploads", uuid, "my_pull.csv"), upload, 0o644)
	apiDir := filepath.Join(root, DirAPI)
	WriteToolkitFolder(t, apiDir, ManifestSpec{RunID: "2025-12-01T10-00-00Z-b0b0b0", Code: "success", Message: "OK", Stage: "export",
		InputPath: "/srv/dynoai/data/uploads/" + uuid + "/my_pull.csv", Input: upload, Start: start.Add(21 * 24 * time.Hour), Args: DefaultArgs, Outputs: SmallOutputs("api")})
	write(t, filepath.Join(apiDir, "session_log.json"), []byte(`{"events":[{"type":"analysis","at":"2025-12-01T10:00:01.000000+00:00"}]}`), 0o644)
	write(t, filepath.Join(apiDir, "snapshots", "snap_0a1b2c3d.csv"), VETable(BaseVE, 1), 0o644)
	write(t, filepath.Join(apiDir, "VE_Before_Apply.csv"), VETable(BaseVE, 1), 0o644)
	write(t, filepath.Join(apiDir, "VE_Applied.csv"), VETable(AppliedVE(), 2), 0o644)
	write(t, filepath.Join(apiDir, "VE_Applied_meta.json"), []byte(`{"operation":"apply","applied_at_utc":"2025-12-01T10:05:00.123456+00:00","max_adjust_pct":7.0,"base_file":"FXDLS_Wheelie_VE_Base_Front_fixed.csv","comment":"first try"}`), 0o644)
	write(t, filepath.Join(apiDir, "VE_Before_Rollback.csv"), VETable(AppliedVE(), 2), 0o644)
	write(t, filepath.Join(apiDir, "VE_Restored.csv"), VETable(BaseVE, 2), 0o644)
	later := time.Date(2025, 12, 1, 11, 0, 0, 0, time.UTC)
	require.NoError(t, os.Chtimes(filepath.Join(apiDir, "VE_Applied.csv"), later.Add(-time.Hour), later.Add(-time.Hour)))
	require.NoError(t, os.Chtimes(filepath.Join(apiDir, "VE_Restored.csv"), later, later))

	// C: a complete RunManager run with its converted input and outputs,
	// and one that failed.
	rm := filepath.Join(root, DirRunManager)
	conv := []byte("rpm,map_kpa,torque,afr_meas_f\n3000,70,115,13.0\n")
	write(t, filepath.Join(rm, "input", "dynoai_input.csv"), conv, 0o644)
	write(t, filepath.Join(rm, "jetstream_raw", "JS-ALPHA-001.csv"), []byte("Time,RPM\n0,3000\n"), 0o644)
	write(t, filepath.Join(rm, "jetstream_metadata.json"), []byte(`{"run_id":"JS-ALPHA-001","vehicle":"Road Glide"}`), 0o644)
	WriteToolkitFolder(t, filepath.Join(rm, "output"), ManifestSpec{RunID: "2025-11-25T14-30-05Z-c0c0c0", Code: "success", Message: "OK", Stage: "export",
		InputPath: "/srv/runs/run_2025-11-25T14-30-00Z-abc123/input/dynoai_input.csv", Input: conv, Start: start.Add(15 * 24 * time.Hour), Args: DefaultArgs, Outputs: SmallOutputs("rm")})
	write(t, filepath.Join(rm, "run_state.json"), []byte(`{
  "run_id": "run_2025-11-25T14-30-00Z-abc123",
  "status": "complete",
  "source": "jetstream",
  "created_at": "2025-11-25T14:30:00.123Z",
  "updated_at": "2025-11-25T14:31:10.456Z",
  "jetstream_id": "JS-ALPHA-001",
  "current_stage": "export",
  "progress_percent": 100,
  "files": ["VE_Correction_Delta_DYNO.csv"],
  "results_summary": {"ve_cells_modified": 4}
}`), 0o644)
	write(t, filepath.Join(root, DirRunManagerError, "run_state.json"), []byte(`{
  "run_id": "run_2025-11-26T09-00-00Z-def456",
  "status": "error",
  "source": "jetstream",
  "created_at": "2025-11-26T09:00:00.000Z",
  "updated_at": "2025-11-26T09:00:02.000Z",
  "jetstream_id": "JS-ERR-002",
  "current_stage": "processing",
  "progress_percent": 40,
  "files": [],
  "error": {"stage": "processing", "code": "VE-CSV-42", "message": "VE table CSV malformed"}
}`), 0o644)
	write(t, filepath.Join(root, "runs", "index.json"), []byte(`{"updated_at":"2025-11-26T09:00:02.000Z","total":2,"runs":[]}`), 0o644)

	// D1: the JetDrive script's flat folder.
	jd := filepath.Join(root, DirJetDrive)
	write(t, filepath.Join(jd, "run.csv"), []byte("timestamp_ms,RPM,MAP\n0,3000,70\n20,3010,71\n"), 0o644)
	write(t, filepath.Join(jd, "VE_Corrections_2D.csv"), []byte("RPM\\MAP,50,65\n3000,1.0250,0.9800\n3500,1.0000,1.0100\n"), 0o644)
	write(t, filepath.Join(jd, "VE_Delta_PasteReady.txt"), []byte("2.50\t-2.00\n"), 0o644)
	write(t, filepath.Join(jd, "manifest.json"), []byte(`{"run_id": "jd_pull_2025_12_01", "timestamp": "2025-12-01T16:20:00.250000", "source_file": "run.csv",
 "analysis": {"total_samples": 2, "duration_ms": 20, "peak_hp": 112.4, "peak_hp_rpm": 5200, "peak_tq": 121.9, "peak_tq_rpm": 3500, "overall_status": "needs_tuning"},
 "grid": {"rpm_bins": [3000, 3500], "map_bins": [50, 65], "ve_correction": [[1.025, 0.98], [1.0, 1.01]], "hit_count": [[4, 2], [0, 3]]},
 "outputs": {"ve_csv": "VE_Corrections_2D.csv"}, "inputs": {"mode": "real"}}`), 0o644)

	// D2: the AutoTune workflow's session summary.
	at := filepath.Join(root, DirAutoTune)
	write(t, filepath.Join(at, "dynoai_ve_correction_autotune_20251201_101010.pvv"), []byte("<PVV/>"), 0o644)
	write(t, filepath.Join(at, "session.csv"), []byte("RPM,MAP\n3000,70\n"), 0o644)
	write(t, filepath.Join(at, "manifest.json"), []byte(`{"run_id": "autotune_20251201_101010", "status": "completed", "created_at": "2025-12-01T10:10:10.000000+00:00",
 "timestamp": "2025-12-01T10:12:00.000000+00:00", "data_source": "csv", "log_file": "C:\\logs\\session.csv", "tune_file": null, "errors": [],
 "peak_performance": {"peak_hp": 98.5, "peak_tq": 110.0}, "log_rows": 1, "total_samples": 1, "analysis": {"overall_status": "ok", "mean_ve_delta_pct": 1.2}, "outputs": {}}`), 0o644)

	// E: a transient analysis.
	tr := filepath.Join(root, DirTransient)
	write(t, filepath.Join(tr, "transient_compensation.txt"), []byte("[Accel enrichment]\nmap_rate,enrich\n50,5\n"), 0o644)
	write(t, filepath.Join(tr, "transient_metadata.json"), []byte(`{"generated_at": "2025-12-01T10:10:10.123456", "target_afr": 13.0, "map_rate_threshold": 50, "tps_rate_threshold": 20, "events_detected": 3, "accel_events": 2, "decel_events": 1}`), 0o644)

	// No manifest: killed before it finished; and an empty folder.
	write(t, filepath.Join(root, DirNoManifest, "VE_Correction_Delta_DYNO.csv"), DeltaGrid([][]string{{"'+1.00", "", "", "", ""}}), 0o644)
	write(t, filepath.Join(root, DirNoManifest, "Coverage_Front.csv"), []byte("RPM,35\r\n1500,3\r\n"), 0o644)
	require.NoError(t, os.MkdirAll(filepath.Join(root, DirEmpty), 0o755))

	// Corrupted: an output edited after the manifest, a manifest cut
	// short, a registered output gone.
	WriteToolkitFolder(t, filepath.Join(root, DirCorruptHash), ManifestSpec{RunID: "2025-11-13T08-00-00Z-cccc01", Code: "success", Message: "OK", Stage: "export",
		InputPath: "/x.csv", Input: other, Start: start, Args: DefaultArgs, Outputs: SmallOutputs("edited")})
	write(t, filepath.Join(root, DirCorruptHash, "VE_Correction_Delta_DYNO.csv"), DeltaGrid([][]string{{"'+9.99", "", "", "", ""}}), 0o644)
	man := WriteToolkitFolder(t, filepath.Join(root, DirCorruptJSON), ManifestSpec{RunID: "2025-11-13T09-00-00Z-cccc02", Code: "success", Message: "OK", Stage: "export",
		InputPath: "/x.csv", Input: other, Start: start, Args: DefaultArgs, Outputs: SmallOutputs("truncated")})
	require.NoError(t, os.Remove(filepath.Join(root, DirCorruptJSON, "2025-11-13T09-00-00Z-cccc02.manifest.json")))
	write(t, filepath.Join(root, DirCorruptJSON, "manifest.json"), man[:len(man)/2], 0o600)
	WriteToolkitFolder(t, filepath.Join(root, DirCorruptMissing), ManifestSpec{RunID: "2025-11-13T10-00-00Z-cccc03", Code: "success", Message: "OK", Stage: "export",
		InputPath: "/x.csv", Input: other, Start: start, Args: DefaultArgs, Outputs: SmallOutputs("gone")})
	require.NoError(t, os.Remove(filepath.Join(root, DirCorruptMissing, "Diagnostics_Report.txt")))
}
