package runstoretest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/runstore"
)

// importTests are the Importer part of the suite, run on stores that
// implement runstore.Importer.
var importTests = []struct {
	name string
	f    func(t *testing.T, e *env, im runstore.Importer)
}{
	{"ImportRoundTrip", testImportRoundTrip},
	{"ImportDefaults", testImportDefaults},
	{"ImportIdempotent", testImportIdempotent},
	{"ImportTenants", testImportTenants},
	{"ImportValidation", testImportValidation},
	{"ImportRace", testImportRace},
	{"ImportDeleteFreesKey", testImportDeleteFreesKey},
	{"ImportThenRecordApply", testImportThenRecordApply},
	{"ImportedRunLookup", testImportedRunLookup},
}

func runImportTests(t *testing.T, open Opener) {
	for _, tc := range importTests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, open)
			im, ok := e.s.(runstore.Importer)
			if !ok {
				t.Skipf("%T does not implement runstore.Importer", e.s)
			}
			tc.f(t, e, im)
		})
	}
}

// importFile returns the metadata of a file named name whose contents are
// tag and name.
func importFile(name, tag string) runstore.FileMeta {
	sum := sha256.Sum256([]byte(tag + "/" + name))
	h := hex.EncodeToString(sum[:])
	ct := "text/csv"
	if strings.HasSuffix(name, ".json") {
		ct = "application/json"
	}
	return runstore.FileMeta{Name: name, ContentType: ct, Size: int64(len(tag) + len(name)), SHA256: h, StorageKey: h}
}

func importApply(cyl string, kind runstore.ApplyKind, tag string, at time.Time) runstore.ImportApply {
	names := []string{"VE_Applied_" + cyl + ".csv", "VE_Effective_" + cyl + ".csv", "VE_Apply_" + cyl + ".manifest.json"}
	if kind == runstore.ApplyKindRollback {
		names = []string{"VE_Restored_" + cyl + ".csv"}
	}
	a := runstore.ImportApply{Cylinder: cyl, Kind: kind, At: at}
	for _, n := range names {
		a.Files = append(a.Files, importFile(n, tag))
	}
	return a
}

// sampleImport is a completed run of the predecessor with three files and
// apply records for two cylinders, the front one rolled back and applied
// again.
func sampleImport(key string) runstore.ImportRun {
	pacific := time.FixedZone("PST", -8*3600)
	created := time.Date(2025, 11, 10, 9, 30, 15, 123456789, pacific)
	completed := created.Add(42*time.Second + 987654321)
	return runstore.ImportRun{
		Key: key,
		Run: runstore.NewRun{Source: runstore.SourceImport, Filename: "2025-11-10_pull3.csv", InputSize: 48213,
			Vehicle: "2019 Street Glide M8-114", Settings: json.RawMessage(`{"smooth_passes":2,"clamp_pct":7}`)},
		Status:  runstore.StatusCompleted,
		Message: "VE corrections ready",
		Results: json.RawMessage(`{"ve_front":[[1.5,-2.25],[0,3]],"note":"imported \"as is\" ✓"}`),
		Stats: runstore.Stats{PeakHP: ptr(112.5), PeakTorque: ptr(121.25), AFRMean: ptr(13.1), AFRStd: ptr(0.42),
			CorrectedCells: ptr(int64(37)), MaxCorrectionPct: ptr(6.75)},
		CreatedAt:   created,
		CompletedAt: completed,
		Reason:      "imported from DynoAI_3 folder runs/2025-11-10_pull3",
		Files: []runstore.FileMeta{
			importFile("2025-11-10_pull3.csv", key), importFile("manifest.json", key), importFile("VE_Correction_Delta_DYNO.csv", key),
		},
		Applies: []runstore.ImportApply{
			importApply("Front", runstore.ApplyKindApply, key+"a1", completed.Add(time.Minute)),
			importApply("Rear", runstore.ApplyKindApply, key+"a2", time.Time{}),
			importApply("Front", runstore.ApplyKindRollback, key+"rb", completed.Add(time.Hour)),
			importApply("Front", runstore.ApplyKindApply, key+"a3", completed.Add(2*time.Hour)),
		},
	}
}

