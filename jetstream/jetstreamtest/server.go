package jetstreamtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dynoai/dynoai/jetstream"
)

// Run is a run the fake serves: its metadata and its raw data.
type Run struct {
	jetstream.RunMetadata
	Data []byte // the body of GET .../download, typically a CSV
}

// Endpoint names one endpoint of the contract, for faults and counters.
type Endpoint string

// The endpoints.
const (
	EndpointHealth   Endpoint = "health"
	EndpointList     Endpoint = "list"
	EndpointRun      Endpoint = "run"
	EndpointDownload Endpoint = "download"
	EndpointMark     Endpoint = "mark"
)

// FaultKind is a way for a request to go wrong.
type FaultKind int

// The faults the server can inject.
const (
	// FaultStatus answers with Fault.Status (500 when zero) and a JSON error.
	FaultStatus FaultKind = iota
	// FaultRateLimit answers 429 with the header Retry-After: Fault.RetryAfter.
	FaultRateLimit
	// FaultStall holds the request for Fault.Delay, or until the client gives
	// up when Delay is zero, then answers normally if the client still waits.
	FaultStall
	// FaultTruncate sends a download's headers with the full Content-Length,
	// then half of the body, then drops the connection.
	FaultTruncate
	// FaultDrop drops the connection without an answer.
	FaultDrop
	// FaultDuplicate repeats every run of a list page (same id twice).
	FaultDuplicate
)

var faultNames = map[FaultKind]string{FaultStatus: "status", FaultRateLimit: "rate-limit", FaultStall: "stall",
	FaultTruncate: "truncate", FaultDrop: "drop", FaultDuplicate: "duplicate"}

// String names the fault kind.
func (k FaultKind) String() string {
	if n, ok := faultNames[k]; ok {
		return n
	}
	return "fault(" + strconv.Itoa(int(k)) + ")"
}

// Fault is an injected failure. It applies to the next Times requests that
// match Endpoint and RunID.
type Fault struct {
	Kind       FaultKind
	Endpoint   Endpoint      // "" matches every endpoint
	RunID      string        // "" matches every run
	Status     int           // FaultStatus: the status, 500 when zero
	RetryAfter string        // FaultRateLimit: the Retry-After header, "1" when empty
	Delay      time.Duration // FaultStall: how long to hold the request
	Times      int           // how many requests it hits; 0 means 1, negative means every one
	After      int           // how many matching requests it lets through first
}

// Chaos injects faults at random into a fraction of requests, reproducibly.
type Chaos struct {
	Seed  uint64      // the random seed
	Rate  float64     // the fraction of requests that fail, 0..1
	Kinds []FaultKind // the kinds drawn from, uniformly; empty means every kind
	// Stall is the delay of FaultStall faults; 0 means until the client gives up.
	Stall time.Duration
	// RetryAfter is the Retry-After of FaultRateLimit faults; "" means "1".
	RetryAfter string
}

// Options configures a Server.
type Options struct {
	// APIKey is the Bearer key the server accepts; empty accepts any non-empty key.
	APIKey string
	// PageSize is the default list page size; 0 means 25. A request's limit
	// overrides it up to 1000.
	PageSize int
	// Chaos, when Rate is above zero, injects random faults.
	Chaos Chaos
}

// Server is a fake Jetstream API on a loopback httptest server.
type Server struct {
	// URL is the base URL to give jetstream.HTTPOptions.BaseURL.
	URL string

	ts   *httptest.Server
	o    Options
	done chan struct{}

	mu       sync.Mutex
	runs     map[string]*Run
	marks    map[string]int
	faults   []*Fault
	requests map[Endpoint]int
	injected map[FaultKind]int
	rng      *rand.Rand
	closed   bool
}

// NewServer starts a fake Jetstream server on 127.0.0.1. Close it when done.
func NewServer(o Options) *Server {
	if o.PageSize <= 0 {
		o.PageSize = 25
	}
	s := &Server{o: o, done: make(chan struct{}), runs: map[string]*Run{}, marks: map[string]int{},
		requests: map[Endpoint]int{}, injected: map[FaultKind]int{},
		rng: rand.New(rand.NewPCG(o.Chaos.Seed, 0x9e3779b97f4a7c15))}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/health", s.wrap(EndpointHealth, s.health))
	mux.HandleFunc("GET /api/v1/runs", s.wrap(EndpointList, s.list))
	mux.HandleFunc("GET /api/v1/runs/{id}", s.wrap(EndpointRun, s.run))
	mux.HandleFunc("GET /api/v1/runs/{id}/download", s.wrap(EndpointDownload, s.download))
	mux.HandleFunc("POST /api/v1/runs/{id}/processed", s.wrap(EndpointMark, s.mark))
	s.ts = httptest.NewServer(mux)
	s.URL = s.ts.URL
	return s
}

// Close stops the server, releasing stalled requests.
func (s *Server) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	s.mu.Unlock()
	s.ts.Close()
}

// Add publishes runs (or replaces runs with the same id). A run may be added
// at any time, with any timestamp: one older than runs already listed plays
// a run that Jetstream shows late.
func (s *Server) Add(runs ...Run) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range runs {
		r := r
		r.Data = slices.Clone(r.Data)
		s.runs[r.ID] = &r
	}
}

// Inject queues faults. Faults are tried in the order injected; the first
// that matches a request hits it.
func (s *Server) Inject(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range faults {
		f := f
		if f.Times == 0 {
			f.Times = 1
		}
		s.faults = append(s.faults, &f)
	}
}

// Processed reports whether run id has been marked processed.
func (s *Server) Processed(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runs[id]
	return ok && r.Processed
}

// Marks returns how many times run id was marked processed.
func (s *Server) Marks(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.marks[id]
}

