package httpapi

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynoai/dynoai/authkeys"
	"github.com/dynoai/dynoai/httpapi/webui"
	"github.com/dynoai/dynoai/runstore"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// access says who may call a route (see AuthConfig).
type access int

const (
	accessPublic  access = iota // liveness, readiness, the API document: never a key
	accessRead                  // the read scope, unless AuthConfig.OpenReads
	accessAnalyze               // the analyze scope
	accessApply                 // the apply scope
	accessMetrics               // the admin scope, unless AuthConfig.OpenMetrics
)

// route is one entry of the route table, which also drives the OpenAPI test.
type route struct {
	method, path string
	h            func(http.ResponseWriter, *http.Request) error
	access       access
	expensive    bool // the Expensive rate budget
	upload       bool // body bounded by MaxUploadBytes instead of MaxBodyBytes
	long         bool // no RequestTimeout (streams, downloads, uploads)
	unlimited    bool // no rate limit (health probes, /metrics)
}

// needs returns whether a route needs a key and the scope it needs.
func (a access) needs(c AuthConfig) (bool, authkeys.Scopes) {
	switch a {
	case accessRead:
		return !c.OpenReads, authkeys.ScopeRead
	case accessAnalyze:
		return true, authkeys.ScopeAnalyze
	case accessApply:
		return true, authkeys.ScopeApply
	case accessMetrics:
		return !c.OpenMetrics, authkeys.ScopeAdmin
	}
	return false, 0
}

func (rt *route) pattern() string { return rt.method + " " + rt.path }

// Server is DynoAI's HTTP API. Build it with New, call Start before serving
// (or use Serve, which does both), and Shutdown when done.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	handler http.Handler
	routes  []*route

	// limDefault and limExpensive are the in-process budgets; rlDefault
	// and rlExpensive decide requests: the same budgets, or, with Redis,
	// a failover from the Redis budgets to them (limStore its state).
	limDefault, limExpensive *budget
	rlDefault, rlExpensive   rateLimiter
	limStore                 *storeState

	mu       sync.Mutex    // guards draining and started
	wakeup   chan struct{} // an upload was queued here: a worker need not wait for its poll
	drained  chan struct{} // closed when shutdown begins
	draining bool
	started  bool
	workers  sync.WaitGroup
	workCtx  context.Context
	stopWork context.CancelFunc
	// streamCtx ends when shutdown begins, so that open event streams do
	// not hold the HTTP server's graceful shutdown hostage.
	streamCtx   context.Context
	stopStreams context.CancelFunc
	busy        atomic.Int64 // workers running an analysis now
	backlog     atomic.Int64 // jobs waiting for a worker, as last counted

	dbProbe, fileProbe *prober
	redisProbe         *prober // nil without Redis

	keys     sessionKeys // the key store, which also accepts session tokens
	sessions *sessions
	openAPI  []byte // the API document with this server's BasePath
	ui       http.Handler

	runLocks keyedMutex
	streams  chan struct{}
	live     *liveHub
	begun    time.Time
}

