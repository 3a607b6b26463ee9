package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/jetdrive"
	"github.com/dynoai/dynoai/jetstream"
)

// JetDrive is what the live routes need of a JetDrive client;
// *jetdrive.Client satisfies it. The server drains its samples (Next) into
// the latest-value cell the routes serve.
type JetDrive interface {
	dyno.Source
	Stats() jetdrive.Stats
	Mapping() []jetdrive.Assignment
}

// Jetstream is what the Jetstream routes need of a poller;
// *jetstream.Poller satisfies it.
type Jetstream interface {
	Status() jetstream.PollerStatus
	Poll(ctx context.Context) (jetstream.PollResult, error)
	Subscribe(buffer int) (<-chan jetstream.Event, func())
}

// SSE timing.
const (
	sseKeepAlive = 15 * time.Second
	sseMinGap    = 50 * time.Millisecond // at most 20 events a second
)

// liveHub keeps the latest JetDrive sample and wakes streams on change.
type liveHub struct {
	src  JetDrive
	log  *slog.Logger
	mu   sync.Mutex
	cur  liveValues
	seq  uint64
	wake chan struct{}
	err  string
	done chan struct{}
	rec  liveRecorder // the live session (livesession.go)
}

func newLiveHub(src JetDrive, log *slog.Logger) *liveHub {
	return &liveHub{src: src, log: log, wake: make(chan struct{}), done: make(chan struct{})}
}

func (h *liveHub) start(ctx context.Context) {
	go func() {
		defer close(h.done)
		smp := dyno.NewSample()
		backoff := 100 * time.Millisecond
		for ctx.Err() == nil {
			err := h.src.Next(ctx, &smp)
			if err == nil {
				backoff = 100 * time.Millisecond
				h.publish(&smp, "")
				h.rec.feed(&smp)
				continue
			}
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				h.publish(nil, "the JetDrive source ended")
				return
			}
			h.log.Warn("jetdrive read failed", "err", err)
			h.publish(nil, err.Error())
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}()
}

func (h *liveHub) wait() {
	deadline := time.After(5 * time.Second)
	select {
	case <-h.done:
	case <-deadline:
	}
	// The live session stops with the server's work context; wait for it
	// to release its lease while the stores are still open.
	h.rec.mu.Lock()
	cur := h.rec.cur
	h.rec.mu.Unlock()
	if cur != nil {
		select {
		case <-cur.done:
		case <-deadline:
		}
	}
}

func (h *liveHub) publish(s *dyno.Sample, errText string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s != nil {
		h.seq++
		h.cur = valuesOf(s, h.src.Layout(), h.seq)
	}
	h.err = errText
	close(h.wake)
	h.wake = make(chan struct{})
}

func (h *liveHub) snapshot() (liveValues, string, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cur, h.err, h.wake
}

// liveValues is one sample in JSON: missing channels are null.
type liveValues struct {
	Seq       uint64     `json:"seq"`
	At        time.Time  `json:"at"`
	Time      float64    `json:"time_s"`
	RPM       *float64   `json:"rpm"`
	MAP       *float64   `json:"map_kpa"`
	TPS       *float64   `json:"tps"`
	AFR       []*float64 `json:"afr"`
	Lambda    []*float64 `json:"lambda"`
	Spark     []*float64 `json:"spark"`
	Knock     []*float64 `json:"knock"`
	Torque    *float64   `json:"torque"`
	Power     *float64   `json:"hp"`
	IAT       *float64   `json:"iat_c"`
	ECT       *float64   `json:"ect_c"`
	Baro      *float64   `json:"baro_kpa"`
	DrumSpeed *float64   `json:"drum_speed_mph"`
	DrumForce *float64   `json:"drum_force_lbf"`
}

func num(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func valuesOf(s *dyno.Sample, l dyno.Layout, seq uint64) liveValues {
	n := min(max(l.Cylinders, 1), dyno.MaxCylinders)
	per := func(p dyno.PerCylinder) []*float64 {
		out := make([]*float64, n)
		for i := range out {
			out[i] = num(p[i])
		}
		return out
	}
	return liveValues{Seq: seq, At: time.Now().UTC(), Time: s.Time.Seconds(), RPM: num(s.RPM), MAP: num(s.MAP), TPS: num(s.TPS),
		AFR: per(s.AFR), Lambda: per(s.Lambda), Spark: per(s.Spark), Knock: per(s.Knock),
		Torque: num(s.Torque), Power: num(s.Power), IAT: num(s.IAT), ECT: num(s.ECT), Baro: num(s.Baro),
		DrumSpeed: num(s.DrumSpeed), DrumForce: num(s.DrumForce)}
}

func notConfigured(what string) error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeNotConfigured, Message: what + " is not configured on this server"}
}

