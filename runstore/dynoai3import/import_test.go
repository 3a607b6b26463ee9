package dynoai3import_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/dynoai3import"
	d3t "github.com/dynoai/dynoai/runstore/dynoai3import/dynoai3importtest"
	"github.com/dynoai/dynoai/runstore/runstoretest"
	"github.com/dynoai/dynoai/runstore/sqlstore"
	"github.com/dynoai/dynoai/ve"
)

// importStore is a run store that imports.
type importStore interface {
	runstore.RunStore
	runstore.Importer
}

// eachStore runs f on the memory store, a SQLite file and (when
// configured) PostgreSQL, each with a file store of its own.
func eachStore(t *testing.T, f func(t *testing.T, rs importStore, fs runstore.FileStore)) {
	t.Run("memory", func(t *testing.T) {
		f(t, runstore.NewMemory(runstore.Options{}), runstore.NewMemFileStore())
	})
	t.Run("sqlite", func(t *testing.T) {
		s, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "runs.db"), sqlstore.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		fs, err := runstore.NewLocalFileStore(t.TempDir(), runstore.LocalFileStoreOptions{})
		require.NoError(t, err)
		t.Cleanup(func() { fs.Close() })
		f(t, s, fs)
	})
	t.Run("postgres", func(t *testing.T) {
		s, err := sqlstore.OpenPostgres(context.Background(), runstoretest.PostgresDSN(t), sqlstore.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		f(t, s, runstore.NewMemFileStore())
	})
}

func outcomes(rep *dynoai3import.Report) map[string]dynoai3import.Outcome {
	m := map[string]dynoai3import.Outcome{}
	for _, o := range rep.Outcomes {
		m[o.Folder] = o
	}
	return m
}

func allRuns(t *testing.T, rs runstore.RunStore) []runstore.Run {
	t.Helper()
	p, err := rs.List(context.Background(), runstore.Filter{Limit: runstore.MaxLimit})
	require.NoError(t, err)
	return p.Runs
}

func blobCount(t *testing.T, fs runstore.FileStore) int {
	t.Helper()
	n := 0
	require.NoError(t, fs.List(context.Background(), func(runstore.BlobInfo) error { n++; return nil }))
	return n
}

func fileNamed(t *testing.T, files []runstore.File, name string) runstore.File {
	t.Helper()
	i := slices.IndexFunc(files, func(f runstore.File) bool { return f.Name == name })
	require.GreaterOrEqual(t, i, 0, "no file %s among %d", name, len(files))
	return files[i]
}