// counts returns how many runs, files and apply records the store holds
// (every tenant).
func (e *env) counts(t *testing.T) (runs, files, applies int) {
	t.Helper()
	p, err := e.s.List(e.ctx, runstore.Filter{Limit: runstore.MaxLimit})
	require.NoError(t, err)
	for _, r := range p.Runs {
		fs, err := e.s.Files(e.ctx, r.ID)
		require.NoError(t, err)
		as, err := e.s.Applies(e.ctx, r.ID)
		require.NoError(t, err)
		files += len(fs)
		applies += len(as)
	}
	return len(p.Runs), files, applies
}

// testImportRoundTrip: every field of an imported run, its history, files
// and apply records reads back as given, times in UTC to the microsecond.
func testImportRoundTrip(t *testing.T, e *env, im runstore.Importer) {
	in := sampleImport("dynoai3:run-0001:sha256:ab12")
	e.clock.Advance(time.Hour) // now is not the run's time
	now := e.clock.Now().UTC().Truncate(time.Microsecond)
	r, created, err := im.Import(e.ctx, in)
	require.NoError(t, err)
	require.True(t, created)
	require.True(t, runstore.ValidID(r.ID), "id %q", r.ID)
	wantCreated := in.CreatedAt.UTC().Truncate(time.Microsecond)
	wantCompleted := in.CompletedAt.UTC().Truncate(time.Microsecond)
	assert.Equal(t, fmt.Sprintf("%012x", wantCreated.UnixMilli()), r.ID[:12], "the id sorts with the run's creation, not the import")

	want, wantHistory := in.ImportedRecord(r.ID, now)
	assert.Equal(t, runstore.SourceImport, want.Source)
	assert.Equal(t, runstore.StatusCompleted, want.Status)
	assert.Equal(t, int64(1), want.Version)
	assert.Equal(t, 1.0, want.Progress)
	assert.Equal(t, wantCreated, want.CreatedAt)
	assert.Equal(t, wantCompleted, want.CompletedAt)
	assert.Equal(t, now, want.UpdatedAt)
	got, err := e.s.Get(e.ctx, r.ID)
	require.NoError(t, err)
	for _, x := range []*runstore.Run{&r, &got} {
		assert.JSONEq(t, string(in.Run.Settings), string(x.Settings))
		assert.JSONEq(t, string(in.Results), string(x.Results))
		x.Settings, x.Results = nil, nil
	}
	want.Settings, want.Results = nil, nil
	assert.Equal(t, want, r, "what Import returns")
	assert.Equal(t, want, got, "what Get reads")
	assert.Equal(t, time.UTC, got.CreatedAt.Location())

	h, err := e.s.History(e.ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, wantHistory, h)
	assert.Equal(t, []runstore.StatusChange{
		{To: runstore.StatusQueued, At: wantCreated, Reason: "created"},
		{From: runstore.StatusQueued, To: runstore.StatusCompleted, At: wantCompleted, Reason: in.Reason},
	}, h)

	// The run's files first, in order, stamped with the completion; then
	// each record's files, stamped with the record's time.
	files, err := e.s.Files(e.ctx, r.ID)
	require.NoError(t, err)
	var wantFiles []runstore.FileMeta
	var wantAt []time.Time
	for _, f := range in.Files {
		wantFiles = append(wantFiles, f)
		wantAt = append(wantAt, wantCompleted)
	}
	for _, a := range in.Applies {
		for _, f := range a.Files {
			wantFiles = append(wantFiles, f)
			wantAt = append(wantAt, a.ApplyTime(wantCompleted))
		}
	}
	require.Len(t, files, len(wantFiles))
	for i, f := range files {
		assert.Equal(t, wantFiles[i], f.FileMeta, "file %d", i)
		assert.Equal(t, wantAt[i], f.CreatedAt, "file %d", i)
		assert.Equal(t, r.ID, f.RunID)
		if i > 0 {
			assert.Greater(t, f.ID, files[i-1].ID, "files keep their order")
		}
	}

	applies, err := e.s.Applies(e.ctx, r.ID)
	require.NoError(t, err)
	require.Len(t, applies, 4)
	front1, rear, rollback, front2 := applies[0], applies[1], applies[2], applies[3]
	assert.Equal(t, []string{"Front", "Rear", "Front", "Front"}, []string{front1.Cylinder, rear.Cylinder, rollback.Cylinder, front2.Cylinder})
	assert.Equal(t, []runstore.ApplyKind{runstore.ApplyKindApply, runstore.ApplyKindApply, runstore.ApplyKindRollback, runstore.ApplyKindApply},
		[]runstore.ApplyKind{front1.Kind, rear.Kind, rollback.Kind, front2.Kind})
	assert.Equal(t, []int64{0, 0, front1.ID, rollback.ID}, []int64{front1.Parent, rear.Parent, rollback.Parent, front2.Parent},
		"each cylinder's records chain in the order given")
	assert.Equal(t, wantCompleted.Add(time.Minute), front1.CreatedAt)
	assert.Equal(t, wantCompleted, rear.CreatedAt, "a record without a time was made at the completion")
	assert.Equal(t, wantCompleted.Add(2*time.Hour), front2.CreatedAt)
	byID := map[int64]runstore.File{}
	for _, f := range files {
		byID[f.ID] = f
	}
	for i, a := range applies {
		assert.Equal(t, r.ID, a.RunID)
		require.Len(t, a.Files, len(in.Applies[i].Files))
		for j, f := range a.Files {
			assert.Equal(t, in.Applies[i].Files[j], f.FileMeta, "record %d file %d", i, j)
			assert.Equal(t, byID[f.ID], f, "a record's files are files of the run")
		}
	}

	// Listed among the imported runs, and only there.
	p, err := e.s.List(e.ctx, runstore.Filter{Sources: []runstore.RunSource{runstore.SourceImport}})
	require.NoError(t, err)
	require.Len(t, p.Runs, 1)
	assert.Equal(t, r.ID, p.Runs[0].ID)
	e.create(runstore.NewRun{Source: runstore.SourceUpload})
	p, err = e.s.List(e.ctx, runstore.Filter{Sources: []runstore.RunSource{runstore.SourceImport}})
	require.NoError(t, err)
	assert.Len(t, p.Runs, 1)
	p, err = e.s.List(e.ctx, runstore.Filter{Sources: []runstore.RunSource{runstore.SourceUpload}})
	require.NoError(t, err)
	require.Len(t, p.Runs, 1)
	assert.NotEqual(t, r.ID, p.Runs[0].ID)
	p, err = e.s.List(e.ctx, runstore.Filter{Text: "street glide", CreatedBefore: wantCreated.Add(time.Second)})
	require.NoError(t, err)
	require.Len(t, p.Runs, 1, "found by vehicle and by its own creation time")
	assert.Equal(t, r.ID, p.Runs[0].ID)
}