// New builds a Server from cfg. It starts nothing; see Start and Serve.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.fill()
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		mux:     http.NewServeMux(),
		wakeup:  make(chan struct{}, cfg.Workers),
		drained: make(chan struct{}),
		streams: make(chan struct{}, cfg.MaxStreams),
		begun:   cfg.Now(),
	}
	s.dbProbe = &prober{every: probeEvery, name: componentDatabase, check: cfg.Runs.Probe, m: cfg.Metrics, log: s.log}
	s.fileProbe = &prober{every: probeEvery, name: componentFileStore, check: cfg.Files.Probe, m: cfg.Metrics, log: s.log}
	s.workCtx, s.stopWork = context.WithCancel(context.Background())
	s.streamCtx, s.stopStreams = context.WithCancel(context.Background())
	if cfg.RateLimit.Enabled {
		s.limDefault = newBudget(cfg.RateLimit.Default, cfg.RateLimit)
		exp := cfg.RateLimit.Expensive
		if len(exp) == 0 {
			exp = cfg.RateLimit.Default
		}
		s.limExpensive = newBudget(exp, cfg.RateLimit)
		s.rlDefault, s.rlExpensive = s.limDefault, s.limExpensive
		if cfg.RateLimit.Redis != nil {
			s.useRedis(exp)
		}
	}
	if cfg.JetDrive != nil {
		s.live = newLiveHub(cfg.JetDrive, s.log)
	}
	var random bool
	s.sessions, random = newSessions(cfg.Auth.SessionSecret, cfg.Auth.SessionTTL, cfg.Now)
	if random && cfg.Auth.Enabled {
		s.log.Warn("no session secret configured: browser sessions are signed with a random secret of this process, " +
			"so they end when it exits and work on this replica only (set Config.Auth.SessionSecret)")
	}
	s.keys = sessionKeys{inner: cfg.Auth.Keys, ss: s.sessions}
	doc, err := openAPIFor(cfg.BasePath)
	if err != nil {
		return nil, err
	}
	s.openAPI = doc
	s.routes = s.routeTable()
	authOpts := authkeys.Options{
		Disabled:   !cfg.Auth.Enabled,
		RequestID:  RequestID,
		RemoteIP:   func(r *http.Request) string { return clientIP(r, s.cfg.TrustedProxies).String() },
		Logger:     s.log,
		WriteError: writeAuthError,
	}
	for _, rt := range s.routes {
		var h http.Handler = s.core(rt)
		if rt.access != accessPublic {
			need, scope := rt.access.needs(cfg.Auth)
			o := authOpts
			o.Require = func(*http.Request) bool { return need }
			if need {
				o.Scope = scope
			}
			h = authkeys.Middleware(s.keys, o)(h)
			if cfg.Auth.Enabled {
				h = withSessionCookie(h)
			}
		}
		h = s.rateLimit(rt, h)
		s.mux.Handle(rt.pattern(), s.named(rt, h))
	}
	if !cfg.DisableUI {
		s.ui = webui.Handler()
		for _, p := range []string{"GET /{$}", "GET /ui/"} {
			s.mux.Handle(p, s.named(&route{method: "GET", path: strings.TrimPrefix(p, "GET ")}, s.ui))
		}
	}
	var h http.Handler = http.HandlerFunc(s.dispatch)
	h = cfg.Metrics.HTTPMiddleware(routeFromHolder)(h)
	s.handler = s.requestID(s.recoverer(s.mount(h)))
	return s, nil
}

// Handler returns the server's root handler, for http.Server or httptest.
// With Config.BasePath it serves paths under BasePath only: mount it there
// without stripping the prefix, for example
//
//	mux.Handle("/dyno/", srv.Handler())
func (s *Server) Handler() http.Handler { return s.handler }

// link returns the path a client uses for an API path of the route table.
func (s *Server) link(p string) string { return s.cfg.BasePath + p }

// mount serves the requests under BasePath with the prefix removed, so
// that the route table stays the same wherever the server is mounted; the
// prefix itself redirects to the UI's trailing slash and any other path is
// the envelope's 404.
func (s *Server) mount(next http.Handler) http.Handler {
	base := s.cfg.BasePath
	if base == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == base && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			http.Redirect(w, r, base+"/", http.StatusMovedPermanently)
		case strings.HasPrefix(p, base+"/"):
			r2 := r.Clone(r.Context())
			r2.URL.Path = p[len(base):]
			if r.URL.RawPath != "" && strings.HasPrefix(r.URL.RawPath, base+"/") {
				r2.URL.RawPath = r.URL.RawPath[len(base):]
			} else {
				r2.URL.RawPath = ""
			}
			next.ServeHTTP(w, r2)
		default:
			writeEnvelope(w, r, http.StatusNotFound, CodeNotFound, "Resource not found: this server is mounted under "+base+"/", nil)
		}
	})
}

