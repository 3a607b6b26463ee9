package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
}

func newMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/runs/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "missing" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte("run"))
	})
	mux.HandleFunc("POST /api/analyze", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("GET /api/panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	mux.HandleFunc("GET /api/abort", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
	mux.HandleFunc("GET /api/silent", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /api/early", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusCreated)
	})
	return mux
}

func serve(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

func TestHTTPMiddleware(t *testing.T) {
	m, reg := newTest(t, Options{})
	h := m.HTTPMiddleware(nil)(newMux())
	for _, id := range []string{"1", "2", "3", "missing"} {
		serve(t, h, "GET", "/api/runs/"+id)
	}
	assert.Equal(t, http.StatusAccepted, serve(t, h, "POST", "/api/analyze").Code)
	assert.Equal(t, http.StatusNotFound, serve(t, h, "GET", "/nowhere/at/all").Code)
	assert.Equal(t, http.StatusMethodNotAllowed, serve(t, h, "DELETE", "/api/analyze").Code)
	serve(t, h, "BREW", "/api/analyze")
	assert.Equal(t, http.StatusOK, serve(t, h, "GET", "/api/silent").Code)
	serve(t, h, "GET", "/api/early") // 103 Early Hints, then 201

	for _, tc := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"method", "GET", "endpoint", "GET /api/runs/{id}", "status", "200"}, 3},
		{[]string{"method", "GET", "endpoint", "GET /api/runs/{id}", "status", "404"}, 1},
		{[]string{"method", "POST", "endpoint", "POST /api/analyze", "status", "202"}, 1},
		{[]string{"method", "GET", "endpoint", Unmatched, "status", "404"}, 1},
		{[]string{"method", "DELETE", "endpoint", Unmatched, "status", "405"}, 1},
		{[]string{"method", "other", "endpoint", Unmatched, "status", "405"}, 1},
		{[]string{"method", "GET", "endpoint", "GET /api/silent", "status", "200"}, 1},
		{[]string{"method", "GET", "endpoint", "GET /api/early", "status", "201"}, 1},
	} {
		assert.Equal(t, tc.want, value(t, reg, "dynoai_http_request_duration_seconds", tc.labels...), tc.labels)
	}
	assert.Equal(t, 4.0, value(t, reg, "dynoai_http_request_total", "method", "GET", "status", "200"))
	assert.Equal(t, 2.0, value(t, reg, "dynoai_http_request_total", "method", "GET", "status", "404"))
	assert.Equal(t, 0.0, value(t, reg, "dynoai_http_requests_in_flight"))
	out := exposition(t, reg, "dynoai_http_request_duration_seconds")
	assert.NotContains(t, out, "/api/runs/1", "raw path in a label")
	assert.Contains(t, out, `le="0.075"`, "the predecessor's buckets")
	assert.Contains(t, out, `le="7.5"`)
}

func TestHTTPMiddlewarePanics(t *testing.T) {
	m, reg := newTest(t, Options{})
	h := m.HTTPMiddleware(nil)(newMux())
	assert.PanicsWithValue(t, "boom", func() { serve(t, h, "GET", "/api/panic") })
	assert.PanicsWithError(t, http.ErrAbortHandler.Error(), func() { serve(t, h, "GET", "/api/abort") })
	assert.Equal(t, 1.0, value(t, reg, "dynoai_http_request_exceptions_total", "method", "GET", "status", "500"))
	assert.Equal(t, 1.0, value(t, reg, "dynoai_http_request_duration_seconds", "endpoint", "GET /api/panic", "status", "500"))
	assert.Equal(t, 2.0, value(t, reg, "dynoai_http_request_total", "method", "GET", "status", "500"))
	assert.Equal(t, 0.0, value(t, reg, "dynoai_http_requests_in_flight"))

	// Over a real server the panic reaches net/http, which drops the
	// connection; the exception is still counted once.
	srv := httptest.NewServer(h)
	defer srv.Close()
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	_, err := srv.Client().Get(srv.URL + "/api/panic")
	require.Error(t, err)
	assert.Equal(t, 2.0, value(t, reg, "dynoai_http_request_exceptions_total", "method", "GET", "status", "500"))
}

func TestHTTPMiddlewareInFlight(t *testing.T) {
	m, reg := newTest(t, Options{})
	entered, release := make(chan struct{}), make(chan struct{})
	h := m.HTTPMiddleware(func(*http.Request) string { return "slow" })(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { serve(t, h, "GET", "/") })
	}
	for range 3 {
		<-entered
	}
	assert.Equal(t, 3.0, value(t, reg, "dynoai_http_requests_in_flight"))
	close(release)
	wg.Wait()
	assert.Equal(t, 0.0, value(t, reg, "dynoai_http_requests_in_flight"))
	assert.Equal(t, 3.0, value(t, reg, "dynoai_http_request_duration_seconds", "endpoint", "slow"))
}

func TestEndpointCardinalityBound(t *testing.T) {
	m, reg := newTest(t, Options{MaxEndpoints: 3})
	// A careless route function returning raw paths cannot blow up the series.
	h := m.HTTPMiddleware(func(r *http.Request) string { return r.URL.Path })(okHandler())
	for i := range 10 {
		serve(t, h, "GET", fmt.Sprintf("/r/%d", i))
	}
	serve(t, h, "GET", "/r/0")
	out := exposition(t, reg, "dynoai_http_request_duration_seconds")
	assert.Equal(t, 7.0, value(t, reg, "dynoai_http_request_duration_seconds", "endpoint", Other))
	assert.Equal(t, 2.0, value(t, reg, "dynoai_http_request_duration_seconds", "endpoint", "/r/0"))
	assert.Equal(t, 4, strings.Count(out, "_count{"), out)
}

// TestHTTPMiddlewareRouteThroughContextCopy: when middleware between this one
// and the mux replaces the request, r.Pattern stays empty on the outer
// request; the mux.Handler route function still finds the pattern.
func TestHTTPMiddlewareRouteThroughContextCopy(t *testing.T) {
	m, reg := newTest(t, Options{})
	mux := newMux()
	type k struct{}
	copying := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), k{}, 1)))
		})
	}
	byMux := func(r *http.Request) string { _, p := mux.Handler(r); return p }
	serve(t, m.HTTPMiddleware(nil)(copying(mux)), "GET", "/api/runs/1")
	serve(t, m.HTTPMiddleware(byMux)(copying(mux)), "GET", "/api/runs/2")
	assert.Equal(t, 1.0, value(t, reg, "dynoai_http_request_duration_seconds", "endpoint", Unmatched, "status", "200"))
	assert.Equal(t, 1.0, value(t, reg, "dynoai_http_request_duration_seconds", "endpoint", "GET /api/runs/{id}"))
}

func TestStatusWriterPassThrough(t *testing.T) {
	m, _ := newTest(t, Options{})
	var flushed, unwrapped bool
	h := m.HTTPMiddleware(nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := w.(http.Flusher)
		require.True(t, ok)
		f.Flush()
		flushed = true
		_, unwrapped = w.(interface{ Unwrap() http.ResponseWriter })
		err := http.NewResponseController(w).SetWriteDeadline(time.Time{})
		assert.True(t, err == nil || errors.Is(err, http.ErrNotSupported))
	}))
	rec := serve(t, h, "GET", "/events")
	assert.True(t, flushed)
	assert.True(t, unwrapped)
	assert.True(t, rec.Flushed)
}