// testImportDefaults: a failed run (with its error, progress 0) and a
// cancelled one; no times means the store's clock, no completion time
// means the creation; no reason means "imported"; no files, no records.
func testImportDefaults(t *testing.T, e *env, im runstore.Importer) {
	now := e.clock.Now().UTC().Truncate(time.Microsecond)
	failed := runstore.ImportRun{Key: "failed-1", Run: runstore.NewRun{Source: runstore.SourceImport},
		Status: runstore.StatusFailed, Error: &runstore.RunError{Stage: "analyze", Code: "no_wot", Message: "no WOT pulls", Detail: "0 of 812 rows"}}
	r, created, err := im.Import(e.ctx, failed)
	require.NoError(t, err)
	require.True(t, created)
	got, err := e.s.Get(e.ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, r, got)
	assert.Equal(t, runstore.StatusFailed, got.Status)
	assert.Equal(t, failed.Error, got.Error)
	assert.Equal(t, "analyze", got.Stage, "a failed run's stage is its error's, as Fail records it")
	assert.Zero(t, got.Progress)
	assert.Nil(t, got.Results)
	assert.Nil(t, got.Settings)
	assert.Equal(t, runstore.Stats{}, got.Stats)
	assert.Equal(t, now, got.CreatedAt)
	assert.Equal(t, now, got.CompletedAt)
	assert.Equal(t, now, got.UpdatedAt)
	h, err := e.s.History(e.ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, []runstore.StatusChange{
		{To: runstore.StatusQueued, At: now, Reason: "created"},
		{From: runstore.StatusQueued, To: runstore.StatusFailed, At: now, Reason: "imported"},
	}, h)
	files, err := e.s.Files(e.ctx, r.ID)
	require.NoError(t, err)
	assert.Empty(t, files)
	applies, err := e.s.Applies(e.ctx, r.ID)
	require.NoError(t, err)
	assert.Empty(t, applies)

	at := time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC)
	cancelled := runstore.ImportRun{Key: "cancelled-1", Run: runstore.NewRun{Source: runstore.SourceImport, Tenant: "shop-7"},
		Status: runstore.StatusCancelled, CreatedAt: at}
	c, created, err := im.Import(e.ctx, cancelled)
	require.NoError(t, err)
	require.True(t, created)
	got, err = e.s.Get(e.ctx, c.ID)
	require.NoError(t, err)
	assert.Equal(t, c, got)
	assert.Equal(t, runstore.StatusCancelled, got.Status)
	assert.Zero(t, got.Progress, "only a completed run is done")
	assert.Equal(t, "shop-7", got.Tenant)
	assert.Equal(t, at.Truncate(time.Microsecond), got.CreatedAt)
	assert.Equal(t, got.CreatedAt, got.CompletedAt)
}