func (s *Server) handleJDProviders(w http.ResponseWriter, r *http.Request) error {
	if err := s.defaultTenantOnly(r, "JetDrive"); err != nil {
		return err
	}
	if s.cfg.JetDrive == nil {
		return notConfigured("JetDrive")
	}
	st := s.cfg.JetDrive.Stats()
	type ch struct {
		ID     uint16   `json:"id"`
		Name   string   `json:"name"`
		Unit   string   `json:"unit"`
		Known  bool     `json:"known"`
		Count  uint64   `json:"count"`
		Last   *float64 `json:"last"`
		RateHz *float64 `json:"rate_hz"`
		Stale  bool     `json:"stale"`
		Frozen bool     `json:"frozen"`
		Field  string   `json:"field,omitempty"`
	}
	type prov struct {
		Host     uint16    `json:"host"`
		Name     string    `json:"name"`
		Addr     string    `json:"addr"`
		Messages uint64    `json:"messages"`
		LastSeen time.Time `json:"last_seen"`
		Stale    bool      `json:"stale"`
		Synced   bool      `json:"synced"`
		RTTMS    float64   `json:"rtt_ms"`
		Channels []ch      `json:"channels"`
	}
	out := make([]prov, 0, len(st.Providers))
	for _, p := range st.Providers {
		pv := prov{Host: p.Host, Name: p.Name, Addr: p.Addr.String(), Messages: p.Messages, LastSeen: p.LastSeen,
			Stale: p.Stale, Synced: p.Synced, RTTMS: float64(p.RTT) / float64(time.Millisecond), Channels: []ch{}}
		for _, c := range p.Channels {
			pv.Channels = append(pv.Channels, ch{ID: c.ID, Name: c.Name, Unit: c.Unit.String(), Known: c.Known, Count: c.Count,
				Last: num(float64(c.Last)), RateHz: num(c.RateHz), Stale: c.Stale, Frozen: c.Frozen, Field: c.Field})
		}
		out = append(out, pv)
	}
	writeJSON(w, http.StatusOK, map[string]any{"providers": out, "host_id": st.HostID, "datagrams": st.Datagrams,
		"samples": st.Samples, "overflow": st.Overflow, "errors": st.Errors})
	return nil
}

func (s *Server) handleJDChannels(w http.ResponseWriter, r *http.Request) error {
	if err := s.defaultTenantOnly(r, "JetDrive"); err != nil {
		return err
	}
	if s.cfg.JetDrive == nil {
		return notConfigured("JetDrive")
	}
	type assign struct {
		Field      string  `json:"field"`
		Host       uint16  `json:"host"`
		Provider   string  `json:"provider"`
		ChannelID  uint16  `json:"channel_id"`
		Channel    string  `json:"channel"`
		Unit       string  `json:"unit"`
		Confidence float64 `json:"confidence"`
		Override   bool    `json:"override"`
		Warning    string  `json:"warning,omitempty"`
	}
	m := s.cfg.JetDrive.Mapping()
	out := make([]assign, 0, len(m))
	for _, a := range m {
		conf := a.Confidence
		if math.IsNaN(conf) || math.IsInf(conf, 0) {
			conf = 0
		}
		out = append(out, assign{Field: a.Field.String(), Host: a.Source.Host, Provider: a.Source.Provider, ChannelID: a.Source.ID,
			Channel: a.Source.Name, Unit: a.Source.Unit.String(), Confidence: conf, Override: a.Override, Warning: a.Warning})
	}
	writeJSON(w, http.StatusOK, map[string]any{"channels": out})
	return nil
}

func (s *Server) handleJDLive(w http.ResponseWriter, r *http.Request) error {
	if err := s.defaultTenantOnly(r, "JetDrive"); err != nil {
		return err
	}
	if s.live == nil {
		return notConfigured("JetDrive")
	}
	v, errText, _ := s.live.snapshot()
	body := map[string]any{"values": nil, "stale": true}
	if v.Seq > 0 {
		body["values"] = v
		body["stale"] = s.cfg.Now().Sub(v.At) > 5*time.Second
	}
	if errText != "" {
		body["error"] = "the live source reported an error"
		if s.viewerOf(r).admin {
			body["error"] = errText // upstream detail: admin only
		}
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// sse prepares a Server-Sent Events response, taking a stream slot.
func (s *Server) sse(w http.ResponseWriter) (release func(), rc *http.ResponseController, err error) {
	select {
	case s.streams <- struct{}{}:
	default:
		return nil, nil, &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
			Message: "too many live streams open", Details: map[string]any{"retry_after_seconds": 5}}
	}
	rc = http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return func() { <-s.streams }, rc, rc.Flush()
}

func writeEvent(w io.Writer, event string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
	return err
}

func (s *Server) handleJDStream(w http.ResponseWriter, r *http.Request) error {
	if err := s.defaultTenantOnly(r, "JetDrive"); err != nil {
		return err
	}
	if s.live == nil {
		return notConfigured("JetDrive")
	}
	admin := s.viewerOf(r).admin
	release, rc, err := s.sse(w)
	if err != nil {
		return err
	}
	defer release()
	// A client following the live dyno data is a live tuning session:
	// dynoai_active_sessions counts the open streams of this replica.
	s.cfg.Metrics.AddActiveSessions(1)
	defer s.cfg.Metrics.AddActiveSessions(-1)
	ctx := r.Context()
	var sent uint64
	keep := time.NewTicker(sseKeepAlive)
	defer keep.Stop()
	for {
		v, errText, wake := s.live.snapshot()
		if v.Seq != sent && v.Seq > 0 {
			if writeEvent(w, "values", v) != nil || rc.Flush() != nil {
				return nil
			}
			sent = v.Seq
		} else if errText != "" && v.Seq == sent {
			if !admin {
				errText = "the live source reported an error"
			}
			if writeEvent(w, "error", map[string]string{"error": errText}) != nil || rc.Flush() != nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.streamCtx.Done():
			return nil
		case <-keep.C:
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil || rc.Flush() != nil {
				return nil
			}
			continue
		case <-wake:
		}
		select { // pace: at most one event per sseMinGap
		case <-ctx.Done():
			return nil
		case <-time.After(sseMinGap):
		}
	}
}

// jsStatus is a poller status in JSON. Upstream errors are shown only to
// admin (they may carry what Jetstream answered).
func jsStatus(st jetstream.PollerStatus, admin bool) map[string]any {
	opt := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.UTC()
	}
	active := st.Active
	if active == nil {
		active = []string{}
	}
	errText := st.Error
	if errText != "" && !admin {
		errText = "the last poll failed"
	}
	return map[string]any{"running": st.Running, "connected": st.Connected, "last_poll": opt(st.LastPoll),
		"next_poll": opt(st.NextPoll), "cursor": opt(st.Cursor), "error": errText,
		"consecutive_failures": st.ConsecutiveFailures, "pending_runs": st.Queued, "active": active,
		"done": st.Done, "failed": st.Failed, "retried": st.Retried}
}