func readBlob(t *testing.T, fs runstore.FileStore, key string) []byte {
	t.Helper()
	rc, err := fs.Open(context.Background(), key)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

// TestImportEveryFamily imports one folder of every family and three
// corrupted ones, then imports them again.
func TestImportEveryFamily(t *testing.T) {
	eachStore(t, func(t *testing.T, rs importStore, fs runstore.FileStore) {
		ctx := context.Background()
		root, inputs := t.TempDir(), t.TempDir()
		d3t.BuildTree(t, root, inputs)
		opts := dynoai3import.Options{InputDirs: []string{inputs}}

		// A dry run reads and verifies everything and stores nothing.
		dry, err := dynoai3import.Import(ctx, root, nil, nil, dynoai3import.Options{DryRun: true, InputDirs: opts.InputDirs})
		require.NoError(t, err)
		assert.Equal(t, d3t.Importable, dry.Count(dynoai3import.WouldImport), dry.Summary())
		assert.Equal(t, d3t.Skipped, dry.Count(dynoai3import.Skipped), dry.Summary())
		assert.Empty(t, allRuns(t, rs))

		rep, err := dynoai3import.Import(ctx, root, rs, fs, opts)
		require.NoError(t, err)
		t.Log(rep.Summary())
		byFolder := outcomes(rep)
		assert.Equal(t, d3t.Importable, rep.Count(dynoai3import.Imported), rep.Summary())
		assert.Equal(t, d3t.Skipped, rep.Count(dynoai3import.Skipped), rep.Summary())
		for _, d := range []string{d3t.DirCorruptHash, d3t.DirCorruptJSON, d3t.DirCorruptMissing} {
			o := byFolder[d]
			assert.Equal(t, dynoai3import.Skipped, o.Action, d)
			assert.ErrorIs(t, o.Err, dynoai3import.ErrCorrupt, d)
		}
		assert.Contains(t, byFolder[d3t.DirCorruptHash].Err.Error(), "VE_Correction_Delta_DYNO.csv: ")
		assert.Contains(t, byFolder[d3t.DirCorruptHash].Err.Error(), "the manifest says")
		assert.Contains(t, byFolder[d3t.DirCorruptJSON].Err.Error(), "manifest.json: ")
		assert.Contains(t, byFolder[d3t.DirCorruptMissing].Err.Error(), "Diagnostics_Report.txt: ")
		assert.Contains(t, byFolder[d3t.DirCorruptMissing].Err.Error(), "missing")
		assert.Equal(t, dynoai3import.FamilyEmpty, byFolder[d3t.DirEmpty].Family)

		// Nothing of a corrupted folder is stored: no run, no contents.
		runs := allRuns(t, rs)
		require.Len(t, runs, 11)
		for _, seed := range []string{"edited", "truncated", "gone"} {
			_, err := fs.Stat(ctx, d3t.SHA256([]byte("DynoAI diagnostics\n"+seed+"\n")))
			assert.ErrorIs(t, err, runstore.ErrNotFound, "the %s folder's report", seed)
		}
		for _, r := range runs {
			assert.Equal(t, runstore.SourceImport, r.Source)
			assert.Empty(t, r.Tenant)
		}

		checkToolkit(t, rs, fs, byFolder)
		checkAPI(t, rs, fs, byFolder[d3t.DirAPI])
		checkOthers(t, rs, byFolder)

		// A dry run now tells what is imported already.
		dry, err = dynoai3import.Import(ctx, root, rs, nil, dynoai3import.Options{DryRun: true, InputDirs: opts.InputDirs})
		require.NoError(t, err)
		assert.Equal(t, d3t.Importable, dry.Count(dynoai3import.Existing), dry.Summary())
		assert.Equal(t, byFolder[d3t.DirAPI].Run, outcomes(dry)[d3t.DirAPI].Run)

		// A second import adds nothing.
		blobs := blobCount(t, fs)
		again, err := dynoai3import.Import(ctx, root, rs, fs, opts)
		require.NoError(t, err)
		assert.Equal(t, d3t.Importable, again.Count(dynoai3import.Existing), again.Summary())
		assert.Zero(t, again.Count(dynoai3import.Imported))
		assert.Len(t, allRuns(t, rs), 11)
		assert.Equal(t, blobs, blobCount(t, fs))
		for d, o := range outcomes(again) {
			if o.Action == dynoai3import.Existing {
				assert.Equal(t, byFolder[d].Run, o.Run, d)
			}
		}

		// Another tenant gets runs of its own.
		other, err := dynoai3import.Import(ctx, root, rs, fs, dynoai3import.Options{Tenant: "shop-b", InputDirs: opts.InputDirs})
		require.NoError(t, err)
		assert.Equal(t, d3t.Importable, other.Count(dynoai3import.Imported))
		assert.Len(t, allRuns(t, rs), 22)
	})
}

func importRecord(t *testing.T, r runstore.Run) map[string]any {
	t.Helper()
	var res struct {
		Import map[string]any `json:"import"`
	}
	require.NoError(t, json.Unmarshal(r.Results, &res))
	require.NotNil(t, res.Import)
	return res.Import
}

func getRun(t *testing.T, rs runstore.RunStore, o dynoai3import.Outcome) (runstore.Run, []runstore.File) {
	t.Helper()
	require.Equal(t, dynoai3import.Imported, o.Action, "%s: %v", o.Folder, o.Err)
	r, err := rs.Get(context.Background(), o.Run)
	require.NoError(t, err)
	files, err := rs.Files(context.Background(), o.Run)
	require.NoError(t, err)
	return r, files
}

func checkToolkit(t *testing.T, rs runstore.RunStore, fs runstore.FileStore, byFolder map[string]dynoai3import.Outcome) {
	ctx := context.Background()
	r, files := getRun(t, rs, byFolder[d3t.DirToolkit])
	assert.Equal(t, runstore.StatusCompleted, r.Status)
	assert.Equal(t, "OK", r.Message)
	assert.Equal(t, time.Date(2025, 11, 10, 14, 2, 3, 456e6, time.UTC), r.CreatedAt)
	assert.Equal(t, r.CreatedAt.Add(221*time.Millisecond), r.CompletedAt)
	assert.Equal(t, "dense_dyno_test.csv", r.Filename)
	require.NotNil(t, r.Stats.CorrectedCells)
	assert.Equal(t, int64(8), *r.Stats.CorrectedCells)
	assert.InDelta(t, 4.16, *r.Stats.MaxCorrectionPct, 1e-9)
	var settings map[string]any
	require.NoError(t, json.Unmarshal(r.Settings, &settings))
	assert.Equal(t, 7.0, settings["args"].(map[string]any)["clamp"])
	assert.Equal(t, "dynoai3:2025-11-10T14-02-03Z-72b270:"+byFolder[d3t.DirToolkit].Key[len("dynoai3:2025-11-10T14-02-03Z-72b270:"):], byFolder[d3t.DirToolkit].Key)
	// Outputs, both manifest copies, the unregistered report, the input.
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.Name
	}
	assert.ElementsMatch(t, []string{"VE_Correction_Delta_DYNO.csv", "VE_Delta_PasteReady.txt", "Diagnostics_Report.txt", "ConfidenceReport.json",
		"2025-11-10T14-02-03Z-72b270.manifest.json", "manifest.json", "dense_dyno_test.csv"}, names)
	in := fileNamed(t, files, "dense_dyno_test.csv")
	assert.Equal(t, "text/csv", in.ContentType)
	assert.True(t, bytes.HasPrefix(readBlob(t, fs, in.StorageKey), []byte("rpm,map_kpa,torque")))
	rec := importRecord(t, r)
	assert.Equal(t, "A", rec["family_letter"])
	assert.Equal(t, "success", rec["status"])
	registered := map[string]bool{}
	for _, f := range rec["files"].([]any) {
		m := f.(map[string]any)
		registered[m["name"].(string)] = m["registered"].(bool)
	}
	assert.True(t, registered["VE_Correction_Delta_DYNO.csv"])
	assert.True(t, registered["dense_dyno_test.csv"], "the input, found by its hash")
	assert.False(t, registered["ConfidenceReport.json"], "never registered by the toolkit")
	h, err := rs.History(ctx, r.ID)
	require.NoError(t, err)
	require.Len(t, h, 2)
	assert.Equal(t, runstore.StatusCompleted, h[1].To)
	assert.Contains(t, h[1].Reason, d3t.DirToolkit)

	// Windows run: path with backslashes, CRLF hash, found all the same.
	r, files = getRun(t, rs, byFolder[d3t.DirToolkitCRLF])
	assert.Equal(t, "dense_dyno_test.csv", r.Filename)
	fileNamed(t, files, "dense_dyno_test.csv")
	rec = importRecord(t, r)
	assert.Equal(t, true, rec["input"].(map[string]any)["hash_of_crlf_form"])

	// Error in load: failed, the message verbatim, the stage kept.
	r, files = getRun(t, rs, byFolder[d3t.DirToolkitError])
	assert.Equal(t, runstore.StatusFailed, r.Status)
	require.NotNil(t, r.Error)
	assert.Equal(t, "Missing required columns in WinPEP CSV: Torque\nFound: RPM, MAP", r.Error.Message)
	assert.Equal(t, "load", r.Error.Stage)
	assert.Equal(t, "DYNOAI3_ERROR", r.Error.Code)
	assert.Len(t, files, 2, "the two manifest copies")
	assert.Contains(t, strings.Join(byFolder[d3t.DirToolkitError].Notes, "\n"), "not found")

	// Partial: failed, and every file kept though none is registered.
	r, files = getRun(t, rs, byFolder[d3t.DirToolkitPartial])
	assert.Equal(t, runstore.StatusFailed, r.Status)
	assert.Equal(t, "DYNOAI3_PARTIAL", r.Error.Code)
	assert.Equal(t, "export", r.Error.Stage)
	fileNamed(t, files, "VE_Correction_Delta_DYNO.csv")
}

