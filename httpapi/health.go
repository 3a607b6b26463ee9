package httpapi

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/dynoai/dynoai/metrics"
)

//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the server's OpenAPI 3 document (JSON).
func OpenAPI() []byte { return append([]byte(nil), openAPIDoc...) }

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(s.openAPI)
	return nil
}

type component struct {
	Name      string  `json:"name"`
	Status    string  `json:"status"` // healthy, degraded, unhealthy
	Message   string  `json:"message"`
	LatencyMS float64 `json:"latency_ms"`
}

var rank = map[string]int{"healthy": 0, "degraded": 1, "unhealthy": 2}

// Storage component names, as health, readiness and the metric name them.
const (
	componentDatabase  = metrics.ComponentDatabase
	componentFileStore = metrics.ComponentFileStore
	componentRedis     = metrics.ComponentRedis // rate limits, when in Redis
)

// probeEvery is how long a storage check's result is reused: health and
// readiness are open to callers without a key, and each check is a durable
// write, so a flood of probes costs one write per component per interval.
const probeEvery = time.Second

// prober runs one storage check at a time and shares its result for
// probeEvery.
type prober struct {
	every time.Duration // probeEvery; tests set 0
	name  string
	check func(context.Context) error
	m     *metrics.Metrics
	log   *slog.Logger

	mu      sync.Mutex
	running chan struct{} // closed when the check in progress ends
	at      time.Time
	err     error
	latency time.Duration
}

// result returns the latest check, running a new one when the last is
// older than probeEvery.
func (p *prober) result(ctx context.Context) (time.Duration, error) {
	p.mu.Lock()
	if !p.at.IsZero() && time.Since(p.at) < p.every {
		defer p.mu.Unlock()
		return p.latency, p.err
	}
	if p.running == nil {
		done := make(chan struct{})
		p.running = done
		p.mu.Unlock()
		start := time.Now()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err := p.check(cctx)
		cancel()
		p.m.ObserveStorageCheck(p.name, err)
		if err != nil {
			p.log.Error("storage check failed", "component", p.name, "err", err)
		}
		p.mu.Lock()
		p.at, p.err, p.latency, p.running = time.Now(), err, time.Since(start), nil
		close(done)
		p.mu.Unlock()
		return time.Since(start), err
	}
	done := p.running
	p.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latency, p.err
}

// components checks what the server depends on: the run store and the file
// store with a durable write and read back (runstore's Probe), Redis when
// rate limits are kept there (a write and read back), the analysis
// workers, and the live sources. Nothing here calls out of the
// process: Jetstream is judged by its poller's last result.
func (s *Server) components(ctx context.Context) []component {
	var out []component
	for _, p := range []*prober{s.dbProbe, s.fileProbe} {
		lat, err := p.result(ctx)
		c := component{Name: p.name, Status: "healthy", Message: "write, sync and read back succeeded", LatencyMS: ms(lat)}
		if err != nil {
			c.Status, c.Message = "unhealthy", "storage check failed (see the server log)"
		}
		if d, ok := s.cfg.Files.(fmt.Stringer); ok && p == s.fileProbe {
			c.Message = d.String() + ": " + c.Message // which store: a directory, a bucket
		}
		out = append(out, c)
	}
	if s.redisProbe != nil {
		out = append(out, s.redisComponent(ctx))
	}
	s.mu.Lock()
	started, draining := s.started, s.draining
	s.mu.Unlock()
	wc := component{Name: "analysis_workers", Status: "healthy", Message: "accepting analyses"}
	switch {
	case draining:
		wc.Status, wc.Message = "unhealthy", "shutting down"
	case !started:
		wc.Status, wc.Message = "unhealthy", "not started"
	case s.backlog.Load() >= int64(s.cfg.Queue):
		wc.Status, wc.Message = "degraded", fmt.Sprintf("queue full: %d analyses waiting in the cluster", s.backlog.Load())
	default:
		wc.Message = fmt.Sprintf("accepting analyses; %d of %d workers busy on replica %s", s.busy.Load(), s.cfg.Workers, s.cfg.Replica)
	}
	out = append(out, wc)
	if s.cfg.JetDrive != nil {
		st := s.cfg.JetDrive.Stats()
		jc := component{Name: "jetdrive", Status: "healthy", Message: "providers live"}
		live := 0
		for _, p := range st.Providers {
			if !p.Stale {
				live++
			}
		}
		if live == 0 {
			jc.Status, jc.Message = "degraded", "no live provider"
		}
		out = append(out, jc)
	}
	if s.cfg.Jetstream != nil {
		st := s.cfg.Jetstream.Status()
		jc := component{Name: "jetstream", Status: "healthy", Message: "last poll succeeded"}
		if !st.Connected {
			jc.Status, jc.Message = "degraded", "last poll failed or none yet"
		}
		out = append(out, jc)
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// handleHealth reports every component with details. With authentication
// it needs a key that may read (details name what the server runs on).
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) error {
	comps := s.components(r.Context())
	overall := "healthy"
	for _, c := range comps {
		if rank[c.Status] > rank[overall] {
			overall = c.Status
		}
	}
	code := http.StatusOK
	if overall == "unhealthy" {
		code = http.StatusServiceUnavailable
	}
	now := s.cfg.Now()
	body := map[string]any{"status": overall, "timestamp": now.UTC().Format(time.RFC3339Nano),
		"version": s.cfg.Version, "uptime_seconds": now.Sub(s.begun).Seconds(), "components": comps,
		"replica": s.cfg.Replica}
	// The cluster's queue as this replica sees it (every replica shares it).
	qctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if c, err := s.cfg.Runs.JobCounts(qctx); err == nil {
		s.backlog.Store(c.Backlog())
		s.cfg.Metrics.SetJobBacklog(c.Backlog())
		body["queue"] = map[string]any{"waiting": c.Available, "due": c.Due, "running": c.Running,
			"expired_leases": c.Expired, "busy_workers_here": s.busy.Load(), "workers_here": s.cfg.Workers}
	}
	writeJSON(w, code, body)
	return nil
}

// handleLive answers that the process serves HTTP; it is open to anyone and
// says nothing else.
func (s *Server) handleLive(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"status": "alive"})
	return nil
}

// handleReady answers whether the server can take work: its run store and
// file store pass a durable write and read back, and its workers accept
// analyses, and, when rate limits are in Redis and fail closed, Redis
// answers. It is open to anyone, so a failure names only the component
// (database, file_store, analysis_workers or redis), never its error.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) error {
	for _, c := range s.components(r.Context()) {
		if (c.Name == componentDatabase || c.Name == componentFileStore || c.Name == "analysis_workers" || c.Name == componentRedis) && c.Status == "unhealthy" {
			w.Header().Set("Retry-After", "5")
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not_ready", "component": c.Name})
			return nil
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
	return nil
}
