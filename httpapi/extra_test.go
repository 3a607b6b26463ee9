package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/runstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// downStore fails Ping when down is set.
type downStore struct {
	runstore.RunStore
	down *atomic.Bool
}

func (d downStore) Ping(ctx context.Context) error {
	if d.down.Load() {
		return errors.New("connection refused 10.0.0.5:5432")
	}
	return d.RunStore.Ping(ctx)
}

func TestHealthComponents(t *testing.T) {
	down := new(atomic.Bool)
	e := newEnv(t, func(c *Config) {
		c.Runs = downStore{runstore.NewMemory(runstore.Options{}), down}
		c.JetDrive = &fakeJD{samples: make(chan dyno.Sample)}
		c.Jetstream = &fakeJS{}
	})
	m := e.get(t, "/api/health").json(t)
	assert.Equal(t, "healthy", m["status"])
	assert.Len(t, m["components"], 4)
	down.Store(true)
	r := e.get(t, "/api/health")
	assert.Equal(t, 503, r.code)
	assert.Equal(t, "unhealthy", r.json(t)["status"])
	assert.NotContains(t, string(r.body), "10.0.0.5", "no internal detail")
	rr := e.get(t, "/api/health/ready")
	assert.Equal(t, 503, rr.code)
	assert.Contains(t, rr.json(t)["reason"], "run_store")
	assert.Equal(t, 200, e.get(t, "/api/health/live").code, "liveness does not depend on the store")
}

func TestLargeFileDownload(t *testing.T) {
	e := newEnv(t, nil)
	log := simLog(t, 35_000)
	require.Greater(t, len(log), bufferVerifyLimit, "the streaming path")
	r := e.upload(t, "big.csv", log, nil, nil)
	require.Equal(t, 202, r.code)
	run := e.wait(t, r.json(t)["runId"].(string))
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