// checkAPI: the apply and the rollback became apply records that this
// project's rollback reads back exactly.
func checkAPI(t *testing.T, rs runstore.RunStore, fs runstore.FileStore, o dynoai3import.Outcome) {
	ctx := context.Background()
	r, files := getRun(t, rs, o)
	assert.Equal(t, "my_pull.csv", r.Filename, "the upload beside the outputs")
	fileNamed(t, files, "my_pull.csv")
	fileNamed(t, files, "snapshots_snap_0a1b2c3d.csv")
	fileNamed(t, files, "session_log.json")
	fileNamed(t, files, "VE_Applied.csv")
	applies, err := rs.Applies(ctx, r.ID)
	require.NoError(t, err)
	require.Len(t, applies, 2)
	a, rb := applies[0], applies[1]
	assert.Equal(t, "Front", a.Cylinder)
	assert.Equal(t, runstore.ApplyKindApply, a.Kind)
	assert.Equal(t, time.Date(2025, 12, 1, 10, 5, 0, 123456e3, time.UTC), a.CreatedAt)
	assert.Equal(t, runstore.ApplyKindRollback, rb.Kind)
	assert.Equal(t, a.ID, rb.Parent)
	require.Len(t, a.Files, 3)
	names := ve.ApplyFileNames("Front")
	for i := range names {
		assert.Equal(t, names[i], a.Files[i].Name)
	}
	applied, err := ve.ReadTableCSV(bytes.NewReader(readBlob(t, fs, a.Files[0].StorageKey)), "applied")
	require.NoError(t, err)
	eff, err := ve.ReadTableCSV(bytes.NewReader(readBlob(t, fs, a.Files[1].StorageKey)), "effective")
	require.NoError(t, err)
	var m ve.Manifest
	require.NoError(t, json.Unmarshal(readBlob(t, fs, a.Files[2].StorageKey), &m))
	back, err := ve.Rollback(applied, eff, &m)
	require.NoError(t, err)
	base, err := ve.ReadTableCSV(bytes.NewReader(d3t.VETable(d3t.BaseVE, 1)), "base")
	require.NoError(t, err)
	assert.Equal(t, base.Values, back.Values, "the predecessor's base, bit for bit")
	assert.Equal(t, 7.0, m.MaxAdjustPercent)
	assert.Contains(t, m.Comment, "first try")
	restored, err := ve.ReadTableCSV(bytes.NewReader(readBlob(t, fs, rb.Files[0].StorageKey)), "restored")
	require.NoError(t, err)
	assert.Equal(t, base.Values, restored.Values)

	// This project's own apply builds on the imported chain.
	_, err = rs.RecordApply(ctx, r.ID, runstore.NewApply{Cylinder: "Front", Kind: runstore.ApplyKindApply, Parent: rb.ID, Files: []runstore.FileMeta{a.Files[0].FileMeta, a.Files[1].FileMeta, a.Files[2].FileMeta}})
	require.NoError(t, err)
}

