package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	neturl "net/url"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dynoai/dynoai/authkeys"
	"github.com/dynoai/dynoai/httpapi"
	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/blobstore"
	"github.com/dynoai/dynoai/runstore/sqlstore"
	"github.com/redis/go-redis/v9"
)

// settings is the server's configuration, parsed once at startup.
type settings struct {
	Host            string
	Port            int
	Debug           bool
	Environment     string
	DataDir         string
	FilesDir        string
	FilesURL        string // a blob store; overrides FilesDir
	DatabaseURL     string
	MaxUploadBytes  int64
	MinUploadRate   int64
	UploadGrace     time.Duration
	CORSOrigins     []string
	TrustedProxies  []netip.Prefix
	Workers         int
	Queue           int
	Replica         string
	JobLease        time.Duration
	JobHeartbeat    time.Duration
	JobPoll         time.Duration
	JobMaxAttempts  int
	AnalysisTimeout time.Duration
	RequestTimeout  time.Duration
	ShutdownTimeout time.Duration
	OpenReads       bool
	DefaultTenant   string
	SessionSecret   []byte
	SessionTTL      time.Duration
	SecureCookie    bool
	BasePath        string
	KeysPoll        time.Duration
	MetricsOpen     bool // /metrics on the main port without a key
	MetricsProtect  bool // /metrics on PROMETHEUS_METRICS_PORT needs an admin key
	AllowOpen       bool // serve beyond loopback without authentication

	RateEnabled    bool
	RateDefault    httpapi.Rates
	RateExpensive  httpapi.Rates
	RateAnonymous  httpapi.Rates
	RateMaxClients int
	RateIPv4Prefix int
	RateIPv6Prefix int
	// RateRedis is set when RATE_LIMIT_STORAGE names a Redis server.
	RateRedis      *redis.Options
	RateFailClosed bool
	RateTimeout    time.Duration

	MetricsEnabled bool
	MetricsPort    int

	LogLevel slog.Level
	LogJSON  bool

	JetstreamEnabled     bool
	JetstreamURL         string
	JetstreamKey         string
	JetstreamInterval    time.Duration
	JetstreamAutoProcess bool

	JetDriveEnabled bool
	JetDriveGroup   netip.Addr
	JetDrivePort    int
	JetDriveIface   string
}

