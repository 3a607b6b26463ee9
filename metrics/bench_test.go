package metrics

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkHTTPMiddleware measures the metrics middleware's overhead per
// request around a ServeMux route, against the bare mux.
func BenchmarkHTTPMiddleware(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/runs/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	m, err := New(Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	disabled, _ := New(Options{})
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{
		{"bare-mux", mux},
		{"disabled", disabled.HTTPMiddleware(nil)(mux)},
		{"enabled", m.HTTPMiddleware(nil)(mux)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			req := httptest.NewRequest(http.MethodGet, "/api/runs/42", nil)
			w := httptest.NewRecorder()
			for b.Loop() {
				tc.h.ServeHTTP(w, req)
			}
		})
	}
}

// BenchmarkObserveAnalysis measures one business-metric recording.
func BenchmarkObserveAnalysis(b *testing.B) {
	m, err := New(Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveAnalysis(StatusSuccess, SourceUpload, 3*time.Second)
	}
}