// openAPIFor returns the API document with its server at base ("/" for
// the root): a relative server URL, so the document is right on any host.
func openAPIFor(base string) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		return nil, fmt.Errorf("httpapi: embedded openapi.json: %w", err)
	}
	srv, _ := json.Marshal([]map[string]string{{"url": cmp.Or(base, "/"), "description": "this server"}})
	doc["servers"] = srv
	return json.MarshalIndent(doc, "", "  ")
}

// Start makes the server ready to run analyses: it starts the analysis
// workers, which take jobs from the run store's queue (see JobQueue in
// package runstore) and, when JetDrive is configured, the live-data hub.
// It touches no run: analyses a previous process left unfinished are
// queued jobs whose leases expire, and workers of any replica take them
// again then; analyses other replicas are running are theirs.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("httpapi: Start called twice")
	}
	if s.draining {
		return errors.New("httpapi: Start after Shutdown")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.started = true
	for n := range s.cfg.Workers {
		s.workers.Add(1)
		go s.worker(n + 1)
	}
	if s.live != nil {
		s.live.start(s.workCtx)
	}
	if s.cfg.SweepInterval > 0 {
		s.workers.Add(1)
		go s.sweeper()
	}
	s.log.Info("analysis workers started", "replica", s.cfg.Replica, "workers", s.cfg.Workers,
		"lease", s.cfg.JobLease, "heartbeat", s.cfg.JobHeartbeat)
	return nil
}

// sweeper removes unreferenced file contents now and then every
// SweepInterval until shutdown.
func (s *Server) sweeper() {
	defer s.workers.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-s.workCtx.Done():
			return
		case <-s.drained:
			return
		case <-t.C:
		}
		st, err := runstore.SweepFiles(s.workCtx, s.cfg.Runs, s.cfg.Files, s.cfg.Now())
		switch {
		case err != nil && s.workCtx.Err() == nil:
			s.log.Warn("sweeping unreferenced file contents failed", "err", err)
		case st.Removed > 0 || st.TempRemoved > 0:
			s.log.Info("swept unreferenced file contents", "removed", st.Removed, "bytes", st.Bytes,
				"temp_removed", st.TempRemoved, "temp_bytes", st.TempBytes)
		}
		t.Reset(s.cfg.SweepInterval)
	}
}

// Shutdown stops accepting analyses and claiming jobs, and waits for the
// running analyses to finish. When ctx ends first, it cancels them: each
// is given back to the queue whole (runstore's ReleaseJob; no attempt is
// used up), for this server after a restart or another replica, and
// Shutdown returns ctx's error once all are.
// The live hub stops too. Shutdown does not close the stores.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.draining {
		s.draining = true
		close(s.drained)
	}
	s.mu.Unlock()
	s.stopStreams()
	done := make(chan struct{})
	go func() { s.workers.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.stopWork()
		<-done
	}
	s.stopWork()
	if s.live != nil {
		s.live.wait()
	}
	return err
}

// Serve starts the server (see Start) and serves HTTP on ln until ctx ends,
// then shuts down gracefully: no new connections, in-flight requests and
// analyses get shutdownTimeout to finish, after which analyses are failed.
func (s *Server) Serve(ctx context.Context, ln net.Listener, shutdownTimeout time.Duration) error {
	if err := s.Start(ctx); err != nil {
		ln.Close()
		return err
	}
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    max(1<<20, s.cfg.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	s.stopStreams()
	herr := hs.Shutdown(sctx)
	if errors.Is(herr, context.DeadlineExceeded) {
		hs.Close()
	}
	werr := s.Shutdown(sctx)
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return errors.Join(serveErr, herr, werr)
}

// holder carries the matched route pattern out to the metrics middleware.
type holderKey struct{}

type routeHolder struct{ pattern string }

func routeFromHolder(r *http.Request) string {
	if h, ok := r.Context().Value(holderKey{}).(*routeHolder); ok {
		return h.pattern
	}
	return ""
}

// named records the route's pattern for the metrics middleware.
func (s *Server) named(rt *route, next http.Handler) http.Handler {
	p := rt.pattern()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := r.Context().Value(holderKey{}).(*routeHolder); ok {
			h.pattern = p
		}
		next.ServeHTTP(w, r)
	})
}