// testImportIdempotent: importing a key again adds nothing, whatever the
// second import carries, and returns the run stored the first time.
func testImportIdempotent(t *testing.T, e *env, im runstore.Importer) {
	in := sampleImport("dynoai3:run-0002")
	first, created, err := im.Import(e.ctx, in)
	require.NoError(t, err)
	require.True(t, created)
	runs, files, applies := e.counts(t)
	require.Equal(t, []int{1, 3 + 3 + 3 + 1 + 3, 4}, []int{runs, files, applies})

	e.clock.Advance(time.Minute)
	again := sampleImport("dynoai3:run-0002")
	again.Message = "a different message"
	again.Files = append(again.Files, importFile("extra.csv", "x"))
	for range 2 {
		second, created, err := im.Import(e.ctx, again)
		require.NoError(t, err)
		assert.False(t, created)
		assert.Equal(t, first.ID, second.ID)
		assert.Equal(t, first.Message, second.Message, "the stored run, not the second one")
		assert.Equal(t, first.UpdatedAt, second.UpdatedAt)
	}
	runs2, files2, applies2 := e.counts(t)
	assert.Equal(t, []int{runs, files, applies}, []int{runs2, files2, applies2}, "nothing added")
	h, err := e.s.History(e.ctx, first.ID)
	require.NoError(t, err)
	assert.Len(t, h, 2)

	// Another key is another run.
	other, created, err := im.Import(e.ctx, sampleImport("dynoai3:run-0003"))
	require.NoError(t, err)
	assert.True(t, created)
	assert.NotEqual(t, first.ID, other.ID)
}

// testImportTenants: a key belongs to a tenant; the same key in another
// tenant is another run.
func testImportTenants(t *testing.T, e *env, im runstore.Importer) {
	a := sampleImport("shared-key")
	b := sampleImport("shared-key")
	b.Run.Tenant = "shop-b"
	ra, created, err := im.Import(e.ctx, a)
	require.NoError(t, err)
	require.True(t, created)
	rb, created, err := im.Import(e.ctx, b)
	require.NoError(t, err)
	require.True(t, created)
	assert.NotEqual(t, ra.ID, rb.ID)
	assert.Equal(t, "", ra.Tenant)
	assert.Equal(t, "shop-b", rb.Tenant)
	again, created, err := im.Import(e.ctx, b)
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, rb.ID, again.ID)
	p, err := e.s.List(e.ctx, runstore.Filter{Tenants: []string{"shop-b"}})
	require.NoError(t, err)
	require.Len(t, p.Runs, 1)
	assert.Equal(t, rb.ID, p.Runs[0].ID)
	runs, _, _ := e.counts(t)
	assert.Equal(t, 2, runs)
}

