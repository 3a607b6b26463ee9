package dynoai3import_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/internal/shareddata"
	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/dynoai3import"
	d3t "github.com/dynoai/dynoai/runstore/dynoai3import/dynoai3importtest"
)

// specOutputs are the outputs the manifest of predecessor-modules.md §7.3
// registers (dense_dyno_test.csv with decel and balancing), with the
// SHA-256 the specification gives for the deterministic files.
var specOutputs = []struct{ name, typ, schema, sha string }{
	{"VE_Correction_Delta_DYNO.csv", "csv", "ve_delta_grid", "fd7a6ba40b07921ed2024e161dc5099ab559ff45096147b78e5f90c97a90c10a"},
	{"Spark_Adjust_Suggestion_Front.csv", "csv", "spark_suggestion_front", "9f01e0900fa76aa07a2c0625d97a39757752430f0e92774a5e15c7a9ede03fff"},
	{"Spark_Adjust_Suggestion_Rear.csv", "csv", "spark_suggestion_rear", "a9ad6def864a2588ea67d0e2a383189998c115910f4501c833b2a80889497601"},
	{"AFR_Error_Map_Front.csv", "csv", "afr_error_front", "3676a9c80e61120de593396fbefe58692182f3a4d66d3aabb4bc782ef957b758"},
	{"AFR_Error_Map_Rear.csv", "csv", "afr_error_rear", "a504dab65f4687f7d68b5b3159ec7315db19bca2b0fc93b82f1dedeb013e92a4"},
	{"Coverage_Front.csv", "csv", "coverage_front", "f64cf38db89bafff3750ad19cf5f7b51e6010df43dcbf818aab9fc95259cb80f"},
	{"Coverage_Rear.csv", "csv", "coverage_rear", "f64cf38db89bafff3750ad19cf5f7b51e6010df43dcbf818aab9fc95259cb80f"},
	{"VE_Delta_PasteReady.txt", "text", "ve_delta_paste", "b51a7d33ffe96199af5f3e5c879bf5f0850f89462416eef819cf0999c792d1c2"},
	{"Spark_Front_PasteReady.txt", "text", "spark_front_paste", "3821aea3ec6dcffd02ce5babdbfc9fc3bc32631a2aebe1017413df9b2ac47854"},
	{"Spark_Rear_PasteReady.txt", "text", "spark_rear_paste", "a628b00ecec39f9f8e20259f991df8441e0ec165c47c84ecfb6c464e38ac0ded"},
	{"Anomaly_Hypotheses.json", "json", "anomaly_hypotheses", ""},
	{"PowerOpportunities.json", "json", "power_opportunities", ""},
	{"session_replay.json", "json", "session_replay", ""},
	{"Decel_Fuel_Overlay.csv", "csv", "decel_overlay", "00af7b39d627faf697b36767cea30246095d6101a1a26fd759529e09c8841ed0"},
	{"Decel_Analysis_Report.json", "json", "decel_report", ""},
	{"Front_Balance_Factor.csv", "csv", "front_balance_factor", "f7597e43cb7c101caba48f4024d5cc82a8e9f41271c5ed54737e118ef834e938"},
	{"Rear_Balance_Factor.csv", "csv", "rear_balance_factor", "f7597e43cb7c101caba48f4024d5cc82a8e9f41271c5ed54737e118ef834e938"},
	{"Cylinder_Balance_Report.json", "json", "balance_report", ""},
}

