package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/metrics"
	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/ve"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gateAnalyzer reads its source, then blocks until released or its
// context ends.
type gateAnalyzer struct {
	started chan struct{}
	release chan struct{}
	inner   ve.Analyzer
	once    sync.Once
}

func (g *gateAnalyzer) Analyze(ctx context.Context, src dyno.Source) (*ve.Result, error) {
	g.once.Do(func() { close(g.started) })
	select {
	case <-g.release:
		return g.inner.Analyze(ctx, src)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func newGate(t *testing.T) *gateAnalyzer {
	inner, err := ve.New(ve.Options{})
	require.NoError(t, err)
	return &gateAnalyzer{started: make(chan struct{}), release: make(chan struct{}), inner: inner}
}

// TestShutdownReleasesInFlightAnalysis: a shutdown that runs out of time
// gives the analysis it cancels back to the queue whole (no attempt used,
// nothing failed), leaves the queued one queued, and the next server on
// the same store analyzes both without a new upload.
func TestShutdownReleasesInFlightAnalysis(t *testing.T) {
	gate := newGate(t)
	e := newEnv(t, func(c *Config) {
		c.NewAnalyzer = func(ve.Options) (ve.Analyzer, error) { return gate, nil }
		c.Workers = 1
	})
	r1 := e.upload(t, "a.csv", testLog(t), nil, nil)
	require.Equal(t, 202, r1.code)
	r2 := e.upload(t, "b.csv", testLog(t), nil, nil) // waits in the queue
	require.Equal(t, 202, r2.code)
	<-gate.started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := e.srv.Shutdown(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	ids := []string{r1.json(t)["run_id"].(string), r2.json(t)["run_id"].(string)}
	for _, id := range ids {
		run, err := e.runs.Get(context.Background(), id)
		require.NoError(t, err)
		assert.False(t, run.Status.Terminal(), "nothing is failed by a shutdown: %s is %s", id, run.Status)
		j, err := e.runs.Job(context.Background(), id)
		require.NoError(t, err)
		assert.Equal(t, runstore.JobAvailable, j.State)
		assert.Equal(t, 0, j.Attempt, "a release does not use up an attempt")
	}
	r := e.upload(t, "c.csv", testLog(t), nil, nil)
	assert.Equal(t, 503, r.code, "no analyses after shutdown")
	assert.Equal(t, CodeUnavailable, r.errCode(t))
	assert.NotEmpty(t, r.header.Get("Retry-After"))
	assert.Equal(t, 503, e.get(t, "/api/health/ready").code)

	// The next process on the same store finishes both.
	next, err := New(Config{Runs: e.runs, Files: e.files, JobPoll: 10 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, next.Start(context.Background()))
	defer next.Shutdown(context.Background())
	for _, id := range ids {
		require.Eventually(t, func() bool {
			run, err := e.runs.Get(context.Background(), id)
			return err == nil && run.Status == runstore.StatusCompleted
		}, 20*time.Second, 10*time.Millisecond, "run %s", id)
	}
}

func TestShutdownFinishesInFlightAnalysis(t *testing.T) {
	gate := newGate(t)
	e := newEnv(t, func(c *Config) {
		c.NewAnalyzer = func(ve.Options) (ve.Analyzer, error) { return gate, nil }
	})
	r := e.upload(t, "a.csv", testLog(t), nil, nil)
	require.Equal(t, 202, r.code)
	<-gate.started
	done := make(chan error)
	go func() { done <- e.srv.Shutdown(context.Background()) }()
	select {
	case <-e.srv.drained: // Shutdown has begun while the analysis runs
	case <-time.After(time.Minute):
		t.Fatal("Shutdown did not begin")
	}
	close(gate.release)
	require.NoError(t, <-done)
	run, err := e.runs.Get(context.Background(), r.json(t)["run_id"].(string))
	require.NoError(t, err)
	assert.Equal(t, runstore.StatusCompleted, run.Status)
}

// TestServeGracefulShutdownOverTCP runs Serve on a real loopback listener
// and cancels it mid-analysis.
func TestServeGracefulShutdownOverTCP(t *testing.T) {
	gate := newGate(t)
	runs := runstore.NewMemory(runstore.Options{})
	srv, err := New(Config{Runs: runs, Files: runstore.NewMemFileStore(),
		NewAnalyzer: func(ve.Options) (ve.Analyzer, error) { return gate, nil }})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error)
	go func() { served <- srv.Serve(ctx, ln, 200*time.Millisecond) }()
	url := "http://" + ln.Addr().String()
	var res *http.Response
	require.Eventually(t, func() bool {
		body, ct := multipartBody(t, "a.csv", testLog(t), nil)
		res, err = http.Post(url+"/api/analyze", ct, body)
		return err == nil && res.StatusCode == 202
	}, 5*time.Second, 20*time.Millisecond)
	var acc map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&acc))
	res.Body.Close()
	<-gate.started
	cancel()
	err = <-served
	require.ErrorIs(t, err, context.DeadlineExceeded, "the analysis outlived the grace period")
	run, err := runs.Get(context.Background(), acc["run_id"].(string))
	require.NoError(t, err)
	assert.Equal(t, runstore.StatusProcessing, run.Status, "given back to the queue, not failed")
	j, err := runs.Job(context.Background(), run.ID)
	require.NoError(t, err)
	assert.Equal(t, runstore.JobAvailable, j.State)
	_, err = http.Get(url + "/api/health/live")
	assert.Error(t, err, "the listener is closed")
}

// TestStartLeavesOtherReplicasWork: starting a server touches no run. An
// analysis another live replica holds stays its own; one whose lease
// expired (its replica died) is analyzed here without a new upload; a
// processing run without a job (another source's) is left alone.
func TestStartLeavesOtherReplicasWork(t *testing.T) {
	ctx := context.Background()
	var skew atomic.Int64 // the store's clock runs ahead of the wall clock by this much
	runs := runstore.NewMemory(runstore.Options{Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	files := runstore.NewMemFileStore()
	submit := func(name string) runstore.Submitted {
		b, err := files.Put(ctx, bytes.NewReader(testLog(t)))
		require.NoError(t, err)
		settings, _ := json.Marshal(DefaultAnalysisOptions())
		sub, err := runs.Submit(ctx, runstore.NewRun{Source: runstore.SourceUpload, Filename: name, InputSize: b.Size, Settings: settings},
			runstore.NewJob{Input: runstore.FileMeta{Name: name, ContentType: "text/csv", Size: b.Size, SHA256: b.SHA256, StorageKey: b.Key}})
		require.NoError(t, err)
		return sub
	}
	held := submit("held.csv")
	lease, err := runs.Claim(ctx, runstore.Claim{Worker: "replica-b/1", Lease: time.Hour})
	require.NoError(t, err)
	require.Equal(t, held.Run.ID, lease.Run.ID)
	dead := submit("dead.csv")
	_, err = runs.Claim(ctx, runstore.Claim{Worker: "replica-c/1", Lease: time.Millisecond})
	require.NoError(t, err)
	other, err := runs.Create(ctx, runstore.NewRun{Source: runstore.SourceJetstream})
	require.NoError(t, err)
	other, err = runs.Update(ctx, other.ID, runstore.Update{Version: other.Version, Status: runstore.StatusProcessing})
	require.NoError(t, err)
	skew.Add(int64(time.Minute)) // replica c's lease runs out; replica b's hour does not

	srv, err := New(Config{Runs: runs, Files: files, Replica: "replica-a", JobPoll: 10 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	require.Eventually(t, func() bool {
		r, err := runs.Get(ctx, dead.Run.ID)
		return err == nil && r.Status == runstore.StatusCompleted
	}, 20*time.Second, 10*time.Millisecond)
	j, err := runs.Job(ctx, dead.Run.ID)
	require.NoError(t, err)
	assert.Equal(t, 2, j.Attempt)
	assert.Contains(t, j.Worker, "replica-a/")
	h, err := runs.Get(ctx, held.Run.ID)
	require.NoError(t, err)
	assert.Equal(t, runstore.StatusProcessing, h.Status, "replica b's analysis is still b's")
	hj, err := runs.Job(ctx, held.Run.ID)
	require.NoError(t, err)
	assert.Equal(t, "replica-b/1", hj.Worker)
	o, err := runs.Get(ctx, other.ID)
	require.NoError(t, err)
	assert.Equal(t, other, o, "other sources' runs are theirs to handle")
	assert.Error(t, srv.Start(ctx))
	require.NoError(t, srv.Shutdown(ctx))
}

func TestQueueFull(t *testing.T) {
	gate := newGate(t)
	e := newEnv(t, func(c *Config) {
		c.NewAnalyzer = func(ve.Options) (ve.Analyzer, error) { return gate, nil }
		c.Workers, c.Queue = 1, 1
	})
	assert.Equal(t, 202, e.upload(t, "a.csv", testLog(t), nil, nil).code)
	<-gate.started // the worker holds a; b is the one waiting
	assert.Equal(t, 202, e.upload(t, "b.csv", testLog(t), nil, nil).code)
	r := e.upload(t, "c.csv", testLog(t), nil, nil)
	assert.Equal(t, 503, r.code)
	assert.Contains(t, string(r.body), "too many analyses")
	close(gate.release)
}

// panicStore panics on List, standing in for any handler bug.
type panicStore struct {
	runstore.RunStore
	armed *atomic.Bool
}

func (p panicStore) List(ctx context.Context, f runstore.Filter) (runstore.Page, error) {
	if p.armed.Load() {
		panic("boom")
	}
	return p.RunStore.List(ctx, f)
}

func TestPanicRecovery(t *testing.T) {
	var logs bytes.Buffer
	armed := new(atomic.Bool)
	e := newEnv(t, func(c *Config) {
		c.Runs = panicStore{runstore.NewMemory(runstore.Options{}), armed}
		c.Logger = newTestLogger(&logs)
	})
	armed.Store(true)
	r := e.do(t, "GET", "/api/runs", nil, map[string]string{HeaderRequestID: "trace-1"})
	assert.Equal(t, 500, r.code)
	assert.Equal(t, CodeInternal, r.errCode(t))
	assert.Equal(t, "trace-1", r.header.Get(HeaderRequestID))
	assert.NotContains(t, string(r.body), "boom")
	assert.Contains(t, logs.String(), "trace-1")
	assert.Equal(t, 200, e.do(t, "GET", "/api/health/live", nil, map[string]string{HeaderRequestID: "trace-2"}).code, "the server survives")
	assert.Contains(t, logs.String(), `msg=request request_id=trace-2 method=GET path=/api/health/live route="GET /api/health/live" status=200`)
}

// panicAnalyzer panics inside a worker.
type panicAnalyzer struct{}

func (panicAnalyzer) Analyze(context.Context, dyno.Source) (*ve.Result, error) { panic("analyzer bug") }

func TestWorkerPanicFailsRun(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.NewAnalyzer = func(ve.Options) (ve.Analyzer, error) { return panicAnalyzer{}, nil }
	})
	r := e.upload(t, "a.csv", testLog(t), nil, nil)
	require.Equal(t, 202, r.code)
	run := e.wait(t, r.json(t)["run_id"].(string))
	assert.Equal(t, runstore.StatusFailed, run.Status)
	assert.Equal(t, "INTERNAL_ERROR", run.Error.Code)
	assert.NotContains(t, run.Error.Message, "analyzer bug")
}

func TestAnalysisTimeout(t *testing.T) {
	gate := newGate(t)
	e := newEnv(t, func(c *Config) {
		c.NewAnalyzer = func(ve.Options) (ve.Analyzer, error) { return gate, nil }
		c.AnalysisTimeout = 50 * time.Millisecond
	})
	r := e.upload(t, "a.csv", testLog(t), nil, nil)
	require.Equal(t, 202, r.code)
	run := e.wait(t, r.json(t)["run_id"].(string))
	assert.Equal(t, runstore.StatusFailed, run.Status)
	assert.Equal(t, "TIMEOUT", run.Error.Code)
}

// TestMetrics: an analysis's series are on /metrics. A run is visible as
// finished the moment its result commits and the worker records its
// metrics just after, so the test waits for them rather than racing the
// worker (which, under load, it would lose now and then).
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Options{Registerer: reg})
	require.NoError(t, err)
	e := newEnv(t, func(c *Config) { c.Metrics = m; c.Gatherer = reg })
	e.analyze(t, nil)
	e.get(t, "/api/runs")
	e.get(t, "/api/nonexistent")
	body := e.metricsWith(t, `dynoai_analysis_total{source="upload",status="success"} 1`)
	for _, want := range []string{
		`dynoai_file_upload_bytes_count 1`,
		`dynoai_ve_corrections_count_count 1`,
		`dynoai_analysis_jobs_total{event="completed"} 1`,
		`endpoint="GET /api/runs"`,
		`endpoint="POST /api/analyze"`,
		`endpoint="unmatched"`,
	} {
		assert.Contains(t, body, want)
	}
	assert.NotContains(t, body, "/api/runs/0", "raw paths never become labels")
	// An analysis failure is counted as an error.
	bad := append(append([]byte{}, testLog(t)...), []byte("1,abc\n")...)
	up := e.upload(t, "x.csv", bad, nil, nil)
	require.Equal(t, 202, up.code)
	e.wait(t, up.json(t)["run_id"].(string))
	e.metricsWith(t, `dynoai_analysis_total{source="upload",status="error"} 1`)
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	var scopes struct {
		Paths map[string]map[string]struct {
			Scope string `json:"x-dynoai-scope"`
		} `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(OpenAPI(), &scopes))
	require.NoError(t, json.Unmarshal(OpenAPI(), &doc))
	assert.True(t, strings.HasPrefix(doc.OpenAPI, "3."))
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			switch m {
			case "get", "post", "put", "delete", "patch":
				documented[strings.ToUpper(m)+" "+p] = true
			}
		}
	}
	reg := prometheus.NewRegistry()
	srv, err := New(Config{Runs: runstore.NewMemory(runstore.Options{}), Files: runstore.NewMemFileStore(), Gatherer: reg})
	require.NoError(t, err)
	served := map[string]bool{}
	for _, rt := range srv.routes {
		served[rt.pattern()] = true
		// Every route is really reachable: not the mux's 404.
		req, _ := http.NewRequest(rt.method, "http://x"+strings.NewReplacer("{id}", "0123456789abcdef0123456789abcdef", "{file}", "1", "{name}", "a.csv").Replace(rt.path), nil)
		_, pattern := srv.mux.Handler(req)
		assert.Equal(t, rt.pattern(), pattern)
		// The scope the document names is the one the server enforces.
		want := map[access]string{accessPublic: "public", accessRead: "read", accessAnalyze: "analyze",
			accessApply: "apply", accessMetrics: "admin"}[rt.access]
		assert.Equal(t, want, scopes.Paths[rt.path][strings.ToLower(rt.method)].Scope, rt.pattern())
	}
	assert.Equal(t, documented, served, "openapi.json and the route table disagree")
}

func newTestLogger(w *bytes.Buffer) *slogLogger { return slogNew(w) }

// TestServeShutdownWithOpenStream: an open event stream does not hold the
// graceful shutdown until its deadline.
func TestServeShutdownWithOpenStream(t *testing.T) {
	jd := &fakeJD{samples: make(chan dyno.Sample)}
	srv, err := New(Config{Runs: runstore.NewMemory(runstore.Options{}), Files: runstore.NewMemFileStore(), JetDrive: jd})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error)
	go func() { served <- srv.Serve(ctx, ln, time.Hour) }()
	res, err := http.Get("http://" + ln.Addr().String() + "/api/jetdrive/live/stream")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	cancel()
	select {
	case err := <-served:
		require.NoError(t, err)
	case <-time.After(time.Minute): // far below the hour of grace
		t.Fatal("the open stream held the graceful shutdown")
	}
}

// corruptingFiles changes one digit in the middle of every blob it reads
// back: the log still parses, but no longer matches its checksum.
type corruptingFiles struct{ *runstore.MemFileStore }

func (c corruptingFiles) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := c.MemFileStore.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	for i := len(data) / 2; i < len(data); i++ {
		if data[i] >= '1' && data[i] <= '8' {
			data[i]++
			break
		}
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func TestCorruptUploadFailsRun(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Files = corruptingFiles{runstore.NewMemFileStore()} })
	r := e.upload(t, "a.csv", testLog(t), nil, nil)
	require.Equal(t, 202, r.code, "body %s", r.body)
	run := e.wait(t, r.json(t)["run_id"].(string))
	assert.Equal(t, runstore.StatusFailed, run.Status)
	assert.Equal(t, CodeChecksum, run.Error.Code)
}