// knownVars are every variable the server reads, with its meaning (the
// .env.example documents the same list; a test keeps them in step).
var knownVars = map[string]string{
	"DYNOAI_HOST":                  "bind address (default 127.0.0.1)",
	"DYNOAI_PORT":                  "listen port (default 5001)",
	"DYNOAI_DEBUG":                 "debug logging with stacks (never in responses)",
	"DYNOAI_ENV":                   "environment label for metrics (default development)",
	"DYNOAI_DATA_DIR":              "data directory (default ./data)",
	"DYNOAI_FILES_DIR":             "file contents directory (default <data>/files)",
	"DYNOAI_FILES_URL":             "file contents in a blob store shared by replicas: s3://bucket?region=..., file:///dir or mem://; overrides DYNOAI_FILES_DIR",
	"DYNOAI_MAX_UPLOAD_MB":         "upload limit in MiB (default 50)",
	"DYNOAI_CORS_ORIGINS":          "comma-separated allowed origins",
	"DYNOAI_TRUSTED_PROXIES":       "comma-separated proxy networks whose X-Forwarded-For is believed",
	"DYNOAI_WORKERS":               "concurrent analyses (default 2)",
	"DYNOAI_QUEUE":                 "analyses waiting for a worker, over all replicas sharing the database (default 16)",
	"DYNOAI_REPLICA_ID":            "this replica's name in leases, logs and health (default: host name and process id)",
	"DYNOAI_JOB_LEASE":             "how long an analysis stays with a replica that stopped renewing it before another takes it (default 30s)",
	"DYNOAI_JOB_HEARTBEAT":         "how often a running analysis renews its lease, at most half the lease (default: a third of it)",
	"DYNOAI_JOB_POLL":              "how often idle workers look for analyses queued on other replicas (default 1s)",
	"DYNOAI_JOB_MAX_ATTEMPTS":      "attempts of one analysis before its run fails (a replica dying during it, a storage error) (default 3)",
	"DYNOAI_ANALYSIS_TIMEOUT":      "per-analysis limit, Go duration (default 10m)",
	"DYNOAI_REQUEST_TIMEOUT":       "per-request limit, Go duration (default 30s)",
	"DYNOAI_SHUTDOWN_TIMEOUT":      "grace period on shutdown (default 30s)",
	"DYNOAI_AUTH_READS":            "deprecated: reads need a key by default; only true is accepted (see DYNOAI_OPEN_READS)",
	"DYNOAI_OPEN_READS":            "serve reads without a key (readers without one see the default tenant's runs)",
	"DYNOAI_DEFAULT_TENANT":        "tenant owning runs made without a key (default: default)",
	"DYNOAI_SESSION_SECRET":        "secret signing the web UI's session cookies, at least 32 bytes, the same on every replica (default: random per process, sessions end with it)",
	"DYNOAI_SESSION_TTL":           "how long a web UI session lasts, Go duration (default 8h)",
	"DYNOAI_SECURE_COOKIE":         "mark the session cookie Secure (behind a TLS-terminating proxy)",
	"DYNOAI_BASE_PATH":             "serve the API and the web UI under this path prefix, such as /dyno (default: the root)",
	"API_KEYS_FILE_POLL_INTERVAL":  "how often the keys file is checked, and how long it may be missing before its keys are revoked (default 2s)",
	"DYNOAI_ALLOW_UNAUTHENTICATED": "allow a non-loopback bind with authentication off",
	"DATABASE_URL":                 "sqlite:path, sqlite:////absolute/path or postgres://user:pass@host:5432/db; the scheme is required (default sqlite in the data dir)",
	"MAX_CONTENT_LENGTH":           "upload limit in bytes (overrides DYNOAI_MAX_UPLOAD_MB)",
	"DYNOAI_MIN_UPLOAD_RATE":       "slowest accepted upload, bytes/s after the grace period; 0: no minimum (default 1024)",
	"DYNOAI_UPLOAD_GRACE":          "time an upload may take before the minimum rate counts (default 10s)",
	"API_AUTH_ENABLED":             "require API keys (every route but liveness, readiness and the API document)",
	"API_KEYS":                     "comma-separated entries: <key> [tenant=<t>] [scopes=read+analyze+apply+admin]",
	"API_KEYS_FILE":                "file of API keys, one entry per line, hot-reloaded (see examples/keygen)",
	"RATE_LIMIT_ENABLED":           "enable rate limits (default true)",
	"RATE_LIMIT_DEFAULT":           "default limit (default 600/minute)",
	"RATE_LIMIT_EXPENSIVE":         "limit for analyses and uploads (default 5/minute;20/hour)",
	"RATE_LIMIT_STORAGE":           "memory:// (per process, default) or redis://[user:pass@]host:port/db, rediss://... (TLS), unix:///path.sock: limits shared by every server on that Redis",
	"RATE_LIMIT_REDIS_FAILURE":     "when Redis does not answer in time: open (default; each server applies the limits alone) or closed (rate-limited requests answer 503)",
	"RATE_LIMIT_REDIS_TIMEOUT":     "how long one check may wait for Redis, Go duration in 1ms..10s (default 100ms)",
	"RATE_LIMIT_ANONYMOUS_TOTAL":   "one budget all requests without a valid key share (default: none)",
	"RATE_LIMIT_MAX_CLIENTS":       "buckets kept per budget, for keys and for addresses each; least recently used recycled (default 100000)",
	"RATE_LIMIT_IPV4_PREFIX":       "IPv4 addresses grouped per network of this many bits (default 32)",
	"RATE_LIMIT_IPV6_PREFIX":       "IPv6 addresses grouped per network of this many bits (default 64)",
	"PROMETHEUS_METRICS_ENABLED":   "record metrics and serve /metrics",
	"PROMETHEUS_METRICS_PORT":      "serve /metrics on this port instead of the main one",
	"PROMETHEUS_METRICS_OPEN":      "serve /metrics on the main port without a key (default: an admin key)",
	"PROMETHEUS_METRICS_PROTECT":   "require an admin key on PROMETHEUS_METRICS_PORT too",
	"LOG_LEVEL":                    "debug, info, warn or error (default info)",
	"LOG_FORMAT":                   "json (production) or text (development)",
	"JETSTREAM_ENABLED":            "poll Jetstream",
	"JETSTREAM_API_URL":            "Jetstream API root",
	"JETSTREAM_API_KEY":            "Jetstream key (shown masked)",
	"JETSTREAM_POLL_INTERVAL":      "seconds between polls (default 30)",
	"JETSTREAM_AUTO_PROCESS":       "analyze new runs (default true)",
	"JETSTREAM_STUB_MODE":          "predecessor's canned data: refused unless false",
	"JETDRIVE_ENABLED":             "listen to JetDrive live data",
	"JETDRIVE_MCAST_GROUP":         "multicast group (default 224.0.2.10)",
	"JETDRIVE_PORT":                "UDP port (default 22344)",
	"JETDRIVE_IFACE":               "interface name or address (default: default route)",
}

