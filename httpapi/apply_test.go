package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/ve"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// baseTable returns a plausible base VE table on the run's grid.
func baseTable(t *testing.T, rpm, mapKPa []float64) []byte {
	t.Helper()
	tb := ve.MustTable(rpm, mapKPa, 0)
	for i := range rpm {
		for j := range mapKPa {
			tb.Set(i, j, 40+float64(i)*1.5+float64(j)*0.75)
		}
	}
	tb.Precision = 2
	var b bytes.Buffer
	require.NoError(t, tb.WriteCSV(&b, ve.CSVFormat{Cell: ve.CellFormat{Decimals: 2}}))
	return b.Bytes()
}

func (e *testEnv) uploadTable(t *testing.T, id, name string, data []byte) resp {
	body, ct := multipartBody(t, name, data, nil)
	return e.do(t, "POST", "/api/runs/"+id+"/tables", body, map[string]string{"Content-Type": ct})
}

func TestApplyDryRunRollback(t *testing.T) {
	e := newEnv(t, nil)
	run := e.analyze(t, nil)
	require.Equal(t, runstore.StatusCompleted, run.Status)
	vd := e.get(t, "/api/ve-data/"+run.ID).json(t)
	var rpm, mp []float64
	for _, v := range vd["rpm"].([]any) {
		rpm = append(rpm, v.(float64))
	}
	for _, v := range vd["load"].([]any) {
		mp = append(mp, v.(float64))
	}
	base := baseTable(t, rpm, mp)

	up := e.uploadTable(t, run.ID, "base.csv", base)
	require.Equal(t, http.StatusCreated, up.code, "body %s", up.body)
	baseID := int64(up.json(t)["file"].(map[string]any)["id"].(float64))

	dry := e.postJSON(t, "/api/runs/"+run.ID+"/dry-run", map[string]any{"base_file_id": baseID, "cylinder": "front"}, nil)
	require.Equal(t, 200, dry.code, "body %s", dry.body)
	dm := dry.json(t)
	assert.Equal(t, true, dm["dry_run"])
	changed := int(dm["cells_modified"].(float64))
	assert.Positive(t, changed)
	assert.Len(t, dm["diff"], changed)
	filesBefore, err := e.runs.Files(context.Background(), run.ID)
	require.NoError(t, err)

	ap := e.postJSON(t, "/api/runs/"+run.ID+"/apply", map[string]any{"base_file_id": baseID, "comment": "first pass"}, nil)
	require.Equal(t, 200, ap.code, "body %s", ap.body)
	am := ap.json(t)
	assert.Equal(t, float64(changed), am["cells_modified"], "apply does what the dry run said")
	assert.NotContains(t, string(ap.body), "storage_key")
	assert.NotContains(t, string(ap.body), "/tmp")
	filesAfter, err := e.runs.Files(context.Background(), run.ID)
	require.NoError(t, err)
	assert.Len(t, filesAfter, len(filesBefore)+3)

	rb := e.postJSON(t, "/api/runs/"+run.ID+"/rollback", map[string]any{"cylinder": "front"}, nil)
	require.Equal(t, 200, rb.code, "body %s", rb.body)
	restoredURL := rb.json(t)["file"].(map[string]any)["url"].(string)
	restored := e.get(t, restoredURL).body
	rt, err := ve.ReadTableCSV(bytes.NewReader(restored), "restored")
	require.NoError(t, err)
	bt, err := ve.ReadTableCSV(bytes.NewReader(base), "base")
	require.NoError(t, err)
	assert.Equal(t, bt.Hash(), rt.Hash(), "rollback restores the base exactly")

	t.Run("legacy routes", func(t *testing.T) {
		r := e.postJSON(t, "/api/apply", map[string]any{"run_id": run.ID, "base_file_id": baseID, "dry_run": true}, nil)
		require.Equal(t, 200, r.code, "body %s", r.body)
		assert.Equal(t, true, r.json(t)["dry_run"])
		r = e.postJSON(t, "/api/apply", map[string]any{"run_id": run.ID, "base_file_id": baseID, "cylinder": "rear"}, nil)
		require.Equal(t, 200, r.code, "body %s", r.body)
		assert.Equal(t, true, r.json(t)["success"])
		r = e.postJSON(t, "/api/rollback", map[string]any{"run_id": run.ID, "cylinder": "rear"}, nil)
		require.Equal(t, 200, r.code, "body %s", r.body)
		for _, body := range []map[string]any{{}, {"run_id": "../../etc"}, {"run_id": "", "base_file_id": 1}, {"run_id": run.ID, "base_ve_path": "x"}} {
			r = e.postJSON(t, "/api/apply", body, nil)
			assert.Equal(t, 400, r.code, "%v: %s", body, r.body)
			r.errCode(t)
		}
		assert.Equal(t, 404, e.postJSON(t, "/api/rollback", map[string]any{"run_id": "00000000000000000000000000000000"}, nil).code)
	})
	t.Run("errors", func(t *testing.T) {
		p := "/api/runs/" + run.ID
		cases := []struct {
			name string
			path string
			body string
			ct   string
			want int
			code string
		}{
			{"no base", p + "/apply", `{}`, "application/json", 400, CodeValidation},
			{"unknown field", p + "/apply", `{"base_file_id":1,"base_ve_path":"/etc/passwd"}`, "application/json", 400, CodeValidation},
			{"malformed", p + "/apply", `{"base_file_id":`, "application/json", 400, CodeBadRequest},
			{"trailing", p + "/apply", `{"base_file_id":1} {}`, "application/json", 400, CodeBadRequest},
			{"wrong type", p + "/apply", `{"base_file_id":"1"}`, "application/json", 400, CodeValidation},
			{"not json", p + "/apply", `base_file_id=1`, "application/x-www-form-urlencoded", 415, CodeUnsupportedMedia},
			{"empty", p + "/apply", ``, "application/json", 400, CodeBadRequest},
			{"bad cylinder", p + "/apply", `{"base_file_id":1,"cylinder":"middle"}`, "application/json", 400, CodeValidation},
			{"missing base file", p + "/apply", `{"base_file_id":99999}`, "application/json", 404, CodeNotFound},
			{"base is not a table", p + "/apply", `{"base_file_id":1}`, "application/json", 422, "DATA_INTEGRITY_ERROR"},
			{"negative limit", p + "/dry-run", `{"base_file_id":` + strconv.FormatInt(baseID, 10) + `,"max_adjust_percent":-5}`, "application/json", 400, CodeValidation},
			{"bad run id", "/api/runs/xyz/apply", `{"base_file_id":1}`, "application/json", 400, CodeValidation},
			{"unknown run", "/api/runs/00000000000000000000000000000000/apply", `{"base_file_id":1}`, "application/json", 404, CodeNotFound},
			{"rollback never applied", p + "/rollback", `{"cylinder":"cyl3"}`, "application/json", 400, CodeValidation},
			{"rollback twice", p + "/rollback", `{"cylinder":"front"}`, "application/json", 409, CodeConflict},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := e.do(t, "POST", c.path, bytes.NewReader([]byte(c.body)), map[string]string{"Content-Type": c.ct})
				require.Equal(t, c.want, r.code, "body %s", r.body)
				assert.Equal(t, c.code, r.errCode(t))
			})
		}
		big := bytes.Repeat([]byte(" "), DefaultMaxBodyBytes+10)
		r := e.do(t, "POST", p+"/apply", bytes.NewReader(big), map[string]string{"Content-Type": "application/json"})
		assert.Equal(t, 413, r.code)
		assert.Equal(t, CodeTooLarge, r.errCode(t))
	})
	t.Run("table uploads are checked", func(t *testing.T) {
		for name, data := range map[string][]byte{"x.csv": []byte("not,a\ntable"), "x.sh": base, "y.csv": nil} {
			r := e.uploadTable(t, run.ID, name, data)
			assert.Equal(t, 400, r.code, "%s: %s", name, r.body)
		}
	})
	t.Run("a file attached later under the same name does not change what rollback undoes", func(t *testing.T) {
		ap := e.postJSON(t, "/api/runs/"+run.ID+"/apply", map[string]any{"base_file_id": baseID, "cylinder": "rear"}, nil)
		require.Equal(t, 200, ap.code, "body %s", ap.body)
		files, err := e.runs.Files(context.Background(), run.ID)
		require.NoError(t, err)
		f, ok := latestNamed(files, "VE_Applied_Rear.csv")
		require.True(t, ok)
		_, data, err := runstore.ReadFile(context.Background(), e.runs, e.files, run.ID, f.ID)
		require.NoError(t, err)
		tb, err := ve.ReadTableCSV(bytes.NewReader(data), "a")
		require.NoError(t, err)
		tb.Values[0] += 1
		edited, err := writeTable(tb)
		require.NoError(t, err)
		_, err = runstore.Attach(context.Background(), e.runs, e.files, run.ID, "VE_Applied_Rear.csv", "text/csv", bytes.NewReader(edited))
		require.NoError(t, err)
		r := e.postJSON(t, "/api/runs/"+run.ID+"/rollback", map[string]any{"cylinder": "rear"}, nil)
		require.Equal(t, 200, r.code, "body %s", r.body)
		restored := e.get(t, r.json(t)["file"].(map[string]any)["url"].(string)).body
		rt, err := ve.ReadTableCSV(bytes.NewReader(restored), "restored")
		require.NoError(t, err)
		bt, err := ve.ReadTableCSV(bytes.NewReader(base), "base")
		require.NoError(t, err)
		assert.Equal(t, bt.Hash(), rt.Hash())
	})
	t.Run("corrupted contents refuse rollback and record nothing", func(t *testing.T) {
		ap := e.postJSON(t, "/api/runs/"+run.ID+"/apply", map[string]any{"base_file_id": baseID, "cylinder": "rear",
			"comment": "second"}, nil)
		require.Equal(t, 200, ap.code, "body %s", ap.body)
		before, err := e.runs.Applies(context.Background(), run.ID)
		require.NoError(t, err)
		head := before[len(before)-1]
		require.True(t, e.files.Corrupt(head.Files[2].StorageKey))
		r := e.postJSON(t, "/api/runs/"+run.ID+"/rollback", map[string]any{"cylinder": "rear"}, nil)
		assert.Equal(t, 500, r.code, "body %s", r.body)
		assert.Equal(t, CodeChecksum, r.errCode(t))
		after, err := e.runs.Applies(context.Background(), run.ID)
		require.NoError(t, err)
		assert.Equal(t, before, after)
	})
}