// dispatch rejects unclean paths, answers CORS, and sends requests no
// route matches to the envelope's 404 or 405.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	if msg := badPath(r.URL.Path); msg != "" {
		writeEnvelope(w, r, http.StatusBadRequest, CodeBadRequest, msg, nil)
		return
	}
	if s.cors(w, r) {
		return
	}
	if _, p := s.mux.Handler(r); p == "" {
		s.unmatched(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// badPath explains why a request path is refused before routing: anything
// a cleaner would rewrite (dot segments, doubled slashes), backslashes and
// control characters. Refusing beats redirecting a traversal attempt.
func badPath(p string) string {
	if p == "" || p[0] != '/' {
		return "path must start with /"
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return "path contains a control character or backslash"
		}
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && p != "/" {
		clean += "/"
	}
	if clean != p {
		return "path is not canonical (dot segments or repeated slashes)"
	}
	return ""
}

// unmatched answers a request no route pattern matched: 405 with Allow when
// the path exists for other methods, else 404.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request) {
	h, _ := s.mux.Handler(r)
	cw := &captureWriter{header: http.Header{}}
	h.ServeHTTP(cw, r)
	if cw.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", cw.header.Get("Allow"))
		writeEnvelope(w, r, http.StatusMethodNotAllowed, CodeMethodNotAllowed,
			"Method "+r.Method+" not allowed for this path", map[string]any{"allow": cw.header.Get("Allow")})
		return
	}
	writeEnvelope(w, r, http.StatusNotFound, CodeNotFound, "Resource not found", nil)
}

type captureWriter struct {
	header http.Header
	status int
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return len(b), nil
}
func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}

// core wraps a route's handler with its body limit, timeout and error
// answering.
func (s *Server) core(rt *route) http.Handler {
	limit := s.cfg.MaxBodyBytes
	if rt.upload {
		limit = s.cfg.MaxUploadBytes
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			writeEnvelope(w, r, http.StatusRequestEntityTooLarge, CodeTooLarge,
				"request body exceeds the limit", map[string]any{"limit_bytes": limit})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		// Bound how long a client may take to send a body (a slow upload
		// must not pin a connection forever). Uploads are held to a minimum
		// rate by their handlers (uploadBody); other routes whose work is
		// bounded by the same time get a read deadline (one that passed
		// later would cancel a stream). Recorders in tests do not support
		// deadlines.
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !rt.upload && !rt.long {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.RequestTimeout))
		}
		if !rt.long {
			ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		if err := rt.h(w, r); err != nil {
			if errors.Is(err, context.DeadlineExceeded) && r.Context().Err() != nil {
				err = &Error{Status: http.StatusServiceUnavailable, Code: CodeTimeout, Message: "request timed out", Err: err}
			}
			s.fail(w, r, err)
		}
	})
}

