package dynoai3import

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Family is a kind of run folder the predecessor wrote (its specification
// names them A to E).
type Family string

// The families.
const (
	// FamilyToolkit (A) is a folder the toolkit's CLI wrote with --outdir:
	// grids, reports and manifest.json (dynoai.manifest@1).
	FamilyToolkit Family = "toolkit"
	// FamilyAPI (B) is an /api/analyze output folder, outputs/<uuid>, with
	// the toolkit's files, its upload in uploads/<uuid>, and the apply and
	// rollback tables of /api/apply.
	FamilyAPI Family = "api"
	// FamilyRunManager (C) is a Jetstream RunManager folder, runs/run_<id>,
	// with run_state.json, input/ and output/.
	FamilyRunManager Family = "runmanager"
	// FamilyJetDrive (D1) is a JetDrive script folder, runs/<id>, whose
	// manifest has analysis, grid and source_file.
	FamilyJetDrive Family = "jetdrive"
	// FamilyAutoTune (D2) is an AutoTune workflow folder, runs/<id>, whose
	// manifest is a session summary.
	FamilyAutoTune Family = "autotune"
	// FamilyTransient (E) is a transient-fuel output folder with
	// transient_metadata.json.
	FamilyTransient Family = "transient"
	// FamilyNoManifest is a folder of the predecessor's outputs with no
	// manifest: a run that failed or was killed before it finished.
	FamilyNoManifest Family = "no-manifest"
	// FamilyEmpty is an empty folder where a run's outputs would be (a
	// run that failed before writing anything). Nothing is imported.
	FamilyEmpty Family = "empty"
)

// Letter returns the family's letter in the predecessor's specification
// (A, B, C, D1, D2, E), or "-" for the folders without a manifest.
func (f Family) Letter() string {
	switch f {
	case FamilyToolkit:
		return "A"
	case FamilyAPI:
		return "B"
	case FamilyRunManager:
		return "C"
	case FamilyJetDrive:
		return "D1"
	case FamilyAutoTune:
		return "D2"
	case FamilyTransient:
		return "E"
	}
	return "-"
}

// Folder is a run folder Scan found.
type Folder struct {
	Path   string // the folder, as found under the root
	Rel    string // Path relative to the root, with forward slashes (the root's name when it is the run folder)
	Family Family
	// Err says why a folder could not be listed (Family is then "").
	Err error
}

// knownOutputs are files only the predecessor writes: a folder holding one
// of them and no manifest is a run that never finished.
var knownOutputs = []string{
	"VE_Correction_Delta_DYNO.csv", "VE_Delta_PasteReady.txt", "AFR_Error_Map_Front.csv", "AFR_Error_Map_Rear.csv",
	"Coverage_Front.csv", "Coverage_Rear.csv", "Spark_Adjust_Suggestion_Front.csv", "Diagnostics_Report.txt",
	"Anomaly_Hypotheses.json", "session_replay.json", "VE_Corrections_2D.csv", "Torque_Map_Front.csv",
	"transient_compensation.txt",
}

// Scan walks root and returns the run folders under it, in lexical order.
// A run folder's own subfolders (the RunManager's input/ and output/, the
// API's snapshots/) are part of it. Symbolic links are not followed. An
// empty folder is returned as FamilyEmpty only where the predecessor keeps
// run folders (under outputs/ or runs/, or the root itself).
func Scan(root string) ([]Folder, error) {
	info, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("dynoai3import: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("dynoai3import: %s is not a directory", root)
	}
	var out []Folder
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root {
				return err
			}
			// An unreadable folder is reported as a folder of its own,
			// so the import says what it skipped.
			out = append(out, Folder{Path: path, Rel: rel(root, path), Err: err})
			return fs.SkipDir
		}
		if !d.IsDir() {
			return nil
		}
		entries, err := os.ReadDir(path)
		if err != nil {
			out = append(out, Folder{Path: path, Rel: rel(root, path), Err: err})
			return fs.SkipDir
		}
		fam := classify(path, entries)
		if fam == "" {
			if len(entries) == 0 && (path == root || slices.Contains([]string{"outputs", "runs"}, filepath.Base(filepath.Dir(path)))) {
				out = append(out, Folder{Path: path, Rel: rel(root, path), Family: FamilyEmpty})
			}
			return nil
		}
		out = append(out, Folder{Path: path, Rel: rel(root, path), Family: fam})
		return fs.SkipDir
	})
	if err != nil {
		return nil, fmt.Errorf("dynoai3import: walking %s: %w", root, err)
	}
	return out, nil
}

