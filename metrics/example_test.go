package metrics_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/dynoai/dynoai/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func Example() {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Options{Registerer: reg, Version: "2.0.0"})
	if err != nil {
		panic(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/runs/{id}", func(w http.ResponseWriter, r *http.Request) {
		m.ObserveAnalysis(metrics.StatusSuccess, metrics.SourceUpload, 12*time.Second)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	h := m.HTTPMiddleware(nil)(mux)

	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/runs/42", nil))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, `dynoai_analysis_total{source="upload",status="success"}`) ||
			strings.HasPrefix(line, "dynoai_http_request_duration_seconds_count") {
			fmt.Println(line)
		}
	}
	// Output:
	// dynoai_analysis_total{source="upload",status="success"} 1
	// dynoai_http_request_duration_seconds_count{endpoint="GET /api/runs/{id}",method="GET",status="200"} 1
}

func ExampleNew_disabled() {
	// A nil Registerer means no metrics; every method is a safe no-op.
	m, _ := metrics.New(metrics.Options{})
	m.ObserveUpload(1 << 20)
	fmt.Println(m.Enabled())
	// Output: false
}
