package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynolog"
	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/tune"
	"github.com/stretchr/testify/require"
)

// simLog returns a realistic canonical CSV log of at least rows samples:
// simulated sessions (ECU VE off, front lean and rear rich) back to back,
// with time running on.
func simLog(t testing.TB, rows int) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w *dynolog.CSVWriter
	n := 0
	var offset time.Duration
	smp := dyno.NewSample()
	for seed := uint64(1); n < rows; seed++ {
		sc, err := tune.ScenarioByName("demo", seed)
		require.NoError(t, err)
		sim, err := sc.Simulator()
		require.NoError(t, err)
		if w == nil {
			w = dynolog.NewCSVWriter(&buf, sim.Layout())
		}
		var last time.Duration
		for n < rows {
			err := sim.Next(context.Background(), &smp)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			last = smp.Time
			smp.Time += offset
			require.NoError(t, w.WriteSample(&smp))
			n++
		}
		offset += last + time.Second
	}
	require.NoError(t, w.Flush())
	return buf.Bytes()
}

var (
	smallLogOnce sync.Once
	smallLog     []byte
)

// testLog is one simulated session (about 6800 rows), built once.
func testLog(t testing.TB) []byte {
	smallLogOnce.Do(func() { smallLog = simLog(t, 6765) })
	return smallLog
}

type testEnv struct {
	srv   *Server
	ts    *httptest.Server
	runs  runstore.RunStore
	files *runstore.MemFileStore
}

// newEnv starts a server on in-memory stores behind httptest.
func newEnv(t testing.TB, mutate func(*Config)) *testEnv {
	t.Helper()
	e := &testEnv{runs: runstore.NewMemory(runstore.Options{}), files: runstore.NewMemFileStore()}
	cfg := Config{Runs: e.runs, Files: e.files}
	if mutate != nil {
		mutate(&cfg)
	}
	if cfg.Runs != nil {
		e.runs = cfg.Runs
	}
	srv, err := New(cfg)
	require.NoError(t, err)
	err = srv.Start(context.Background())
	require.NoError(t, err)
	e.srv = srv
	e.ts = httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		e.ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return e
}

// multipartBody builds an upload: the file part (skipped when name is
// "-") and the fields.
func multipartBody(t testing.TB, name string, data []byte, fields map[string]string) (io.Reader, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for k, v := range fields {
		require.NoError(t, mw.WriteField(k, v))
	}
	if name != "-" {
		fw, err := mw.CreateFormFile("file", name)
		require.NoError(t, err)
		_, err = fw.Write(data)
		require.NoError(t, err)
	}
	require.NoError(t, mw.Close())
	return &b, mw.FormDataContentType()
}

type resp struct {
	code   int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

// errCode returns the envelope's code, failing the test if the body is not
// the envelope.
func (r resp) errCode(t testing.TB) string {
	t.Helper()
	require.Equal(t, "application/json", r.header.Get("Content-Type"), "body: %s", r.body)
	m := r.json(t)
	e, ok := m["error"].(map[string]any)
	require.True(t, ok, "not an envelope: %s", r.body)
	require.NotEmpty(t, e["message"])
	require.Equal(t, r.header.Get(HeaderRequestID), e["request_id"], "envelope request id")
	return e["code"].(string)
}

func (e *testEnv) do(t testing.TB, method, path string, body io.Reader, hdr map[string]string) resp {
	t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, body)
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := e.ts.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return resp{code: res.StatusCode, header: res.Header, body: b}
}

func (e *testEnv) get(t testing.TB, path string) resp { return e.do(t, "GET", path, nil, nil) }

func (e *testEnv) postJSON(t testing.TB, path string, v any, hdr map[string]string) resp {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	h := map[string]string{"Content-Type": "application/json"}
	for k, v := range hdr {
		h[k] = v
	}
	return e.do(t, "POST", path, bytes.NewReader(b), h)
}

func (e *testEnv) upload(t testing.TB, name string, data []byte, fields map[string]string, hdr map[string]string) resp {
	body, ct := multipartBody(t, name, data, fields)
	h := map[string]string{"Content-Type": ct}
	for k, v := range hdr {
		h[k] = v
	}
	return e.do(t, "POST", "/api/analyze", body, h)
}

// analyze uploads the test log and waits for the run to finish.
func (e *testEnv) analyze(t testing.TB, hdr map[string]string) runstore.Run {
	t.Helper()
	r := e.upload(t, "pulls.csv", testLog(t), map[string]string{"smoothPasses": "2"}, hdr)
	require.Equal(t, http.StatusAccepted, r.code, "body: %s", r.body)
	return e.wait(t, r.json(t)["run_id"].(string))
}

func (e *testEnv) wait(t testing.TB, id string) runstore.Run {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		run, err := e.runs.Get(context.Background(), id)
		require.NoError(t, err)
		if run.Status.Terminal() {
			return run
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("run %s did not finish", id)
	return runstore.Run{}
}

func fmtPath(format string, a ...any) string { return fmt.Sprintf(format, a...) }

func contains(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// metricsWith waits until /metrics contains want and returns the page.
func (e *testEnv) metricsWith(t testing.TB, want string) string {
	t.Helper()
	var body string
	require.Eventually(t, func() bool {
		r := e.get(t, "/metrics")
		body = string(r.body)
		return r.code == 200 && strings.Contains(body, want)
	}, 10*time.Second, 5*time.Millisecond, "/metrics never showed %s", want)
	return body
}