// testImportValidation: an invalid import is refused with an
// *runstore.InvalidError before anything is written.
func testImportValidation(t *testing.T, e *env, im runstore.Importer) {
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	cases := map[string]func(r *runstore.ImportRun){
		"queued":               func(r *runstore.ImportRun) { r.Status = runstore.StatusQueued },
		"processing":           func(r *runstore.ImportRun) { r.Status = runstore.StatusProcessing },
		"unknown status":       func(r *runstore.ImportRun) { r.Status = "done" },
		"failed without error": func(r *runstore.ImportRun) { r.Status = runstore.StatusFailed },
		"completed with error": func(r *runstore.ImportRun) { r.Error = &runstore.RunError{Message: "x"} },
		"failed, empty error":  func(r *runstore.ImportRun) { r.Status, r.Error = runstore.StatusFailed, &runstore.RunError{} },
		"completed before":     func(r *runstore.ImportRun) { r.CreatedAt, r.CompletedAt = at, at.Add(-time.Microsecond) },
		"bad file sha256":      func(r *runstore.ImportRun) { r.Files[1].SHA256 = "ABC" },
		"file with a path":     func(r *runstore.ImportRun) { r.Files[0].Name = "../etc/passwd" },
		"file without key":     func(r *runstore.ImportRun) { r.Files[2].StorageKey = "" },
		"rollback first":       func(r *runstore.ImportRun) { r.Applies = r.Applies[2:] },
		"rollback of rollback": func(r *runstore.ImportRun) { r.Applies = append(r.Applies[:3:3], r.Applies[2]) },
		"apply with one file":  func(r *runstore.ImportRun) { r.Applies[1].Files = r.Applies[1].Files[:1] },
		"apply without cyl":    func(r *runstore.ImportRun) { r.Applies[0].Cylinder = "" },
		"unknown apply kind":   func(r *runstore.ImportRun) { r.Applies[0].Kind = "undo" },
		"empty key":            func(r *runstore.ImportRun) { r.Key = "" },
		"long key":             func(r *runstore.ImportRun) { r.Key = strings.Repeat("k", 256) },
		"key with a newline":   func(r *runstore.ImportRun) { r.Key = "run-1\nrun-2" },
		"bad tenant":           func(r *runstore.ImportRun) { r.Run.Tenant = "shop b" },
		"unknown source":       func(r *runstore.ImportRun) { r.Run.Source = "dynoai3" },
		"results not JSON":     func(r *runstore.ImportRun) { r.Results = json.RawMessage(`{"a":`) },
		"settings not JSON":    func(r *runstore.ImportRun) { r.Run.Settings = json.RawMessage(`nope`) },
		"negative input size":  func(r *runstore.ImportRun) { r.Run.InputSize = -1 },
		"reason with a NUL":    func(r *runstore.ImportRun) { r.Reason = "a\x00b" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			in := sampleImport("validation-key")
			mutate(&in)
			require.Error(t, in.Validate())
			_, created, err := im.Import(e.ctx, in)
			require.ErrorIs(t, err, runstore.ErrInvalid)
			var ie *runstore.InvalidError
			require.ErrorAs(t, err, &ie)
			assert.NotEmpty(t, ie.Field)
			assert.False(t, created)
			runs, files, applies := e.counts(t)
			assert.Equal(t, []int{0, 0, 0}, []int{runs, files, applies}, "nothing written")
		})
	}
	// The longest key is fine, and refused ones did not take the key.
	in := sampleImport(strings.Repeat("k", 255))
	_, created, err := im.Import(e.ctx, in)
	require.NoError(t, err)
	assert.True(t, created)
	_, created, err = im.Import(e.ctx, sampleImport("validation-key"))
	require.NoError(t, err)
	assert.True(t, created)
}

// testImportRace: importers racing on one key store one run; every one of
// them returns it, exactly one saying it created it.
func testImportRace(t *testing.T, e *env, im runstore.Importer) {
	const importers = 8
	var wg sync.WaitGroup
	runs := make([]runstore.Run, importers)
	created := make([]bool, importers)
	errs := make([]error, importers)
	start := make(chan struct{})
	for i := range importers {
		wg.Go(func() {
			<-start
			in := sampleImport("race-key")
			in.Message = "importer " + strconv.Itoa(i)
			runs[i], created[i], errs[i] = im.Import(e.ctx, in)
		})
	}
	close(start)
	wg.Wait()
	winners := 0
	for i := range importers {
		require.NoError(t, errs[i], "importer %d", i)
		assert.Equal(t, runs[0].ID, runs[i].ID, "importer %d", i)
		assert.Equal(t, runs[0].Message, runs[i].Message, "importer %d returns the stored run", i)
		if created[i] {
			winners++
		}
	}
	assert.Equal(t, 1, winners)
	n, files, applies := e.counts(t)
	assert.Equal(t, []int{1, 3 + 3 + 3 + 1 + 3, 4}, []int{n, files, applies}, "one run, its files and records once")
	h, err := e.s.History(e.ctx, runs[0].ID)
	require.NoError(t, err)
	assert.Len(t, h, 2)
}

