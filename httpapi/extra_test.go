package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/metrics"
	"github.com/dynoai/dynoai/runstore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStorageLiveness: with the database made unwritable, uploads failed
// with 500 while health said healthy; with the data directory deleted,
// health stayed 200 and uploads "completed". Now health and readiness run
// a durable write and read back on the run store and the file store: a
// failure is 503 naming the component, counted in
// dynoai_storage_check_failures_total, and uploads answer 503
// STORAGE_UNAVAILABLE instead of 500.
func TestStorageLiveness(t *testing.T) {
	runs := runstore.NewMemory(runstore.Options{})
	files := runstore.NewMemFileStore()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Options{Registerer: reg})
	require.NoError(t, err)
	e := newEnv(t, func(c *Config) {
		c.Runs, c.Files = runs, files
		c.JetDrive = &fakeJD{samples: make(chan dyno.Sample)}
		c.Jetstream = &fakeJS{}
		c.Metrics = m
	})
	probeAlways(e.srv)
	h := e.get(t, "/api/health").json(t)
	assert.Equal(t, "healthy", h["status"])
	assert.Len(t, h["components"], 5)
	for _, tc := range []struct {
		component string
		down      func(error)
	}{
		{"database", runs.SetUnavailable},
		{"file_store", files.SetUnavailable},
	} {
		t.Run(tc.component, func(t *testing.T) {
			tc.down(errors.New("attempt to write a readonly database (10.0.0.5)"))
			defer tc.down(nil)
			r := e.get(t, "/api/health")
			assert.Equal(t, 503, r.code)
			assert.Equal(t, "unhealthy", r.json(t)["status"])
			assert.Contains(t, string(r.body), `"name":"`+tc.component+`","status":"unhealthy"`)
			assert.NotContains(t, string(r.body), "10.0.0.5", "no internal detail")
			rr := e.get(t, "/api/health/ready")
			assert.Equal(t, 503, rr.code)
			assert.JSONEq(t, `{"status":"not_ready","component":"`+tc.component+`"}`, string(rr.body))
			assert.Equal(t, 200, e.get(t, "/api/health/live").code, "liveness does not depend on storage")
			up := e.upload(t, "a.csv", testLog(t), nil, nil)
			assert.Equal(t, 503, up.code, "%s", up.body)
			assert.Equal(t, CodeStorage, up.errCode(t))
			assert.NotEmpty(t, up.header.Get("Retry-After"))
			mf, err := reg.Gather()
			require.NoError(t, err)
			found := false
			for _, f := range mf {
				if f.GetName() != "dynoai_storage_check_failures_total" {
					continue
				}
				for _, mm := range f.GetMetric() {
					if mm.GetLabel()[0].GetValue() == tc.component && mm.GetCounter().GetValue() >= 1 {
						found = true
					}
				}
			}
			assert.True(t, found, "failure counted for %s", tc.component)
		})
	}
	assert.Equal(t, 200, e.get(t, "/api/health/ready").code, "back once storage is")
}

func TestLargeFileDownload(t *testing.T) {
	e := newEnv(t, nil)
	log := simLog(t, 35_000)
	require.Greater(t, len(log), bufferVerifyLimit, "the streaming path")
	r := e.upload(t, "big.csv", log, nil, nil)
	require.Equal(t, 202, r.code)
	run := e.wait(t, r.json(t)["run_id"].(string))
	require.Equal(t, runstore.StatusCompleted, run.Status)
	files, err := e.runs.Files(context.Background(), run.ID)
	require.NoError(t, err)
	in, ok := latestNamed(files, "big.csv")
	require.True(t, ok)
	url := fmtPath("/api/runs/%s/files/%d", run.ID, in.ID)
	d := e.get(t, url)
	require.Equal(t, 200, d.code)
	sum := sha256.Sum256(d.body)
	assert.Equal(t, in.SHA256, hex.EncodeToString(sum[:]))
	h := e.do(t, "HEAD", url, nil, nil)
	assert.Equal(t, 200, h.code)
	assert.Empty(t, h.body)
	assert.Equal(t, in.SHA256, h.header.Get("X-Checksum-SHA256"))

	// Corrupted contents: the transfer is cut, never completed.
	require.True(t, e.files.Corrupt(in.StorageKey))
	res, err := e.ts.Client().Get(e.ts.URL + url)
	require.NoError(t, err)
	_, err = io.ReadAll(res.Body)
	res.Body.Close()
	assert.Error(t, err, "a corrupt file must not arrive as a whole one")
	assert.Equal(t, http.StatusOK, res.StatusCode)
}

func TestApplyShapeMismatch(t *testing.T) {
	e := newEnv(t, nil)
	run := e.analyze(t, nil)
	base := baseTable(t, []float64{1000, 2000, 3000}, []float64{20, 60, 100})
	up := e.uploadTable(t, run.ID, "small.csv", base)
	require.Equal(t, 201, up.code, "body %s", up.body)
	id := up.json(t)["file"].(map[string]any)["id"]
	r := e.postJSON(t, "/api/runs/"+run.ID+"/apply", map[string]any{"base_file_id": id}, nil)
	assert.Equal(t, 400, r.code, "body %s", r.body)
	assert.Equal(t, CodeValidation, r.errCode(t))
}