// failingPuts is a file store whose Put fails from the n-th call on, like a
// disk filling up in the middle of an apply.
type failingPuts struct {
	*runstore.MemFileStore
	n, calls atomic.Int64
}

func (f *failingPuts) Put(ctx context.Context, r io.Reader) (runstore.Blob, error) {
	if f.calls.Add(1) >= f.n.Load() && f.n.Load() > 0 {
		return runstore.Blob{}, errors.New("no space left on device")
	}
	return f.MemFileStore.Put(ctx, r)
}

// TestApplyFailureLeavesPreviousState: an apply interrupted after storing
// some of its files (the finding left runs with applied table, effective
// correction and manifest from different applies, and rollback refused with
// a hash mismatch) changes nothing: no file of it is recorded, and the
// previous apply still rolls back exactly.
func TestApplyFailureLeavesPreviousState(t *testing.T) {
	files := &failingPuts{MemFileStore: runstore.NewMemFileStore()}
	e := newEnv(t, func(c *Config) { c.Files = files })
	e.files = files.MemFileStore
	run := e.analyze(t, nil)
	require.Equal(t, runstore.StatusCompleted, run.Status)
	vd := e.get(t, "/api/ve-data/"+run.ID).json(t)
	var rpm, mp []float64
	for _, v := range vd["rpm"].([]any) {
		rpm = append(rpm, v.(float64))
	}
	for _, v := range vd["load"].([]any) {
		mp = append(mp, v.(float64))
	}
	base := baseTable(t, rpm, mp)
	up := e.uploadTable(t, run.ID, "base.csv", base)
	require.Equal(t, http.StatusCreated, up.code, "body %s", up.body)
	baseID := int64(up.json(t)["file"].(map[string]any)["id"].(float64))
	ap := e.postJSON(t, "/api/runs/"+run.ID+"/apply", map[string]any{"base_file_id": baseID, "comment": "first"}, nil)
	require.Equal(t, 200, ap.code, "body %s", ap.body)
	// A second apply on another base fails at its second or third file.
	other := baseTable(t, rpm, mp)
	other = bytes.Replace(other, []byte("40.00"), []byte("41.00"), 1)
	up = e.uploadTable(t, run.ID, "base2.csv", other)
	require.Equal(t, http.StatusCreated, up.code, "body %s", up.body)
	base2 := int64(up.json(t)["file"].(map[string]any)["id"].(float64))
	filesBefore, err := e.runs.Files(context.Background(), run.ID)
	require.NoError(t, err)
	for _, failAt := range []int64{2, 3} {
		files.calls.Store(0)
		files.n.Store(failAt)
		r := e.postJSON(t, "/api/runs/"+run.ID+"/apply", map[string]any{"base_file_id": base2, "comment": "second"}, nil)
		assert.Equal(t, 500, r.code, "body %s", r.body)
		files.n.Store(0)
		after, err := e.runs.Files(context.Background(), run.ID)
		require.NoError(t, err)
		assert.Equal(t, filesBefore, after, "no file of the failed apply is recorded")
	}
	rb := e.postJSON(t, "/api/runs/"+run.ID+"/rollback", map[string]any{"cylinder": "front"}, nil)
	require.Equal(t, 200, rb.code, "the earlier apply still rolls back: %s", rb.body)
	restored := e.get(t, rb.json(t)["file"].(map[string]any)["url"].(string)).body
	rt, err := ve.ReadTableCSV(bytes.NewReader(restored), "restored")
	require.NoError(t, err)
	bt, err := ve.ReadTableCSV(bytes.NewReader(base), "base")
	require.NoError(t, err)
	assert.Equal(t, bt.Hash(), rt.Hash())
}

