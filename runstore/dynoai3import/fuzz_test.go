package dynoai3import_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/dynoai3import"
	d3t "github.com/dynoai/dynoai/runstore/dynoai3import/dynoai3importtest"
)

// FuzzImportManifest feeds arbitrary bytes as each family's manifest (the
// toolkit's, the RunManager's state, the JetDrive and AutoTune manifests,
// the transient metadata): a folder is imported or skipped with a
// FolderError, never a panic or another error.
func FuzzImportManifest(f *testing.F) {
	f.Add(uint8(0), d3t.ToolkitManifest(d3t.ManifestSpec{RunID: "2025-11-10T14-02-03Z-72b270", Code: "success", Message: "OK", Stage: "export",
		InputPath: "/x.csv", Input: []byte("a\n"), Start: time.Unix(1.7e9, 0), Args: d3t.DefaultArgs, Outputs: d3t.SmallOutputs("f")}))
	f.Add(uint8(1), []byte(`{"run_id":"run_x","status":"complete","created_at":"2025-11-25T14:30:00.123Z","error":{"stage":"a","code":"b","message":"c"}}`))
	f.Add(uint8(2), []byte(`{"run_id":"jd","timestamp":"2025-12-01T16:20:00.25","source_file":"run.csv","analysis":{"peak_hp":1e400},"grid":{}}`))
	f.Add(uint8(3), []byte(`{"run_id":"a","status":"error","errors":["x",1,null],"peak_performance":{"peak_hp":"12"},"data_source":"csv"}`))
	f.Add(uint8(4), []byte(`{"generated_at":"2025-12-01T10:10:10.123456"}`))
	f.Add(uint8(0), []byte(`{"schema_id":"dynoai.manifest@1","run_id":"r","status":{"code":"success"},"outputs":[{"name":"../../etc/passwd","sha256":"00","size_bytes":-1}]}`))
	names := []string{"manifest.json", "run_state.json", "manifest.json", "manifest.json", "transient_metadata.json"}
	f.Fuzz(func(t *testing.T, kind uint8, manifest []byte) {
		root := t.TempDir()
		dir := filepath.Join(root, "runs", "r1")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		name := names[int(kind)%len(names)]
		if err := os.WriteFile(filepath.Join(dir, name), manifest, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "VE_Correction_Delta_DYNO.csv"), []byte("RPM,35\r\n1500,'+1.00\r\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		rs := runstore.NewMemory(runstore.Options{})
		rep, err := dynoai3import.Import(context.Background(), root, rs, runstore.NewMemFileStore(), dynoai3import.Options{})
		if err != nil {
			t.Fatalf("Import: %v", err)
		}
		for _, o := range rep.Outcomes {
			var fe *dynoai3import.FolderError
			if o.Action == dynoai3import.Skipped && !errors.As(o.Err, &fe) {
				t.Fatalf("skipped without a FolderError: %v", o.Err)
			}
		}
	})
}