// strictPrefixes: a variable with one of these prefixes that the server
// does not know is a startup error (a typo must not silently mean a default).
var strictPrefixes = []string{"DYNOAI_", "API_AUTH", "API_KEYS", "RATE_LIMIT_", "PROMETHEUS_", "JETSTREAM_", "JETDRIVE_"}

// loadSettings parses the environment (lookup) strictly: unknown variables
// with the server's prefixes and malformed values are errors, all reported
// together.
func loadSettings(environ []string, lookup func(string) (string, bool)) (settings, error) {
	var errs []error
	bad := func(name, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, a...)))
	}
	var unknown []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := knownVars[k]; ok {
			continue
		}
		for _, p := range strictPrefixes {
			if strings.HasPrefix(k, p) {
				unknown = append(unknown, k)
				break
			}
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		bad(k, "unknown variable (see .env.example)")
	}
	get := func(k string) (string, bool) {
		v, ok := lookup(k)
		v = strings.TrimSpace(v)
		return v, ok && v != ""
	}
	str := func(k, def string) string {
		if v, ok := get(k); ok {
			return v
		}
		return def
	}
	boolean := func(k string, def bool) bool {
		v, ok := get(k)
		if !ok {
			return def
		}
		b, err := authkeys.ParseBool(v)
		if err != nil {
			bad(k, "%q: %v", v, err)
		}
		return b
	}
	integer := func(k string, def, lo, hi int) int {
		v, ok := get(k)
		if !ok {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			bad(k, "%q is not an integer in %d..%d", v, lo, hi)
		}
		return n
	}
	duration := func(k string, def time.Duration) time.Duration {
		v, ok := get(k)
		if !ok {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			bad(k, "%q is not a positive Go duration (e.g. 30s, 10m)", v)
		}
		return d
	}
	rates := func(k, def string) httpapi.Rates {
		r, err := httpapi.ParseRates(str(k, def))
		if err != nil {
			bad(k, "%v", err)
		}
		return r
	}
	list := func(k string) []string {
		v, ok := get(k)
		if !ok {
			return nil
		}
		var out []string
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}

	var s settings
	s.Host = str("DYNOAI_HOST", "127.0.0.1")
	if a, err := netip.ParseAddr(s.Host); err != nil && s.Host != "localhost" {
		bad("DYNOAI_HOST", "%q is not an IP address", s.Host)
	} else if err == nil && a.Zone() != "" {
		bad("DYNOAI_HOST", "%q: zones are not supported", s.Host)
	}
	s.Port = integer("DYNOAI_PORT", 5001, 0, 65535)
	s.Debug = boolean("DYNOAI_DEBUG", false)
	s.Environment = str("DYNOAI_ENV", "development")
	s.DataDir = str("DYNOAI_DATA_DIR", "data")
	s.FilesDir = str("DYNOAI_FILES_DIR", filepath.Join(s.DataDir, "files"))
	s.FilesURL = str("DYNOAI_FILES_URL", "")
	if s.FilesURL != "" {
		if err := blobstore.CheckURL(s.FilesURL); err != nil {
			bad("DYNOAI_FILES_URL", "%v", err) // the URL itself is not repeated
		}
	}
	s.DatabaseURL = str("DATABASE_URL", "sqlite:"+filepath.Join(s.DataDir, "dynoai.db"))
	if _, _, err := sqlstore.ParseURL(s.DatabaseURL); err != nil {
		bad("DATABASE_URL", "%v", err) // the URL appears only redacted
	}
	s.MaxUploadBytes = int64(integer("DYNOAI_MAX_UPLOAD_MB", 50, 1, 4096)) << 20
	if _, ok := get("MAX_CONTENT_LENGTH"); ok {
		s.MaxUploadBytes = int64(integer("MAX_CONTENT_LENGTH", 0, 1024, 4<<30))
	}
	s.MinUploadRate = int64(integer("DYNOAI_MIN_UPLOAD_RATE", httpapi.DefaultMinUploadRate, 0, 1<<30))
	if s.MinUploadRate == 0 {
		s.MinUploadRate = -1 // no minimum
	}
	s.UploadGrace = duration("DYNOAI_UPLOAD_GRACE", httpapi.DefaultUploadGrace)
	s.CORSOrigins = list("DYNOAI_CORS_ORIGINS")
	for _, p := range list("DYNOAI_TRUSTED_PROXIES") {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			a, aerr := netip.ParseAddr(p)
			if aerr != nil {
				bad("DYNOAI_TRUSTED_PROXIES", "%q is neither a network (10.0.0.0/8) nor an address", p)
				continue
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		s.TrustedProxies = append(s.TrustedProxies, pfx.Masked())
	}
	s.Workers = integer("DYNOAI_WORKERS", 2, 1, 64)
	s.Queue = integer("DYNOAI_QUEUE", 16, 1, 10000)
	s.Replica = str("DYNOAI_REPLICA_ID", "")
	if strings.ContainsFunc(s.Replica, func(r rune) bool { return r <= ' ' || r == 0x7f }) || len(s.Replica) > 100 {
		bad("DYNOAI_REPLICA_ID", "%q: want at most 100 bytes without spaces or control characters", s.Replica)
	}
	s.JobLease = duration("DYNOAI_JOB_LEASE", httpapi.DefaultJobLease)
	s.JobHeartbeat = duration("DYNOAI_JOB_HEARTBEAT", s.JobLease/3)
	if s.JobHeartbeat > s.JobLease/2 {
		bad("DYNOAI_JOB_HEARTBEAT", "%v is more than half of DYNOAI_JOB_LEASE %v: one late renewal would lose the lease", s.JobHeartbeat, s.JobLease)
	}
	s.JobPoll = duration("DYNOAI_JOB_POLL", time.Second)
	s.JobMaxAttempts = integer("DYNOAI_JOB_MAX_ATTEMPTS", runstore.DefaultMaxAttempts, 1, runstore.MaxMaxAttempts)
	s.AnalysisTimeout = duration("DYNOAI_ANALYSIS_TIMEOUT", 10*time.Minute)
	s.RequestTimeout = duration("DYNOAI_REQUEST_TIMEOUT", 30*time.Second)
	s.ShutdownTimeout = duration("DYNOAI_SHUTDOWN_TIMEOUT", 30*time.Second)
	if !boolean("DYNOAI_AUTH_READS", true) {
		bad("DYNOAI_AUTH_READS", "reads need a key by default now; set DYNOAI_OPEN_READS=true to serve them without one")
	}
	s.OpenReads = boolean("DYNOAI_OPEN_READS", false)
	s.DefaultTenant = str("DYNOAI_DEFAULT_TENANT", httpapi.DefaultTenant)
	if !authkeys.ValidTenant(s.DefaultTenant) {
		bad("DYNOAI_DEFAULT_TENANT", "%q: want 1 to 64 of [A-Za-z0-9._:-], starting with a letter or digit", s.DefaultTenant)
	}
	if v := str("DYNOAI_SESSION_SECRET", ""); v != "" {
		if len(v) < 32 {
			bad("DYNOAI_SESSION_SECRET", "is %d bytes; it needs at least 32 (make one with: openssl rand -hex 32)", len(v))
		}
		s.SessionSecret = []byte(v)
	}
	s.SessionTTL = duration("DYNOAI_SESSION_TTL", httpapi.DefaultSessionTTL)
	s.SecureCookie = boolean("DYNOAI_SECURE_COOKIE", false)
	s.BasePath = str("DYNOAI_BASE_PATH", "")
	if bp := s.BasePath; bp != "" && bp != "/" && (bp[0] != '/' || strings.HasSuffix(bp, "/") || path.Clean(bp) != bp) {
		bad("DYNOAI_BASE_PATH", "%q: want a clean path starting with / and not ending with one, such as /dyno", bp)
	}
	s.KeysPoll = duration("API_KEYS_FILE_POLL_INTERVAL", authkeys.DefaultPollInterval)
	s.AllowOpen = boolean("DYNOAI_ALLOW_UNAUTHENTICATED", false)

	s.RateEnabled = boolean("RATE_LIMIT_ENABLED", true)
	s.RateDefault = rates("RATE_LIMIT_DEFAULT", "600/minute")
	s.RateExpensive = rates("RATE_LIMIT_EXPENSIVE", "5/minute;20/hour")
	s.RateAnonymous = rates("RATE_LIMIT_ANONYMOUS_TOTAL", "")
	s.RateMaxClients = integer("RATE_LIMIT_MAX_CLIENTS", httpapi.DefaultMaxClients, 32, 10_000_000)
	s.RateIPv4Prefix = integer("RATE_LIMIT_IPV4_PREFIX", 32, 8, 32)
	s.RateIPv6Prefix = integer("RATE_LIMIT_IPV6_PREFIX", 64, 16, 128)
	s.RateRedis = rateStorage(str("RATE_LIMIT_STORAGE", "memory://"), func(format string, a ...any) { bad("RATE_LIMIT_STORAGE", format, a...) })
	switch v := strings.ToLower(str("RATE_LIMIT_REDIS_FAILURE", "open")); v {
	case "open":
	case "closed":
		s.RateFailClosed = true
		if s.RateRedis == nil {
			bad("RATE_LIMIT_REDIS_FAILURE", "closed needs RATE_LIMIT_STORAGE=redis://...")
		}
	default:
		bad("RATE_LIMIT_REDIS_FAILURE", "%q is not open or closed", v)
	}
	s.RateTimeout = duration("RATE_LIMIT_REDIS_TIMEOUT", httpapi.DefaultRedisTimeout)
	if s.RateTimeout < time.Millisecond || s.RateTimeout > 10*time.Second {
		bad("RATE_LIMIT_REDIS_TIMEOUT", "%v is outside 1ms..10s", s.RateTimeout)
	}

	s.MetricsEnabled = boolean("PROMETHEUS_METRICS_ENABLED", false)
	s.MetricsPort = integer("PROMETHEUS_METRICS_PORT", 0, 0, 65535)
	s.MetricsProtect = boolean("PROMETHEUS_METRICS_PROTECT", false)
	s.MetricsOpen = boolean("PROMETHEUS_METRICS_OPEN", false)
	if !s.MetricsEnabled && (s.MetricsPort != 0 || s.MetricsProtect || s.MetricsOpen) {
		bad("PROMETHEUS_METRICS_PORT", "metrics settings need PROMETHEUS_METRICS_ENABLED=true")
	}
	if s.MetricsPort != 0 && s.MetricsPort == s.Port {
		bad("PROMETHEUS_METRICS_PORT", "is the main port; use 0 to serve /metrics there")
	}

	switch strings.ToLower(str("LOG_LEVEL", "info")) {
	case "debug":
		s.LogLevel = slog.LevelDebug
	case "info":
		s.LogLevel = slog.LevelInfo
	case "warn", "warning":
		s.LogLevel = slog.LevelWarn
	case "error":
		s.LogLevel = slog.LevelError
	default:
		bad("LOG_LEVEL", "%q is not debug, info, warn or error", str("LOG_LEVEL", ""))
	}
	switch strings.ToLower(str("LOG_FORMAT", "text")) {
	case "json", "production":
		s.LogJSON = true
	case "text", "development":
	default:
		bad("LOG_FORMAT", "%q is not json or text", str("LOG_FORMAT", ""))
	}

	s.JetstreamEnabled = boolean("JETSTREAM_ENABLED", false)
	s.JetstreamURL = str("JETSTREAM_API_URL", "")
	s.JetstreamKey = str("JETSTREAM_API_KEY", "")
	s.JetstreamInterval = time.Duration(integer("JETSTREAM_POLL_INTERVAL", 30, 5, 86400)) * time.Second
	s.JetstreamAutoProcess = boolean("JETSTREAM_AUTO_PROCESS", true)
	if boolean("JETSTREAM_STUB_MODE", false) {
		bad("JETSTREAM_STUB_MODE", "stub mode is not served by this server (use package jetstreamtest in tests)")
	}
	if s.JetstreamEnabled {
		if s.JetstreamURL == "" || s.JetstreamKey == "" {
			bad("JETSTREAM_ENABLED", "needs JETSTREAM_API_URL and JETSTREAM_API_KEY")
		}
		if strings.Contains(strings.ToLower(s.JetstreamKey), "your_") {
			bad("JETSTREAM_API_KEY", "is the example's placeholder")
		}
	}

	s.JetDriveEnabled = boolean("JETDRIVE_ENABLED", false)
	s.JetDrivePort = integer("JETDRIVE_PORT", 22344, 1, 65535)
	s.JetDriveIface = str("JETDRIVE_IFACE", "")
	if v, ok := get("JETDRIVE_MCAST_GROUP"); ok {
		a, err := netip.ParseAddr(v)
		if err != nil || !a.IsMulticast() {
			bad("JETDRIVE_MCAST_GROUP", "%q is not a multicast address", v)
		}
		s.JetDriveGroup = a
	}
	return s, errors.Join(errs...)
}