// Requests returns how many requests reached endpoint ep.
func (s *Server) Requests(ep Endpoint) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[ep]
}

// Injected returns how many requests each fault kind hit.
func (s *Server) Injected() map[FaultKind]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[FaultKind]int, len(s.injected))
	for k, v := range s.injected {
		out[k] = v
	}
	return out
}

type handler func(w http.ResponseWriter, r *http.Request, f *Fault)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// wrap checks the key, counts the request and applies a fault, if any.
func (s *Server) wrap(ep Endpoint, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || key == "" || (s.o.APIKey != "" && key != s.o.APIKey) {
			writeError(w, http.StatusUnauthorized, "invalid or missing API key")
			return
		}
		f := s.take(ep, r.PathValue("id"))
		switch {
		case f == nil:
		case f.Kind == FaultStatus:
			writeError(w, cmpOr(f.Status, http.StatusInternalServerError), "injected failure")
			return
		case f.Kind == FaultRateLimit:
			w.Header().Set("Retry-After", cmpOr(f.RetryAfter, "1"))
			writeError(w, http.StatusTooManyRequests, "rate limited")
			return
		case f.Kind == FaultDrop:
			panic(http.ErrAbortHandler)
		case f.Kind == FaultStall:
			var timeout <-chan time.Time
			if f.Delay > 0 {
				t := time.NewTimer(f.Delay)
				defer t.Stop()
				timeout = t.C
			}
			select {
			case <-timeout:
			case <-r.Context().Done():
				return
			case <-s.done:
				return
			}
		}
		h(w, r, f)
	}
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// take returns the fault hitting this request, or nil.
func (s *Server) take(ep Endpoint, id string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[ep]++
	for i, f := range s.faults {
		if (f.Endpoint != "" && f.Endpoint != ep) || (f.RunID != "" && f.RunID != id) || !applies(f.Kind, ep) {
			continue
		}
		if f.After > 0 {
			f.After--
			continue
		}
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		s.injected[f.Kind]++
		return f
	}
	c := s.o.Chaos
	if c.Rate > 0 && s.rng.Float64() < c.Rate {
		kinds := c.Kinds
		if len(kinds) == 0 {
			kinds = []FaultKind{FaultStatus, FaultRateLimit, FaultStall, FaultTruncate, FaultDrop, FaultDuplicate}
		}
		k := kinds[s.rng.IntN(len(kinds))]
		if !applies(k, ep) {
			k = FaultStatus
		}
		s.injected[k]++
		return &Fault{Kind: k, Status: http.StatusServiceUnavailable, Delay: c.Stall, RetryAfter: c.RetryAfter}
	}
	return nil
}

// applies reports whether a fault kind makes sense for an endpoint.
func applies(k FaultKind, ep Endpoint) bool {
	switch k {
	case FaultTruncate:
		return ep == EndpointDownload
	case FaultDuplicate:
		return ep == EndpointList
	}
	return true
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request, _ *Fault) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// listCursor is the keyset position after which a page starts.
type listCursor struct {
	T  time.Time `json:"t"`
	ID string    `json:"id"`
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, f *Fault) {
	q := r.URL.Query()
	var since time.Time
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("since %q is not RFC 3339", v))
			return
		}
		since = t
	}
	limit := s.o.PageSize
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q is not a positive integer", v))
			return
		}
		limit = min(n, 1000)
	}
	var after *listCursor
	if v := q.Get("cursor"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		var c listCursor
		if err == nil {
			err = json.Unmarshal(b, &c)
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid cursor")
			return
		}
		after = &c
	}
	s.mu.Lock()
	all := make([]jetstream.Run, 0, len(s.runs))
	for _, run := range s.runs {
		if run.Timestamp.Before(since) {
			continue
		}
		if after != nil && compareKey(run.Timestamp, run.ID, after.T, after.ID) <= 0 {
			continue
		}
		all = append(all, run.Run)
	}
	s.mu.Unlock()
	slices.SortFunc(all, func(a, b jetstream.Run) int { return compareKey(a.Timestamp, a.ID, b.Timestamp, b.ID) })
	page := jetstream.RunPage{Runs: all}
	if len(all) > limit {
		page.Runs = all[:limit]
		last := page.Runs[limit-1]
		b, _ := json.Marshal(listCursor{T: last.Timestamp, ID: last.ID})
		page.Next = base64.RawURLEncoding.EncodeToString(b)
	}
	if f != nil && f.Kind == FaultDuplicate {
		dup := make([]jetstream.Run, 0, 2*len(page.Runs))
		for _, run := range page.Runs {
			dup = append(dup, run, run)
		}
		page.Runs = dup
	}
	if page.Runs == nil {
		page.Runs = []jetstream.Run{}
	}
	writeJSON(w, http.StatusOK, page)
}

func compareKey(at time.Time, aid string, bt time.Time, bid string) int {
	if c := at.Compare(bt); c != 0 {
		return c
	}
	return strings.Compare(aid, bid)
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (*Run, bool) {
	id := r.PathValue("id")
	s.mu.Lock()
	run, ok := s.runs[id]
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("run %q not found", id))
	}
	return run, ok
}

func (s *Server) run(w http.ResponseWriter, r *http.Request, _ *Fault) {
	run, ok := s.lookup(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	m := run.RunMetadata
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) download(w http.ResponseWriter, r *http.Request, f *Fault) {
	run, ok := s.lookup(w, r)
	if !ok {
		return
	}
	data := run.Data
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	if f != nil && f.Kind == FaultTruncate {
		w.Write(data[:len(data)/2])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	w.Write(data)
}

func (s *Server) mark(w http.ResponseWriter, r *http.Request, _ *Fault) {
	run, ok := s.lookup(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	run.Processed = true
	s.marks[run.ID]++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"id": run.ID, "processed": true})
}