func (s *Server) handleJSStatus(w http.ResponseWriter, r *http.Request) error {
	if err := s.defaultTenantOnly(r, "Jetstream"); err != nil {
		return err
	}
	if s.cfg.Jetstream == nil {
		return notConfigured("Jetstream")
	}
	writeJSON(w, http.StatusOK, jsStatus(s.cfg.Jetstream.Status(), s.viewerOf(r).admin))
	return nil
}

// handleJSConfig shows the Jetstream configuration with the key masked (at
// most its last four characters).
// There is no route that writes it: it comes from the server's
// configuration only, so no call can store a key in plaintext.
func (s *Server) handleJSConfig(w http.ResponseWriter, r *http.Request) error {
	if err := s.defaultTenantOnly(r, "Jetstream"); err != nil {
		return err
	}
	c := s.cfg.JetstreamConfig.Masked()
	writeJSON(w, http.StatusOK, map[string]any{"api_url": c.APIURL, "api_key": c.APIKey,
		"poll_interval_seconds": c.PollInterval.Seconds(), "auto_process": c.AutoProcess, "enabled": c.Enabled,
		"configured": s.cfg.Jetstream != nil})
	return nil
}

func (s *Server) handleJSSync(w http.ResponseWriter, r *http.Request) error {
	if err := s.defaultTenantOnly(r, "Jetstream"); err != nil {
		return err
	}
	if s.cfg.Jetstream == nil {
		return notConfigured("Jetstream")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	res, err := s.cfg.Jetstream.Poll(ctx)
	if err != nil {
		return &Error{Status: http.StatusBadGateway, Code: CodeUpstream, Message: "Jetstream sync failed", Err: err,
			Details: map[string]any{"operation": "sync"}}
	}
	nz := func(a []string) []string {
		if a == nil {
			return []string{}
		}
		return a
	}
	writeJSON(w, http.StatusOK, map[string]any{"new_runs_found": len(res.New), "run_ids": nz(res.New),
		"processed": nz(res.Processed), "failed": nz(res.Failed), "retrying": nz(res.Retrying)})
	return nil
}

func (s *Server) handleJSEvents(w http.ResponseWriter, r *http.Request) error {
	if err := s.defaultTenantOnly(r, "Jetstream"); err != nil {
		return err
	}
	if s.cfg.Jetstream == nil {
		return notConfigured("Jetstream")
	}
	release, rc, err := s.sse(w)
	if err != nil {
		return err
	}
	defer release()
	events, cancel := s.cfg.Jetstream.Subscribe(64)
	defer cancel()
	admin := s.viewerOf(r).admin
	if writeEvent(w, "connected", jsStatus(s.cfg.Jetstream.Status(), admin)) != nil || rc.Flush() != nil {
		return nil
	}
	keep := time.NewTicker(sseKeepAlive)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-s.streamCtx.Done():
			return nil
		case <-keep.C:
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil || rc.Flush() != nil {
				return nil
			}
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			body := map[string]any{"run_id": ev.RunID, "status": ev.Status, "attempt": ev.Attempt, "time": ev.Time.UTC()}
			if ev.Err != "" {
				body["error"] = "the run failed"
				if admin {
					body["error"] = ev.Err
				}
			}
			if writeEvent(w, "run", body) != nil || rc.Flush() != nil {
				return nil
			}
		}
	}
}