// testImportDeleteFreesKey: deleting an imported run lets its key be
// imported again, as a new run.
func testImportDeleteFreesKey(t *testing.T, e *env, im runstore.Importer) {
	first, created, err := im.Import(e.ctx, sampleImport("delete-key"))
	require.NoError(t, err)
	require.True(t, created)
	require.NoError(t, e.s.Delete(e.ctx, first.ID))
	runs, files, applies := e.counts(t)
	require.Equal(t, []int{0, 0, 0}, []int{runs, files, applies}, "the run's files and records went with it")
	second, created, err := im.Import(e.ctx, sampleImport("delete-key"))
	require.NoError(t, err)
	assert.True(t, created)
	assert.NotEqual(t, first.ID, second.ID)
	_, err = e.s.Get(e.ctx, first.ID)
	assert.ErrorIs(t, err, runstore.ErrNotFound)
	again, created, err := im.Import(e.ctx, sampleImport("delete-key"))
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, second.ID, again.ID)
}

// testImportThenRecordApply: an imported run's records are the chains
// RecordApply builds on: a rollback of the front's last apply, and an
// apply on the rear's; building on a stale record is a conflict.
func testImportThenRecordApply(t *testing.T, e *env, im runstore.Importer) {
	r, _, err := im.Import(e.ctx, sampleImport("apply-key"))
	require.NoError(t, err)
	imported, err := e.s.Applies(e.ctx, r.ID)
	require.NoError(t, err)
	require.Len(t, imported, 4)
	frontHead, rearHead := imported[3], imported[1]

	_, err = e.s.RecordApply(e.ctx, r.ID, runstore.NewApply{Cylinder: "Front", Kind: runstore.ApplyKindRollback, Parent: imported[0].ID,
		Files: applyFiles(1, "stale")})
	assert.ErrorIs(t, err, runstore.ErrConflict, "the front's head is its last imported record")
	_, err = e.s.RecordApply(e.ctx, r.ID, runstore.NewApply{Cylinder: "Rear", Kind: runstore.ApplyKindApply, Parent: 0,
		Files: applyFiles(3, "stale")})
	assert.ErrorIs(t, err, runstore.ErrConflict, "the rear has a record")

	rb, err := e.s.RecordApply(e.ctx, r.ID, runstore.NewApply{Cylinder: "Front", Kind: runstore.ApplyKindRollback, Parent: frontHead.ID,
		Files: applyFiles(1, "rb")})
	require.NoError(t, err)
	assert.Equal(t, frontHead.ID, rb.Parent)
	ap, err := e.s.RecordApply(e.ctx, r.ID, runstore.NewApply{Cylinder: "Rear", Kind: runstore.ApplyKindApply, Parent: rearHead.ID,
		Files: applyFiles(3, "ap")})
	require.NoError(t, err)
	assert.Equal(t, rearHead.ID, ap.Parent)
	all, err := e.s.Applies(e.ctx, r.ID)
	require.NoError(t, err)
	require.Len(t, all, 6)
	assert.Equal(t, rb, all[4])
	assert.Equal(t, ap, all[5])
}

// testImportedRunLookup: ImportedRun finds a run by tenant and key, and
// answers ErrNotFound before the import, for another tenant, and after the
// run is deleted.
func testImportedRunLookup(t *testing.T, e *env, im runstore.Importer) {
	_, err := im.ImportedRun(e.ctx, "", "lookup-key")
	require.ErrorIs(t, err, runstore.ErrNotFound)
	r, created, err := im.Import(e.ctx, sampleImport("lookup-key"))
	require.NoError(t, err)
	require.True(t, created)
	got, err := im.ImportedRun(e.ctx, "", "lookup-key")
	require.NoError(t, err)
	assert.Equal(t, r.ID, got.ID)
	assert.Equal(t, r.Status, got.Status)
	_, err = im.ImportedRun(e.ctx, "shop-b", "lookup-key")
	assert.ErrorIs(t, err, runstore.ErrNotFound)
	require.NoError(t, e.s.Delete(e.ctx, r.ID))
	_, err = im.ImportedRun(e.ctx, "", "lookup-key")
	assert.ErrorIs(t, err, runstore.ErrNotFound)
}
