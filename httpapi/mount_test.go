package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dynoai/dynoai/runstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// collectLinks gathers every string of a JSON document that is a path
// into the API.
func collectLinks(v any, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			collectLinks(e, out)
		}
	case []any:
		for _, e := range x {
			collectLinks(e, out)
		}
	case string:
		if strings.HasPrefix(x, "/") && strings.Contains(x, "/api/") {
			out[x] = true
		}
	}
}

// TestMountedUnderPrefix mounts the API and the web UI under /dyno/ in an
// integrator's mux and follows every link the API returns for a
// completed, applied and rolled back run: each one starts with the prefix
// and answers 200.
func TestMountedUnderPrefix(t *testing.T) {
	runs, files := runstore.NewMemory(runstore.Options{}), runstore.NewMemFileStore()
	srv, err := New(Config{Runs: runs, Files: files, BasePath: "/dyno"})
	require.NoError(t, err)
	require.NoError(t, srv.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	mux := http.NewServeMux()
	mux.Handle("/dyno/", srv.Handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "the integrator's own", http.StatusTeapot) })
	ts := httptest.NewServer(mux)
	defer ts.Close()
	c := ts.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	do := func(method, path string, body io.Reader, ct string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, ts.URL+path, body)
		require.NoError(t, err)
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		res, err := c.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res, b
	}
	decode := func(b []byte) map[string]any {
		t.Helper()
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m), "%s", b)
		return m
	}
	links := map[string]bool{}

	body, ct := multipartBody(t, "pulls.csv", testLog(t), nil)
	res, b := do("POST", "/dyno/api/analyze", body, ct)
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", b)
	accepted := decode(b)
	id := accepted["run_id"].(string)
	assert.Equal(t, "/dyno/api/runs/"+id, res.Header.Get("Location"))
	links[res.Header.Get("Location")] = true
	collectLinks(accepted, links)
	require.Equal(t, runstore.StatusCompleted, waitRun(t, runs, id).Status)

	// A base table, an apply and a rollback add files with links.
	res, b = do("GET", "/dyno/api/runs/"+id, nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	var full struct {
		Run struct {
			Results struct {
				RPM []float64 `json:"rpm"`
				MAP []float64 `json:"map_kpa"`
			} `json:"results"`
		} `json:"run"`
	}
	require.NoError(t, json.Unmarshal(b, &full))
	body, ct = multipartBody(t, "base.csv", baseTable(t, full.Run.Results.RPM, full.Run.Results.MAP), nil)
	res, b = do("POST", "/dyno/api/runs/"+id+"/tables", body, ct)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", b)
	tbl := decode(b)
	collectLinks(tbl, links)
	fileID := tbl["file"].(map[string]any)["id"].(float64)
	res, b = do("POST", "/dyno/api/runs/"+id+"/apply", strings.NewReader(`{"base_file_id":`+jsonNum(fileID)+`}`), "application/json")
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", b)
	collectLinks(decode(b), links)
	res, b = do("POST", "/dyno/api/runs/"+id+"/rollback", strings.NewReader(`{}`), "application/json")
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", b)
	collectLinks(decode(b), links)

	for _, p := range []string{"/dyno/api/runs/" + id, "/dyno/api/runs/" + id + "/files", "/dyno/api/runs?limit=5", "/dyno/api/status/" + id} {
		res, b = do("GET", p, nil, "")
		require.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", p, b)
		collectLinks(decode(b), links)
	}
	require.GreaterOrEqual(t, len(links), 10, "links found: %v", links)
	for l := range links {
		assert.True(t, strings.HasPrefix(l, "/dyno/api/"), "link %q is not under the prefix", l)
		res, b := do("GET", l, nil, "")
		assert.Equal(t, http.StatusOK, res.StatusCode, "GET %s: %s", l, b)
	}

	// The API document names the prefix as its server.
	res, b = do("GET", "/dyno/api/openapi.json", nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	var doc struct {
		Servers []struct{ URL string } `json:"servers"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	require.Len(t, doc.Servers, 1)
	assert.Equal(t, "/dyno", doc.Servers[0].URL)

	// The UI: the page, every asset it references (relative, so under the
	// prefix), and the bare prefix redirecting to the page.
	res, b = do("GET", "/dyno/", nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, res.Header.Get("Content-Type"), "text/html")
	refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(string(b), -1)
	require.NotEmpty(t, refs)
	for _, m := range refs {
		assert.False(t, strings.HasPrefix(m[1], "/"), "absolute reference %q would miss the prefix", m[1])
		res, _ := do("GET", "/dyno/"+m[1], nil, "")
		assert.Equal(t, http.StatusOK, res.StatusCode, m[1])
	}
	for _, f := range []string{"app.js", "api.js", "dom.js", "heatmap.js", "app.css"} {
		res, _ := do("GET", "/dyno/ui/"+f, nil, "")
		assert.Equal(t, http.StatusOK, res.StatusCode, f)
	}
	// The bare prefix is redirected to the page (by the integrator's mux
	// here, by the handler itself when it is given /dyno).
	res, _ = do("GET", "/dyno", nil, "")
	assert.Contains(t, []int{http.StatusMovedPermanently, http.StatusTemporaryRedirect}, res.StatusCode)
	assert.Equal(t, "/dyno/", res.Header.Get("Location"))
	// Outside the prefix is the integrator's.
	res, _ = do("GET", "/api/runs", nil, "")
	assert.Equal(t, http.StatusTeapot, res.StatusCode)
}

// TestBasePathOutsideRequests: the handler given a path outside its
// BasePath answers the envelope's 404, and BasePath is validated.
func TestBasePathOutsideRequests(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.BasePath = "/dyno" })
	r := e.get(t, "/api/runs")
	assert.Equal(t, http.StatusNotFound, r.code)
	assert.Equal(t, CodeNotFound, r.errCode(t))
	assert.Equal(t, http.StatusOK, e.get(t, "/dyno/api/health/live").code)
	assert.Equal(t, http.StatusNotFound, e.get(t, "/dynosaur/api/health/live").code)
	r = e.get(t, "/dyno") // redirected to /dyno/, the page
	assert.Equal(t, http.StatusOK, r.code)
	assert.Contains(t, string(r.body), `src="ui/app.js"`)

	for _, bad := range []string{"dyno", "/dyno/", "/a//b", "/a/../b", "/a?b"} {
		_, err := New(Config{Runs: runstore.NewMemory(runstore.Options{}), Files: runstore.NewMemFileStore(), BasePath: bad})
		assert.ErrorIs(t, err, ErrConfig, bad)
	}
	for _, good := range []string{"", "/", "/dyno", "/tools/dyno-ai"} {
		_, err := New(Config{Runs: runstore.NewMemory(runstore.Options{}), Files: runstore.NewMemFileStore(), BasePath: good})
		assert.NoError(t, err, good)
	}
}

// TestUIAtRoot: the UI is served at / with a strict content security
// policy, and DisableUI leaves / to the envelope's 404.
func TestUIAtRoot(t *testing.T) {
	e := newEnv(t, nil)
	r := e.get(t, "/")
	require.Equal(t, http.StatusOK, r.code)
	assert.Contains(t, string(r.body), `src="ui/app.js"`)
	assert.Contains(t, r.header.Get("Content-Security-Policy"), "script-src 'self'")
	assert.Equal(t, http.StatusOK, e.get(t, "/ui/app.js").code)
	assert.Equal(t, http.StatusNotFound, e.get(t, "/ui/").code)
	assert.Equal(t, http.StatusNotFound, e.get(t, "/ui/nope.js").code)

	off := newEnv(t, func(c *Config) { c.DisableUI = true })
	r = off.get(t, "/")
	assert.Equal(t, http.StatusNotFound, r.code)
	assert.Equal(t, CodeNotFound, r.errCode(t))
}

func jsonNum(f float64) string { b, _ := json.Marshal(f); return string(b) }

func waitRun(t *testing.T, runs runstore.RunStore, id string) runstore.Run {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		run, err := runs.Get(context.Background(), id)
		require.NoError(t, err)
		if run.Status.Terminal() {
			return run
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("run %s did not finish", id)
	return runstore.Run{}
}
