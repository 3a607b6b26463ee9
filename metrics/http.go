package metrics

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// HTTPDurationBuckets returns the buckets of
// dynoai_http_request_duration_seconds, those of the predecessor's exporter,
// in a new slice.
func HTTPDurationBuckets() []float64 {
	return []float64{.005, .01, .025, .05, .075, .1, .25, .5, .75, 1, 2.5, 5, 7.5, 10}
}

// Endpoint label values for requests without a route.
const (
	// Unmatched labels requests no route matched (404 from the router).
	Unmatched = "unmatched"
)

type httpMetrics struct {
	duration   *prometheus.HistogramVec
	total      *prometheus.CounterVec
	exceptions *prometheus.CounterVec
	inFlight   prometheus.Gauge

	mu        sync.RWMutex
	endpoints map[string]bool
	max       int
}

func newHTTPMetrics(maxEndpoints int) *httpMetrics {
	return &httpMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "http_request_duration_seconds",
			Help:    "HTTP request duration in seconds, by method, route pattern and status.",
			Buckets: HTTPDurationBuckets(),
		}, []string{"method", "endpoint", "status"}),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "http_request_total",
			Help: "Total number of HTTP requests.",
		}, []string{"method", "status"}),
		exceptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "http_request_exceptions_total",
			Help: "Total number of HTTP requests which resulted in an exception (a handler panic).",
		}, []string{"method", "status"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "http_requests_in_flight",
			Help: "Number of HTTP requests being served.",
		}),
		endpoints: make(map[string]bool),
		max:       maxEndpoints,
	}
}

// endpoint bounds the endpoint label's cardinality.
func (h *httpMetrics) endpoint(p string) string {
	if p == "" {
		return Unmatched
	}
	h.mu.RLock()
	ok, n := h.endpoints[p], len(h.endpoints)
	h.mu.RUnlock()
	if ok {
		return p
	}
	if n >= h.max {
		return Other
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.endpoints[p] {
		if len(h.endpoints) >= h.max {
			return Other
		}
		h.endpoints[p] = true
	}
	return p
}

// method bounds the method label to the standard methods.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return Other
}

// statusLabel is the numeric status, or "other" outside 100..599.
func statusLabel(code int) string {
	if code < 100 || code > 599 {
		return Other
	}
	return strconv.Itoa(code)
}

// Pattern is the default route function of [Metrics.HTTPMiddleware]: the
// pattern with which a Go 1.22+ http.ServeMux matched the request.
func Pattern(r *http.Request) string { return r.Pattern }

// HTTPMiddleware returns middleware recording dynoai_http_request_duration_seconds
// (method, endpoint, status), dynoai_http_request_total (method, status),
// dynoai_http_request_exceptions_total (method, status; handler panics,
// which are re-raised after counting with status 500) and
// dynoai_http_requests_in_flight.
//
// route names the request's route for the endpoint label and is called
// after the handler returns; "" means no route matched ("unmatched"). Nil
// means [Pattern], which works when the middleware wraps a ServeMux
// directly or wraps a handler registered on one. When other middleware
// between this one and the mux replaces the request (r.WithContext), use
// the mux itself: func(r *http.Request) string { _, p := mux.Handler(r); return p }.
// Route patterns are bounded by Options.MaxEndpoints; never pass raw paths.
//
// On a disabled or nil *Metrics it returns the handler unchanged.
func (m *Metrics) HTTPMiddleware(route func(*http.Request) string) func(http.Handler) http.Handler {
	if route == nil {
		route = Pattern
	}
	return func(next http.Handler) http.Handler {
		if !m.Enabled() {
			return next
		}
		h := m.http
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			h.inFlight.Inc()
			rw := &statusWriter{ResponseWriter: w}
			defer func() {
				h.inFlight.Dec()
				p := recover()
				status := rw.status
				if status == 0 {
					status = http.StatusOK
				}
				if p != nil && !rw.wrote {
					status = http.StatusInternalServerError
				}
				meth, st := method(r.Method), statusLabel(status)
				h.duration.WithLabelValues(meth, h.endpoint(route(r)), st).Observe(time.Since(start).Seconds())
				h.total.WithLabelValues(meth, st).Inc()
				if p != nil {
					if err, ok := p.(error); !ok || !errors.Is(err, http.ErrAbortHandler) {
						h.exceptions.WithLabelValues(meth, st).Inc()
					}
					panic(p)
				}
			}()
			next.ServeHTTP(rw, r)
		})
	}
}

// statusWriter captures the status code a handler sends.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool // headers sent
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
			w.ResponseWriter.WriteHeader(code) // informational: not final
			return
		}
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets streaming handlers (Server-Sent Events) flush through the
// middleware with a plain http.Flusher type assertion.
func (w *statusWriter) Flush() {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack supports protocol upgrades through the middleware.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && !w.wrote {
		w.status, w.wrote = http.StatusSwitchingProtocols, true
	}
	return c, rw, err
}

// Unwrap gives http.ResponseController access to the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