// rateStorage parses RATE_LIMIT_STORAGE: nil for memory://, the options of
// a Redis client for redis://, rediss:// and unix:// URLs (whose commands
// stop at their context's deadline, as httpapi's bounded checks want). A
// bad URL is reported without its password.
func rateStorage(v string, bad func(format string, a ...any)) *redis.Options {
	if v == "memory://" {
		return nil
	}
	scheme, _, ok := strings.Cut(v, "://")
	switch scheme = strings.ToLower(scheme); {
	case !ok:
		bad("want memory://, redis://host:port/db, rediss://host:port/db or unix:///path")
		return nil
	case scheme != "redis" && scheme != "rediss" && scheme != "unix":
		bad("scheme %q is not memory, redis, rediss or unix", scheme)
		return nil
	}
	if _, err := neturl.Parse(v); err != nil {
		bad("not a valid URL") // the parser's message would show the password
		return nil
	}
	o, err := redis.ParseURL(v)
	if err != nil {
		bad("%s", redactErr(err.Error(), v))
		return nil
	}
	o.ContextTimeoutEnabled = true
	return o
}

// redactErr removes the password of url from msg.
func redactErr(msg, url string) string {
	if u, err := neturl.Parse(url); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
	}
	return msg
}

// redisAddr names a Redis server for the log, without credentials.
func redisAddr(o *redis.Options) string {
	if o.TLSConfig != nil {
		return "rediss://" + o.Addr + "/" + strconv.Itoa(o.DB)
	}
	if o.Network == "unix" {
		return "unix://" + o.Addr
	}
	return "redis://" + o.Addr + "/" + strconv.Itoa(o.DB)
}

// checkExposure refuses an unauthenticated server reachable beyond this
// machine unless that is asked for explicitly.
func (s settings) checkExposure(authEnabled bool) error {
	if authEnabled || s.AllowOpen || s.Host == "localhost" {
		return nil
	}
	if a, err := netip.ParseAddr(s.Host); err == nil && a.IsLoopback() {
		return nil
	}
	return fmt.Errorf("DYNOAI_HOST=%s exposes the API beyond this machine with API_AUTH_ENABLED off; enable authentication or set DYNOAI_ALLOW_UNAUTHENTICATED=true", s.Host)
}
