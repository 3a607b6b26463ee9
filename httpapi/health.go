package httpapi

import (
	"context"
	_ "embed"
	"net/http"
	"time"
)

//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the server's OpenAPI 3 document (JSON).
func OpenAPI() []byte { return append([]byte(nil), openAPIDoc...) }

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPIDoc)
	return nil
}

type component struct {
	Name      string  `json:"name"`
	Status    string  `json:"status"` // healthy, degraded, unhealthy
	Message   string  `json:"message"`
	LatencyMS float64 `json:"latency_ms"`
}

var rank = map[string]int{"healthy": 0, "degraded": 1, "unhealthy": 2}

// components checks what the server depends on. Nothing here calls out of
// the process: Jetstream is judged by its poller's last result.
func (s *Server) components(ctx context.Context) []component {
	var out []component
	t0 := time.Now()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := s.cfg.Runs.Ping(pctx)
	cancel()
	c := component{Name: "run_store", Status: "healthy", Message: "reachable", LatencyMS: ms(time.Since(t0))}
	if err != nil {
		c.Status, c.Message = "unhealthy", "not reachable"
	}
	out = append(out, c)
	s.mu.Lock()
	started, draining := s.started, s.draining
	s.mu.Unlock()
	wc := component{Name: "analysis_workers", Status: "healthy", Message: "accepting analyses"}
	switch {
	case draining:
		wc.Status, wc.Message = "unhealthy", "shutting down"
	case !started:
		wc.Status, wc.Message = "unhealthy", "not started"
	case s.inFlight.Load() >= int64(s.cfg.Queue+s.cfg.Workers):
		wc.Status, wc.Message = "degraded", "queue full"
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
	writeJSON(w, code, map[string]any{"status": overall, "timestamp": now.UTC().Format(time.RFC3339Nano),
		"version": s.cfg.Version, "uptime_seconds": now.Sub(s.begun).Seconds(), "components": comps})
	return nil
}

func (s *Server) handleLive(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"status": "alive", "timestamp": s.cfg.Now().UTC().Format(time.RFC3339Nano)})
	return nil
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) error {
	ts := s.cfg.Now().UTC().Format(time.RFC3339Nano)
	for _, c := range s.components(r.Context()) {
		if (c.Name == "run_store" || c.Name == "analysis_workers") && c.Status == "unhealthy" {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not_ready",
				"reason": c.Name + ": " + c.Message, "timestamp": ts})
			return nil
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "timestamp": ts})
	return nil
}