func TestApplyNeedsCompletedRun(t *testing.T) {
	e := newEnv(t, nil)
	run, err := e.runs.Create(context.Background(), runstore.NewRun{Source: runstore.SourceAPI})
	require.NoError(t, err)
	r := e.postJSON(t, "/api/runs/"+run.ID+"/apply", map[string]any{"base_file_id": 1}, nil)
	assert.Equal(t, 409, r.code)
	assert.Equal(t, CodeConflict, r.errCode(t))
}

// TestLegacyApplyRollsBack: an apply made before apply records existed
// (three files attached by name) still rolls back exactly once.
func TestLegacyApplyRollsBack(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	run := e.analyze(t, nil)
	files, err := e.runs.Files(ctx, run.ID)
	require.NoError(t, err)
	cf, ok := latestNamed(files, "VE_Multiplier_Front.csv")
	require.True(t, ok)
	_, data, err := runstore.ReadFile(ctx, e.runs, e.files, run.ID, cf.ID)
	require.NoError(t, err)
	corr, err := ve.ReadTableCSV(bytes.NewReader(data), cf.Name)
	require.NoError(t, err)
	base := baseTable(t, corr.RPM, corr.MAP)
	bt, err := ve.ReadTableCSV(bytes.NewReader(base), "base")
	require.NoError(t, err)
	a, err := ve.Apply(bt, corr, ve.ApplyOptions{})
	require.NoError(t, err)
	applied, err := writeTable(a.Table)
	require.NoError(t, err)
	eff, err := writeTable(a.Effective)
	require.NoError(t, err)
	man, err := json.Marshal(a.Manifest)
	require.NoError(t, err)
	for name, d := range map[string][]byte{"VE_Applied_Front.csv": applied, "VE_Effective_Front.csv": eff, "VE_Apply_Front.manifest.json": man} {
		_, err := runstore.Attach(ctx, e.runs, e.files, run.ID, name, "text/csv", bytes.NewReader(d))
		require.NoError(t, err)
	}
	rb := e.postJSON(t, "/api/runs/"+run.ID+"/rollback", map[string]any{"cylinder": "front"}, nil)
	require.Equal(t, 200, rb.code, "body %s", rb.body)
	rt, err := ve.ReadTableCSV(bytes.NewReader(e.get(t, rb.json(t)["file"].(map[string]any)["url"].(string)).body), "r")
	require.NoError(t, err)
	assert.Equal(t, bt.Hash(), rt.Hash())
	recs, err := e.runs.Applies(ctx, run.ID)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, runstore.ApplyKindRollback, recs[0].Kind)
	assert.Equal(t, 409, e.postJSON(t, "/api/runs/"+run.ID+"/rollback", map[string]any{"cylinder": "front"}, nil).code)
}