// TestImportPredecessorReference imports folders made of the predecessor's
// own Outputs: the §7.3 run (its registered files are the reference
// folder's, byte for byte as the specification hashes them) with its input
// found among the predecessor's logs, and a test_realistic run whose
// manifest hashed the Windows (CRLF) form of its log.
func TestImportPredecessorReference(t *testing.T) {
	ref := shareddata.Dir(t, "dynoai3", "reference", "dense_dyno_test__decel_balance")
	logs := shareddata.Dir(t, "dynoai3", "logs")
	realistic := shareddata.Dir(t, "dynoai3", "reference", "test_realistic")
	root := t.TempDir()

	dense, err := os.ReadFile(filepath.Join(logs, "dense_dyno_test.csv"))
	require.NoError(t, err)
	var outs []d3t.Output
	for _, o := range specOutputs {
		data, err := os.ReadFile(filepath.Join(ref, o.name))
		require.NoError(t, err)
		if o.sha != "" {
			require.Equal(t, o.sha, d3t.SHA256(data), "%s is the file §7.3 registers", o.name)
		}
		outs = append(outs, d3t.Output{Name: o.name, Data: data, Registered: true, Type: o.typ, Schema: o.schema})
	}
	for _, extra := range []string{"ConfidenceReport.json", "Torque_Map_Front.csv", "HP_Map_Combined.csv", "Diagnostics_Report.txt"} {
		data, err := os.ReadFile(filepath.Join(ref, extra))
		require.NoError(t, err)
		outs = append(outs, d3t.Output{Name: extra, Data: data, Registered: extra == "Diagnostics_Report.txt", Type: "text", Schema: "diagnostics_report"})
	}
	args := strings.Replace(d3t.DefaultArgs, "}", `,"decel_management":true,"decel_severity":"medium","decel_rpm_min":1500,"decel_rpm_max":5500,"balance_cylinders":true,"balance_mode":"equalize","balance_max_correction":3.0,"generate_report":false,"report_shop_name":"","report_operator":"","report_vehicle":""}`, 1)
	start := time.Date(2026, 12, 6, 1, 42, 26, 680e6, time.UTC)
	d3t.WriteToolkitFolder(t, filepath.Join(root, "out_spec"), d3t.ManifestSpec{RunID: "2026-12-06T01-42-26Z-72b270", Code: "success", Message: "OK", Stage: "export",
		InputPath: "/snapshot/tests/data/dense_dyno_test.csv", Input: dense, Start: start, Args: args, Outputs: outs})

	realLog, err := os.ReadFile(filepath.Join(logs, "test_realistic.csv"))
	require.NoError(t, err)
	crlf := bytes.ReplaceAll(realLog, []byte("\n"), []byte("\r\n"))
	require.True(t, strings.HasPrefix(d3t.SHA256(crlf), "44488e31c1c5"), "the CRLF form VA §9.4 names")
	var rOuts []d3t.Output
	for _, n := range []string{"VE_Correction_Delta_DYNO.csv", "VE_Delta_PasteReady.txt", "Coverage_Front.csv", "session_replay.json"} {
		data, err := os.ReadFile(filepath.Join(realistic, n))
		require.NoError(t, err)
		rOuts = append(rOuts, d3t.Output{Name: n, Data: data, Registered: true, Type: "csv", Schema: "x"})
	}
	d3t.WriteToolkitFolder(t, filepath.Join(root, "test_session_replay"), d3t.ManifestSpec{RunID: "2025-12-15T10-00-00Z-5e5510", Code: "success", Message: "OK", Stage: "export",
		InputPath: `C:\Users\tuner\DynoAI_3\tools\experiments\test_realistic.csv`, Input: crlf, Start: start.Add(-30 * 24 * time.Hour),
		Args: strings.Replace(d3t.DefaultArgs, `"clamp":7.0`, `"clamp":10.0`, 1), Outputs: rOuts})

	eachStore(t, func(t *testing.T, rs importStore, fs runstore.FileStore) {
		rep, err := dynoai3import.Import(context.Background(), root, rs, fs, dynoai3import.Options{InputDirs: []string{logs}})
		require.NoError(t, err)
		require.Equal(t, 2, rep.Count(dynoai3import.Imported), "%s: %+v", rep.Summary(), rep.Outcomes)
		byFolder := outcomes(rep)
		o := byFolder["out_spec"]
		assert.Equal(t, "dynoai3:2026-12-06T01-42-26Z-72b270:029ee9d59fac9834e01de903bc3aa7a96837b703cf6928c4eadc1704159afed7", o.Key)
		r, files := getRun(t, rs, o)
		assert.Equal(t, runstore.StatusCompleted, r.Status)
		assert.Equal(t, int64(len(dense)), r.InputSize)
		// 18 registered outputs, 3 unregistered, 2 manifests, the input.
		assert.Len(t, files, len(specOutputs)+4+2+1)
		in := fileNamed(t, files, "dense_dyno_test.csv")
		assert.Equal(t, "029ee9d59fac9834e01de903bc3aa7a96837b703cf6928c4eadc1704159afed7", in.SHA256)
		assert.Equal(t, int64(36), *r.Stats.CorrectedCells, "the 39 covered cells of the §9.3(e) grid less the three printed ±0.00")

		o = byFolder["test_session_replay"]
		r, files = getRun(t, rs, o)
		assert.Equal(t, "test_realistic.csv", r.Filename)
		assert.Equal(t, "66a68302b8103a97e7c752a5c73fb55ef4780cfffddd571662833f2bb533dbe0", fileNamed(t, files, "test_realistic.csv").SHA256,
			"stored as found (LF), matched through its CRLF form")

		again, err := dynoai3import.Import(context.Background(), root, rs, fs, dynoai3import.Options{InputDirs: []string{logs}})
		require.NoError(t, err)
		assert.Equal(t, 2, again.Count(dynoai3import.Existing))
	})
}
