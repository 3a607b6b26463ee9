package httpapi

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
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
	t.Run("tampered apply refuses rollback", func(t *testing.T) {
		ap := e.postJSON(t, "/api/runs/"+run.ID+"/apply", map[string]any{"base_file_id": baseID, "cylinder": "rear"}, nil)
		require.Equal(t, 200, ap.code, "body %s", ap.body)
		// Replace the applied table with an edited copy under the same name.
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
		assert.Equal(t, 409, r.code, "body %s", r.body)
		assert.Equal(t, CodeConflict, r.errCode(t))
	})
}

func TestApplyNeedsCompletedRun(t *testing.T) {
	e := newEnv(t, nil)
	run, err := e.runs.Create(context.Background(), runstore.NewRun{Source: runstore.SourceAPI})
	require.NoError(t, err)
	r := e.postJSON(t, "/api/runs/"+run.ID+"/apply", map[string]any{"base_file_id": 1}, nil)
	assert.Equal(t, 409, r.code)
	assert.Equal(t, CodeConflict, r.errCode(t))
}