func checkOthers(t *testing.T, rs runstore.RunStore, byFolder map[string]dynoai3import.Outcome) {
	// C: the run state decides the status; the Jetstream id and the
	// converted input are kept; the output manifest's files are verified.
	r, files := getRun(t, rs, byFolder[d3t.DirRunManager])
	assert.Equal(t, runstore.StatusCompleted, r.Status)
	assert.Equal(t, "JS-ALPHA-001", r.JetstreamID)
	assert.Equal(t, time.Date(2025, 11, 25, 14, 30, 0, 123e6, time.UTC), r.CreatedAt)
	assert.Equal(t, "dynoai_input.csv", r.Filename)
	fileNamed(t, files, "jetstream_raw_JS-ALPHA-001.csv")
	fileNamed(t, files, "VE_Correction_Delta_DYNO.csv")
	fileNamed(t, files, "run_state.json")
	assert.True(t, strings.HasPrefix(byFolder[d3t.DirRunManager].Key, "dynoai3:run_2025-11-25T14-30-00Z-abc123:"))
	r, _ = getRun(t, rs, byFolder[d3t.DirRunManagerError])
	assert.Equal(t, runstore.StatusFailed, r.Status)
	assert.Equal(t, runstore.RunError{Stage: "processing", Code: "VE-CSV-42", Message: "VE table CSV malformed"}, *r.Error)

	// D1: peaks from the analysis, corrections from the multipliers.
	r, _ = getRun(t, rs, byFolder[d3t.DirJetDrive])
	assert.Equal(t, runstore.StatusCompleted, r.Status)
	require.NotNil(t, r.Stats.PeakHP)
	assert.Equal(t, 112.4, *r.Stats.PeakHP)
	assert.Equal(t, 121.9, *r.Stats.PeakTorque)
	assert.Equal(t, int64(3), *r.Stats.CorrectedCells)
	assert.InDelta(t, 2.5, *r.Stats.MaxCorrectionPct, 1e-9)
	assert.Equal(t, time.Date(2025, 12, 1, 16, 20, 0, 250e6, time.UTC), r.CreatedAt, "a zone-less isoformat is UTC")
	assert.Equal(t, "run.csv", r.Filename)

	// D2: the session summary.
	r, _ = getRun(t, rs, byFolder[d3t.DirAutoTune])
	assert.Equal(t, runstore.StatusCompleted, r.Status)
	assert.Equal(t, 98.5, *r.Stats.PeakHP)
	assert.Equal(t, "session.csv", r.Filename, "the log named by a Windows path, found in the folder")
	assert.Equal(t, time.Date(2025, 12, 1, 10, 10, 10, 0, time.UTC), r.CreatedAt)

	// E and the folder without a manifest.
	r, files = getRun(t, rs, byFolder[d3t.DirTransient])
	assert.Equal(t, runstore.StatusCompleted, r.Status)
	assert.Len(t, files, 2)
	r, _ = getRun(t, rs, byFolder[d3t.DirNoManifest])
	assert.Equal(t, runstore.StatusFailed, r.Status)
	assert.Equal(t, "DYNOAI3_NO_MANIFEST", r.Error.Code)
}