func rel(root, path string) string {
	r, err := filepath.Rel(root, path)
	if err != nil {
		return filepath.ToSlash(path)
	}
	if r == "." {
		// The root is the run folder: its own name says more than ".".
		if abs, err := filepath.Abs(root); err == nil {
			return filepath.Base(abs)
		}
	}
	return filepath.ToSlash(r)
}

// classify names the family of the folder at path from its entries, or ""
// when it is not a run folder.
func classify(path string, entries []os.DirEntry) Family {
	names := map[string]bool{}
	manifests := false
	for _, e := range entries {
		if e.Type().IsRegular() {
			names[e.Name()] = true
			if strings.HasSuffix(e.Name(), ".manifest.json") {
				manifests = true
			}
		}
	}
	switch {
	case names["run_state.json"]:
		return FamilyRunManager
	case names["manifest.json"] || manifests:
		return manifestFamily(path)
	case names["transient_metadata.json"]:
		return FamilyTransient
	}
	for _, k := range knownOutputs {
		if names[k] {
			return FamilyNoManifest
		}
	}
	return ""
}

// manifestFamily tells the manifest dialects apart by their keys. A
// manifest that does not parse is a toolkit folder whose import will
// report the parse error.
func manifestFamily(dir string) Family {
	raw, err := readManifestBytes(dir)
	if err != nil {
		return FamilyToolkit
	}
	var keys map[string]json.RawMessage
	if json.Unmarshal(raw, &keys) != nil {
		return FamilyToolkit
	}
	has := func(k string) bool { _, ok := keys[k]; return ok }
	switch {
	case has("schema_id"):
		if isAPIFolder(dir) {
			return FamilyAPI
		}
		return FamilyToolkit
	case has("analysis") && has("grid") && has("source_file"):
		return FamilyJetDrive
	case has("peak_performance") || has("data_source"):
		return FamilyAutoTune
	}
	return FamilyToolkit
}

// isAPIFolder reports whether dir is an /api/analyze output folder: under
// outputs/ with its upload beside it, or holding the API's own files.
func isAPIFolder(dir string) bool {
	if filepath.Base(filepath.Dir(dir)) == "outputs" {
		up := filepath.Join(filepath.Dir(filepath.Dir(dir)), "uploads", filepath.Base(dir))
		if st, err := os.Stat(up); err == nil && st.IsDir() {
			return true
		}
	}
	for _, n := range []string{"session_log.json", "snapshots", "VE_Applied.csv", "VE_Applied_meta.json"} {
		if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
			return true
		}
	}
	return false
}

// readManifestBytes returns the folder's manifest: the run-id copy
// (<run_id>.manifest.json) when there is one, else manifest.json.
func readManifestBytes(dir string) ([]byte, error) {
	name, err := manifestName(dir)
	if err != nil {
		return nil, err
	}
	return readLimited(filepath.Join(dir, name), maxManifest)
}

// manifestName picks the manifest file of dir (rule 1 of the importer
// rules: the run-id copy wins when both exist).
func manifestName(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var runCopies []string
	plain := false
	for _, e := range entries {
		switch {
		case !e.Type().IsRegular():
		case e.Name() == "manifest.json":
			plain = true
		case strings.HasSuffix(e.Name(), ".manifest.json"):
			runCopies = append(runCopies, e.Name())
		}
	}
	switch {
	case len(runCopies) == 1:
		return runCopies[0], nil
	case len(runCopies) > 1:
		return "", fmt.Errorf("%d run-id manifests (%s): which run is this?", len(runCopies), strings.Join(runCopies, ", "))
	case plain:
		return "manifest.json", nil
	}
	return "", errors.New("no manifest")
}

// maxManifest bounds a manifest or state file: the predecessor's are a few
// KiB.
const maxManifest = 8 << 20

func readLimited(path string, limit int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d a manifest can be", filepath.Base(path), st.Size(), limit)
	}
	return os.ReadFile(path)
}