// routeTable lists every route. The OpenAPI document must match it.
func (s *Server) routeTable() []*route {
	rs := []*route{
		{method: "GET", path: "/api/health", h: s.handleHealth, access: accessRead, unlimited: true},
		{method: "GET", path: "/api/health/live", h: s.handleLive, access: accessPublic, unlimited: true},
		{method: "GET", path: "/api/health/ready", h: s.handleReady, access: accessPublic, unlimited: true},
		{method: "GET", path: "/api/openapi.json", h: s.handleOpenAPI, access: accessPublic},
		{method: "GET", path: "/api/session", h: s.handleSessionGet, access: accessPublic},
		{method: "POST", path: "/api/session", h: s.handleSessionCreate, access: accessPublic},
		{method: "DELETE", path: "/api/session", h: s.handleSessionDelete, access: accessPublic},

		{method: "POST", path: "/api/analyze", h: s.handleAnalyze, access: accessAnalyze, expensive: true, upload: true, long: true},
		{method: "GET", path: "/api/status/{id}", h: s.handleStatus, access: accessRead},
		{method: "GET", path: "/api/runs", h: s.handleListRuns, access: accessRead},
		{method: "GET", path: "/api/runs/{id}", h: s.handleGetRun, access: accessRead},
		{method: "DELETE", path: "/api/runs/{id}", h: s.handleDeleteRun, access: accessAnalyze},
		{method: "GET", path: "/api/runs/{id}/files", h: s.handleListFiles, access: accessRead},
		{method: "GET", path: "/api/runs/{id}/files/{file}", h: s.handleFile, access: accessRead, long: true},
		{method: "GET", path: "/api/download/{id}/{name}", h: s.handleDownload, access: accessRead, long: true},
		{method: "GET", path: "/api/ve-data/{id}", h: s.handleVEData, access: accessRead},
		{method: "GET", path: "/api/diagnostics/{id}", h: s.handleDiagnostics, access: accessRead},

		{method: "POST", path: "/api/runs/{id}/tables", h: s.handleUploadTable, access: accessApply, expensive: true, upload: true},
		{method: "POST", path: "/api/runs/{id}/apply", h: s.handleApply, access: accessApply},
		{method: "POST", path: "/api/runs/{id}/dry-run", h: s.handleDryRun, access: accessApply},
		{method: "POST", path: "/api/runs/{id}/rollback", h: s.handleRollback, access: accessApply},
		{method: "POST", path: "/api/apply", h: s.handleLegacyApply, access: accessApply},
		{method: "POST", path: "/api/rollback", h: s.handleLegacyRollback, access: accessApply},

		{method: "GET", path: "/api/jetdrive/providers", h: s.handleJDProviders, access: accessRead},
		{method: "GET", path: "/api/jetdrive/channels", h: s.handleJDChannels, access: accessRead},
		{method: "GET", path: "/api/jetdrive/live", h: s.handleJDLive, access: accessRead},
		{method: "GET", path: "/api/jetdrive/live/stream", h: s.handleJDStream, access: accessRead, long: true},
		{method: "POST", path: "/api/jetdrive/session", h: s.handleLiveStart, access: accessAnalyze},
		{method: "GET", path: "/api/jetdrive/session", h: s.handleLiveGet, access: accessRead},
		{method: "GET", path: "/api/jetdrive/session/stream", h: s.handleLiveStream, access: accessRead, long: true},
		{method: "POST", path: "/api/jetdrive/session/stop", h: s.handleLiveStop, access: accessAnalyze, long: true},
		{method: "POST", path: "/api/jetdrive/session/save", h: s.handleLiveSave, access: accessAnalyze, expensive: true},

		{method: "GET", path: "/api/jetstream/status", h: s.handleJSStatus, access: accessRead},
		{method: "GET", path: "/api/jetstream/config", h: s.handleJSConfig, access: accessRead},
		{method: "POST", path: "/api/jetstream/sync", h: s.handleJSSync, access: accessAnalyze, expensive: true, long: true},
		{method: "GET", path: "/api/jetstream/events", h: s.handleJSEvents, access: accessRead, long: true},
	}
	if s.cfg.Gatherer != nil {
		ph := promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{})
		rs = append(rs, &route{method: "GET", path: "/metrics", access: accessMetrics, unlimited: true,
			h: func(w http.ResponseWriter, r *http.Request) error { ph.ServeHTTP(w, r); return nil }})
	}
	return rs
}

// keyedMutex serialises work per run id (apply and rollback).
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*refMutex
}

type refMutex struct {
	sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = make(map[string]*refMutex)
	}
	m := k.locks[key]
	if m == nil {
		m = &refMutex{}
		k.locks[key] = m
	}
	m.refs++
	k.mu.Unlock()
	m.Lock()
	return func() {
		m.Unlock()
		k.mu.Lock()
		if m.refs--; m.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
