package httpapi

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/dynoai/dynoai/authkeys"
	"github.com/dynoai/dynoai/jetstream"
	"github.com/dynoai/dynoai/metrics"
	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/ve"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Defaults of the zero Config fields.
const (
	DefaultMaxUploadBytes  = 50 << 20
	DefaultMaxBodyBytes    = 1 << 20
	DefaultRequestTimeout  = 30 * time.Second
	DefaultAnalysisTimeout = 10 * time.Minute
	DefaultQueue           = 16
	DefaultJobLease        = 30 * time.Second
	DefaultMaxStreams      = 64
	DefaultSessionTTL      = 8 * time.Hour
)

// Config configures a Server. Runs and Files are required; every other zero
// field has a working default: no authentication, no rate limits, no CORS,
// no metrics, no live data.
type Config struct {
	// Runs keeps runs; Files keeps their contents. Required.
	Runs  runstore.RunStore
	Files runstore.FileStore
	// NewAnalyzer makes the analyzer for one analysis from its validated
	// options; nil means ve.New.
	NewAnalyzer func(ve.Options) (ve.Analyzer, error)

	Auth      AuthConfig
	RateLimit RateLimitConfig
	CORS      CORSConfig
	// TrustedProxies are the networks whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix

	// Metrics records business and HTTP metrics; nil records nothing.
	Metrics *metrics.Metrics
	// Gatherer, when set, is served at GET /metrics.
	Gatherer prometheus.Gatherer

	// MaxUploadBytes bounds an upload's request body; 0 means 50 MiB.
	MaxUploadBytes int64
	// MaxBodyBytes bounds a JSON request body; 0 means 1 MiB.
	MaxBodyBytes int64
	// MaxHeaderBytes bounds a request's header block (header lines and the
	// request target) and MaxURIBytes its request target: larger requests
	// are answered 431 HEADERS_TOO_LARGE or 414 URI_TOO_LONG in the error
	// envelope. 0 means 64 KiB and 8 KiB. Serve's http.Server refuses
	// header blocks over 1 MiB (or MaxHeaderBytes, if larger) itself, in
	// plain text, before any handler runs.
	MaxHeaderBytes, MaxURIBytes int
	// MinUploadRate is the slowest an upload body may arrive, in bytes per
	// second, once UploadGrace has passed: a slower client is answered 408
	// UPLOAD_TOO_SLOW and cut off. 0 means 1024; negative means no minimum
	// (uploads still end after 10 minutes).
	MinUploadRate int64
	// UploadGrace is how long an upload may take before MinUploadRate
	// counts; 0 means 10 s.
	UploadGrace time.Duration
	// RequestTimeout bounds a non-streaming request's handler; 0 means 30 s.
	RequestTimeout time.Duration
	// AnalysisTimeout bounds one analysis; 0 means 10 min.
	AnalysisTimeout time.Duration
	// Workers is how many analyses run at once; 0 means 2.
	Workers int
	// Queue is how many accepted analyses may wait for a worker, counted
	// over every replica sharing Runs; 0 means 16. A full queue answers
	// uploads 503 with Retry-After.
	Queue int
	// Replica names this server among the replicas sharing Runs, in
	// leases, logs and metrics; "" means the host name and process id.
	Replica string
	// JobLease is how long a worker's hold on an analysis lasts without a
	// renewal: when a replica dies or stalls this long, another worker
	// takes its analysis again. 0 means 30 s.
	JobLease time.Duration
	// JobHeartbeat is how often a running analysis renews its lease; 0
	// means a third of JobLease. It must be at most half of JobLease, so
	// that one late or failed renewal does not lose the lease.
	JobHeartbeat time.Duration
	// JobPoll is how often an idle worker looks for analyses queued by
	// other replicas (an upload to this replica wakes a worker at once);
	// 0 means 1 s.
	JobPoll time.Duration
	// JobMaxAttempts bounds the attempts of one analysis (a replica dying
	// during it, a storage error); 0 means runstore.DefaultMaxAttempts.
	JobMaxAttempts int
	// MaxStreams bounds concurrent Server-Sent Events streams; 0 means 64.
	MaxStreams int
	// SweepInterval is how often file contents no run refers to any more
	// (refused uploads, deleted runs, leftovers of a crash) are removed
	// from Files, once they are runstore.MinUnreferencedAge old; 0 means
	// every hour, negative never.
	SweepInterval time.Duration

	// JetDrive serves the live JetDrive routes when set.
	JetDrive JetDrive
	// Jetstream serves the Jetstream routes when set, with JetstreamConfig
	// (shown with its key masked).
	Jetstream       Jetstream
	JetstreamConfig jetstream.Config

	// BasePath mounts the server under a path prefix, such as "/dyno":
	// every route, the web UI, and every link the server returns
	// (Location headers, links objects, file URLs, the OpenAPI document's
	// server) start with it, and requests outside it are answered 404.
	// Give the handler the whole request path (mount it at BasePath+"/"
	// without http.StripPrefix). "" or "/" means the root.
	BasePath string
	// DisableUI stops serving the web UI (package webui) at BasePath+"/".
	DisableUI bool

	// Logger receives request failures and lifecycle events; nil discards.
	Logger *slog.Logger
	// Version is reported by the health routes.
	Version string
	// Debug adds internal error detail to the log, never to responses.
	Debug bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// AuthConfig says who may call which route and see which runs.
//
// With authentication enabled, every route but liveness, readiness and the
// API document needs a valid key with the route's scope: read for reads
// (runs, files, results, health details, live data, Jetstream status),
// analyze for uploads of logs, Jetstream syncs and deleting runs, apply for
// base tables, apply and rollback, and admin for /metrics. A key sees only
// the runs of its tenant (the default tenant's key also sees runs made
// without a key); an admin key sees every run. Without authentication
// every route is open and every run visible.
type AuthConfig struct {
	// Enabled enforces keys as described above.
	Enabled bool
	// Keys verifies presented keys. Enabled with no keys fails closed.
	Keys authkeys.KeyStore
	// OpenReads serves the read routes without a key. A reader without a
	// key sees the default tenant's runs only; a key presented on a read
	// is still checked and counts.
	OpenReads bool
	// OpenMetrics serves /metrics without a key; otherwise it needs an
	// admin key.
	OpenMetrics bool
	// DefaultTenant owns the runs made without a key (authentication off,
	// Jetstream, JetDrive captures, imports, and runs stored before
	// tenants existed): keys of this tenant, and readers without a key when
	// OpenReads, see them. Empty means "default".
	DefaultTenant string

	// SessionSecret signs the browser sessions of POST /api/session (an
	// HttpOnly, SameSite=Strict cookie a key is exchanged for once, so
	// that pages, event streams and download links never carry the key).
	// Every replica must share it; at least 32 bytes. Empty means a random
	// secret per process: sessions then end when the process does and
	// work on one replica only.
	SessionSecret []byte
	// SessionTTL is how long a session lasts; 0 means 8 hours. A session
	// is checked against Keys on every request when the store can look
	// keys up by id (authkeys.Lookup: every store of authkeys can), so a
	// revoked key's sessions end at once and follow its scopes; with a
	// store that cannot, they end at the latest when they expire.
	SessionTTL time.Duration
	// SecureCookie marks the session cookie Secure even when the request
	// did not arrive over TLS here (behind a TLS-terminating proxy).
	SecureCookie bool
}

// DefaultTenant is AuthConfig.DefaultTenant when left empty.
const DefaultTenant = "default"

// RateLimitConfig configures the token buckets, kept per verified API key
// or, without one, per client address.
type RateLimitConfig struct {
	Enabled bool
	// Default applies to every route but health and /metrics; empty means
	// unlimited.
	Default Rates
	// Expensive applies instead of Default to analyses and uploads.
	Expensive Rates
	// AnonymousTotal, when not empty, is one budget that all requests
	// without a verified key share, on top of their own buckets: a flood
	// from many addresses is capped as a whole. Keys never draw on it.
	AnonymousTotal Rates
	// MaxClients bounds the buckets kept per budget for keys and,
	// separately, for clients without one; the least recently used bucket
	// is recycled beyond it. 0 means 100000 (about 20 MiB each at most).
	MaxClients int
	// IPv4Prefix and IPv6Prefix group client addresses without a key into
	// one bucket per network: 0 means 32 (each IPv4 address) and 64 (each
	// IPv6 /64, as one customer gets a /64 or more and can use any address
	// in it).
	IPv4Prefix, IPv6Prefix int

	// Redis, when set, keeps the buckets in Redis, so that every server
	// using the same Redis and RedisPrefix enforces the limits together
	// (with the same guarantees: keys and anonymous clients apart, the
	// anonymous total, networks grouped by IPv4Prefix and IPv6Prefix).
	// Key names hold keyed digests, never a key id or an address, and
	// every key but one (the digests' salt) expires once its bucket is
	// full again. The caller owns the client. nil keeps the buckets in
	// process, per server.
	Redis redis.UniversalClient
	// RedisTimeout bounds one check in Redis; 0 means 100 ms. A client
	// with go-redis's ContextTimeoutEnabled stops the command then;
	// another is left to finish in the background.
	RedisTimeout time.Duration
	// RedisFailClosed chooses what happens while Redis does not answer a
	// check in time (or at all): false (the default) lets the in-process
	// buckets decide, so each server holds clients to the limits on its
	// own traffic; true answers 503 SERVICE_UNAVAILABLE with Retry-After
	// to every rate-limited request. Either way a line is logged at most
	// every 30 s, dynoai_rate_limit_backend_errors_total counts the
	// failures, /api/health reports the redis component degraded (open)
	// or unhealthy (closed, and then readiness fails), and after a
	// failure checks skip Redis for a second before one tries again.
	RedisFailClosed bool
	// RedisPrefix starts every key name in Redis; "" means "dynoai:rl:".
	// Servers with different prefixes keep apart budgets. Redis Cluster
	// needs one hash slot for a check's keys: use a hash tag, such as
	// "{dynoai:rl}:".
	RedisPrefix string
}

// CORSConfig lists the browser origins allowed to call the API.
type CORSConfig struct {
	// Origins are exact origins ("https://shop.example"); "*" allows any
	// origin and is refused together with authentication unless
	// AllowWildcardWithAuth.
	Origins               []string
	AllowWildcardWithAuth bool
	// MaxAge of a preflight answer; 0 means 10 minutes.
	MaxAge time.Duration
}

// ErrConfig is wrapped by every configuration error of New.
var ErrConfig = errors.New("httpapi: bad config")

func (c *Config) validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, a...)...))
	}
	if bp := c.BasePath; bp != "" && bp != "/" && (bp[0] != '/' || strings.HasSuffix(bp, "/") || badPath(bp) != "" ||
		strings.ContainsAny(bp, "?#%{}")) {
		bad("BasePath %q must be a clean path starting with / and not ending with one, such as /dyno", bp)
	}
	if n := len(c.Auth.SessionSecret); n > 0 && n < 32 {
		bad("Auth.SessionSecret is %d bytes; it needs at least 32", n)
	}
	if c.Auth.SessionTTL < 0 {
		bad("Auth.SessionTTL is negative")
	}
	if c.Runs == nil {
		bad("Runs is required")
	}
	if c.Files == nil {
		bad("Files is required")
	}
	if c.Auth.DefaultTenant != "" && !authkeys.ValidTenant(c.Auth.DefaultTenant) {
		bad("Auth.DefaultTenant %q is not a tenant name (1 to 64 of [A-Za-z0-9._:-])", c.Auth.DefaultTenant)
	}
	for name, v := range map[string]int64{"MaxUploadBytes": c.MaxUploadBytes, "MaxBodyBytes": c.MaxBodyBytes,
		"Workers": int64(c.Workers), "Queue": int64(c.Queue), "MaxStreams": int64(c.MaxStreams),
		"RequestTimeout": int64(c.RequestTimeout), "AnalysisTimeout": int64(c.AnalysisTimeout),
		"UploadGrace": int64(c.UploadGrace), "MaxHeaderBytes": int64(c.MaxHeaderBytes), "MaxURIBytes": int64(c.MaxURIBytes),
		"JobLease": int64(c.JobLease), "JobHeartbeat": int64(c.JobHeartbeat), "JobPoll": int64(c.JobPoll),
		"JobMaxAttempts": int64(c.JobMaxAttempts)} {
		if v < 0 {
			bad("%s is negative", name)
		}
	}
	if c.JobMaxAttempts > runstore.MaxMaxAttempts {
		bad("JobMaxAttempts %d is more than %d", c.JobMaxAttempts, runstore.MaxMaxAttempts)
	}
	if lease := cmp.Or(c.JobLease, DefaultJobLease); c.JobHeartbeat > lease/2 {
		bad("JobHeartbeat %v is more than half of JobLease %v: one late renewal would lose the lease", c.JobHeartbeat, lease)
	}
	if c.Replica != "" && (len(c.Replica) > 100 || strings.ContainsFunc(c.Replica, func(r rune) bool { return r <= ' ' || r == 0x7f })) {
		bad("Replica %q must be 1 to 100 bytes without spaces or control characters", c.Replica)
	}
	for i, o := range c.CORS.Origins {
		if o == "*" {
			if c.Auth.Enabled && !c.CORS.AllowWildcardWithAuth {
				bad("CORS origin \"*\" with authentication enabled (list the origins, or set AllowWildcardWithAuth)")
			}
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil || strings.HasSuffix(o, "/") {
			bad("CORS origin %d %q is not scheme://host[:port]", i+1, o)
		}
	}
	if p := c.RateLimit.IPv4Prefix; p != 0 && (p < 8 || p > 32) {
		bad("RateLimit.IPv4Prefix %d is outside 8..32", p)
	}
	if p := c.RateLimit.IPv6Prefix; p != 0 && (p < 16 || p > 128) {
		bad("RateLimit.IPv6Prefix %d is outside 16..128", p)
	}
	if c.RateLimit.RedisTimeout < 0 {
		bad("RateLimit.RedisTimeout is negative")
	}
	if p := c.RateLimit.RedisPrefix; len(p) > 64 || strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		bad("RateLimit.RedisPrefix %q is longer than 64 bytes or holds spaces or control characters", p)
	}
	if c.RateLimit.MaxClients < 0 {
		bad("RateLimit.MaxClients is negative")
	}
	for _, r := range []Rates{c.RateLimit.Default, c.RateLimit.Expensive, c.RateLimit.AnonymousTotal} {
		for _, l := range r {
			if l.N < 1 || l.Per <= 0 {
				bad("rate limit %v is not positive", l)
			} else if c.RateLimit.Redis != nil && l.Per < time.Millisecond {
				bad("rate limit %v: Redis keeps periods of 1ms or more", l)
			}
		}
	}
	return errors.Join(errs...)
}