// TestImportRefusesWithoutStores: only a dry run may go without stores.
func TestImportRefusesWithoutStores(t *testing.T) {
	_, err := dynoai3import.Import(context.Background(), t.TempDir(), nil, nil, dynoai3import.Options{})
	require.Error(t, err)
	_, err = dynoai3import.Import(context.Background(), filepath.Join(t.TempDir(), "absent"), nil, nil, dynoai3import.Options{DryRun: true})
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestImportStopsWhenTheStoreIsDown: an unavailable store stops the
// import with an error instead of skipping every folder.
func TestImportStopsWhenTheStoreIsDown(t *testing.T) {
	root, inputs := t.TempDir(), t.TempDir()
	d3t.BuildTree(t, root, inputs)
	rs := runstore.NewMemory(runstore.Options{})
	rs.SetUnavailable(errors.New("disk full"))
	rep, err := dynoai3import.Import(context.Background(), root, rs, runstore.NewMemFileStore(), dynoai3import.Options{})
	require.ErrorIs(t, err, runstore.ErrUnavailable)
	assert.Zero(t, rep.Count(dynoai3import.Imported))
}

// TestImportConcurrent: two importers of one tree store each run once.
func TestImportConcurrent(t *testing.T) {
	eachStore(t, func(t *testing.T, rs importStore, fs runstore.FileStore) {
		root, inputs := t.TempDir(), t.TempDir()
		d3t.BuildTree(t, root, inputs)
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				_, err := dynoai3import.Import(context.Background(), root, rs, fs, dynoai3import.Options{InputDirs: []string{inputs}})
				errs <- err
			}()
		}
		require.NoError(t, <-errs)
		require.NoError(t, <-errs)
		assert.Len(t, allRuns(t, rs), 11)
	})
}

// TestImportOneFolderThenTheTree: a run folder given as the root is named
// by itself, and importing the whole tree later finds it already there
// (the key does not depend on where the import started).
func TestImportOneFolderThenTheTree(t *testing.T) {
	ctx := context.Background()
	root, inputs := t.TempDir(), t.TempDir()
	d3t.BuildTree(t, root, inputs)
	rs, fs := runstore.NewMemory(runstore.Options{}), runstore.NewMemFileStore()
	opts := dynoai3import.Options{InputDirs: []string{inputs}}
	one, err := dynoai3import.Import(ctx, filepath.Join(root, d3t.DirToolkit), rs, fs, opts)
	require.NoError(t, err)
	require.Len(t, one.Outcomes, 1)
	assert.Equal(t, filepath.Base(d3t.DirToolkit), one.Outcomes[0].Folder)
	assert.Equal(t, dynoai3import.Imported, one.Outcomes[0].Action)
	all, err := dynoai3import.Import(ctx, root, rs, fs, opts)
	require.NoError(t, err)
	assert.Equal(t, 1, all.Count(dynoai3import.Existing))
	assert.Equal(t, d3t.Importable-1, all.Count(dynoai3import.Imported))
	assert.Equal(t, one.Outcomes[0].Run, outcomes(all)[d3t.DirToolkit].Run)
}