func (c *Config) fill() {
	if c.BasePath == "/" {
		c.BasePath = ""
	}
	if c.Auth.SessionTTL == 0 {
		c.Auth.SessionTTL = DefaultSessionTTL
	}
	if c.NewAnalyzer == nil {
		c.NewAnalyzer = ve.New
	}
	if c.Auth.DefaultTenant == "" {
		c.Auth.DefaultTenant = DefaultTenant
	}
	if c.MaxUploadBytes == 0 {
		c.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = 64 << 10
	}
	if c.MaxURIBytes == 0 {
		c.MaxURIBytes = 8 << 10
	}
	if c.MinUploadRate == 0 {
		c.MinUploadRate = DefaultMinUploadRate
	}
	if c.UploadGrace == 0 {
		c.UploadGrace = DefaultUploadGrace
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.AnalysisTimeout == 0 {
		c.AnalysisTimeout = DefaultAnalysisTimeout
	}
	if c.Workers == 0 {
		c.Workers = 2
	}
	if c.Queue == 0 {
		c.Queue = DefaultQueue
	}
	if c.Replica == "" {
		c.Replica = defaultReplicaName()
	}
	if c.JobLease == 0 {
		c.JobLease = DefaultJobLease
	}
	if c.JobHeartbeat == 0 {
		c.JobHeartbeat = c.JobLease / 3
	}
	if c.JobPoll == 0 {
		c.JobPoll = time.Second
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	if c.RateLimit.IPv4Prefix == 0 {
		c.RateLimit.IPv4Prefix = 32
	}
	if c.RateLimit.IPv6Prefix == 0 {
		c.RateLimit.IPv6Prefix = 64
	}
	if c.RateLimit.RedisTimeout == 0 {
		c.RateLimit.RedisTimeout = DefaultRedisTimeout
	}
	if c.RateLimit.RedisPrefix == "" {
		c.RateLimit.RedisPrefix = DefaultRedisPrefix
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = time.Hour
	}
	if c.CORS.MaxAge == 0 {
		c.CORS.MaxAge = 10 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Version == "" {
		c.Version = ve.Version
	}
}
