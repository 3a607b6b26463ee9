// Command server runs DynoAI's HTTP API (package httpapi) on a SQLite run
// store in a data directory, configured from environment variables only.
//
//	go run ./examples/server                      # http://127.0.0.1:5001, auth off, debug off
//	go run ./examples/server -env .env            # also read a .env file (the environment wins)
//	DYNOAI_PORT=8080 API_AUTH_ENABLED=true API_KEYS_FILE=keys.txt go run ./examples/server
//
// Every variable is listed in .env.example. Unknown DYNOAI_*, API_AUTH*,
// API_KEYS*, RATE_LIMIT_*, PROMETHEUS_*, JETSTREAM_* and JETDRIVE_*
// variables and malformed values stop the server at startup with a message
// naming them. SIGINT or SIGTERM shuts it down gracefully: running analyses
// get DYNOAI_SHUTDOWN_TIMEOUT to finish and are then given back to the
// queue, where this server after its restart, or another replica on the
// same database, runs them again. Several replicas share one PostgreSQL
// database (DATABASE_URL); see the README's section on replicas.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dynoai/dynoai/authkeys"
	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/httpapi"
	"github.com/dynoai/dynoai/jetdrive"
	"github.com/dynoai/dynoai/jetstream"
	"github.com/dynoai/dynoai/jetstream/runstorestate"
	"github.com/dynoai/dynoai/metrics"
	"github.com/dynoai/dynoai/metrics/jetdrivemetrics"
	"github.com/dynoai/dynoai/metrics/jetstreammetrics"
	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/blobstore"
	"github.com/dynoai/dynoai/runstore/sqlstore"
	"github.com/dynoai/dynoai/ve"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
)

func main() {
	envFile := flag.String("env", "", "a .env file to read (variables already in the environment win)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "server: no arguments expected; configure with environment variables (see .env.example)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Environ(), *envFile, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

// run starts the server and blocks until ctx ends and it has shut down.
// ready, when set, receives the listening address.
func run(ctx context.Context, environ []string, envFile string, logOut io.Writer, ready func(addr string)) error {
	env := map[string]string{}
	if envFile != "" {
		data, err := os.ReadFile(envFile)
		if err != nil {
			return err
		}
		fileEnv, err := parseEnvFile(envFile, data)
		if err != nil {
			return err
		}
		env = fileEnv
	}
	for _, kv := range environ {
		k, v, _ := splitKV(kv)
		env[k] = v
	}
	merged := make([]string, 0, len(env))
	for k, v := range env {
		merged = append(merged, k+"="+v)
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	s, err := loadSettings(merged, lookup)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	hopts := &slog.HandlerOptions{Level: s.LogLevel}
	if s.Debug {
		hopts.Level = slog.LevelDebug
	}
	var log *slog.Logger
	if s.LogJSON {
		log = slog.New(slog.NewJSONHandler(logOut, hopts))
	} else {
		log = slog.New(slog.NewTextHandler(logOut, hopts))
	}
	auth, err := authkeys.LoadEnv(lookup, authkeys.FileOptions{Logger: log, PollInterval: s.KeysPoll})
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if err := s.checkExposure(auth.Enabled); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if err := os.MkdirAll(s.DataDir, 0o750); err != nil {
		return err
	}
	rs, err := sqlstore.Open(ctx, s.DatabaseURL, sqlstore.Options{Logger: log})
	if err != nil {
		return err
	}
	defer rs.Close()
	files, closeFiles, err := openFiles(ctx, s, log)
	if err != nil {
		return err
	}
	defer closeFiles()

	cfg := httpapi.Config{
		Runs: rs, Files: files,
		Auth: httpapi.AuthConfig{Enabled: auth.Enabled, Keys: auth.Store, OpenReads: s.OpenReads,
			OpenMetrics: s.MetricsOpen, DefaultTenant: s.DefaultTenant,
			SessionSecret: s.SessionSecret, SessionTTL: s.SessionTTL, SecureCookie: s.SecureCookie},
		BasePath: s.BasePath,
		RateLimit: httpapi.RateLimitConfig{Enabled: s.RateEnabled, Default: s.RateDefault, Expensive: s.RateExpensive,
			AnonymousTotal: s.RateAnonymous, MaxClients: s.RateMaxClients, IPv4Prefix: s.RateIPv4Prefix, IPv6Prefix: s.RateIPv6Prefix},
		CORS:            httpapi.CORSConfig{Origins: s.CORSOrigins},
		TrustedProxies:  s.TrustedProxies,
		MaxUploadBytes:  s.MaxUploadBytes,
		MinUploadRate:   s.MinUploadRate,
		UploadGrace:     s.UploadGrace,
		RequestTimeout:  s.RequestTimeout,
		AnalysisTimeout: s.AnalysisTimeout,
		Workers:         s.Workers,
		Queue:           s.Queue,
		Replica:         s.Replica,
		JobLease:        s.JobLease,
		JobHeartbeat:    s.JobHeartbeat,
		JobPoll:         s.JobPoll,
		JobMaxAttempts:  s.JobMaxAttempts,
		Logger:          log,
		Debug:           s.Debug,
		Version:         ve.Version,
		JetstreamConfig: jetstream.Config{APIURL: s.JetstreamURL, APIKey: s.JetstreamKey,
			PollInterval: s.JetstreamInterval, AutoProcess: s.JetstreamAutoProcess, Enabled: s.JetstreamEnabled},
	}
	rateStore := "memory"
	if s.RateRedis != nil && s.RateEnabled {
		// go-redis's own lines (one per failed dial) go to debug: the
		// server logs a failing Redis itself, at most every 30 s.
		redis.SetLogger(redisLog{log})
		rc := redis.NewClient(s.RateRedis)
		defer rc.Close()
		cfg.RateLimit.Redis, cfg.RateLimit.RedisFailClosed, cfg.RateLimit.RedisTimeout = rc, s.RateFailClosed, s.RateTimeout
		rateStore = redisAddr(s.RateRedis)
	}
	var reg *prometheus.Registry
	if s.MetricsEnabled {
		reg = prometheus.NewRegistry()
		m, err := metrics.New(metrics.Options{Registerer: reg, Runtime: true, Version: ve.Version, Environment: s.Environment})
		if err != nil {
			return err
		}
		cfg.Metrics = m
		if s.MetricsPort == 0 {
			cfg.Gatherer = reg
		}
	}

	var bg sync.WaitGroup
	bgCtx, stopBG := context.WithCancel(ctx)
	defer func() { stopBG(); bg.Wait() }()

	if s.JetDriveEnabled {
		nc := jetdrive.NetConfig{Interface: s.JetDriveIface, Port: s.JetDrivePort}
		if s.JetDriveGroup.IsValid() {
			nc.Groups = []netip.Addr{s.JetDriveGroup}
		}
		jd, err := jetdrive.NewClient(bgCtx, jetdrive.ClientConfig{Net: nc, Logger: log})
		if err != nil {
			return fmt.Errorf("jetdrive: %w", err)
		}
		defer jd.Close()
		cfg.JetDrive = jd
		if reg != nil {
			// The client's stats (providers, drops, decode errors) on /metrics.
			if err := reg.Register(jetdrivemetrics.New(jd, jetdrivemetrics.Options{})); err != nil {
				return fmt.Errorf("jetdrive metrics: %w", err)
			}
		}
	}
	if s.JetstreamEnabled {
		client, err := jetstream.NewHTTPClient(jetstream.HTTPOptions{BaseURL: s.JetstreamURL, APIKey: s.JetstreamKey, Logger: log})
		if err != nil {
			return fmt.Errorf("jetstream: %w", err)
		}
		state := runstorestate.New(rs, runstorestate.Options{CursorPath: filepath.Join(s.DataDir, "jetstream_cursor.json")})
		poller, err := jetstream.NewPoller(client, state, jetstreamProcessor(cfg.Metrics), jetstream.PollerOptions{
			Interval: s.JetstreamInterval, RecordOnly: !s.JetstreamAutoProcess, Logger: log,
			Hooks: jetstreammetrics.Hooks(cfg.Metrics)}) // polls and runs on /metrics
		if err != nil {
			return fmt.Errorf("jetstream: %w", err)
		}
		cfg.Jetstream = poller
		bg.Add(1)
		go func() { defer bg.Done(); _ = poller.Run(bgCtx) }()
	}
	if auth.File != nil {
		bg.Add(1)
		go func() { defer bg.Done(); _ = auth.Store.Watch(bgCtx) }()
	}

	srv, err := httpapi.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(s.Host, strconv.Itoa(s.Port)))
	if err != nil {
		return err
	}
	if reg != nil && s.MetricsPort != 0 {
		mln, err := net.Listen("tcp", net.JoinHostPort(s.Host, strconv.Itoa(s.MetricsPort)))
		if err != nil {
			ln.Close()
			return err
		}
		var h http.Handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		if s.MetricsProtect {
			h = authkeys.Middleware(auth.Store, authkeys.Options{Disabled: !auth.Enabled, Logger: log,
				Scope: authkeys.ScopeAdmin})(h)
		}
		ms := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		bg.Add(1)
		go func() { defer bg.Done(); _ = ms.Serve(mln) }()
		go func() { <-bgCtx.Done(); ms.Close() }()
		log.Info("metrics listening", "addr", mln.Addr().String())
	}
	log.Info("listening", "addr", ln.Addr().String(), "ui", "http://"+ln.Addr().String()+s.BasePath+"/", "auth", auth.Enabled, "keys", auth.Store.Len(),
		"database", redactedDB(rs), "rate_limits", s.RateEnabled, "rate_limit_storage", rateStore, "metrics", s.MetricsEnabled, "debug", s.Debug)
	if ready != nil {
		ready(ln.Addr().String())
	}
	err = srv.Serve(ctx, ln, s.ShutdownTimeout)
	log.Info("stopped", "err", err)
	return err
}

// redisLog passes go-redis's log lines to the server's log at debug level.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}

func redactedDB(rs *sqlstore.Store) string { return string(rs.Dialect()) + " " + rs.DSN() }

func splitKV(kv string) (string, string, bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}

// jetstreamProcessor analyzes a Jetstream run with the default analyzer.
func jetstreamProcessor(m *metrics.Metrics) jetstream.Processor {
	return jetstream.ProcessorFunc(func(ctx context.Context, run jetstream.RunMetadata, src dyno.Source) (jetstream.Outcome, error) {
		start := time.Now()
		a, err := ve.New(ve.Options{})
		if err != nil {
			return jetstream.Outcome{}, err
		}
		res, err := a.Analyze(ctx, src)
		if err != nil {
			m.ObserveAnalysis(metrics.StatusError, metrics.SourceJetstream, time.Since(start))
			return jetstream.Outcome{}, err
		}
		m.ObserveAnalysis(metrics.StatusSuccess, metrics.SourceJetstream, time.Since(start))
		cells, maxPct := 0, 0.0
		for _, c := range res.Cylinders {
			for _, v := range c.Correction.Values {
				if ve.Has(v) && v != 1 {
					cells++
					maxPct = max(maxPct, abs(v-1)*100)
				}
			}
		}
		m.ObserveVECorrections(cells, maxPct)
		sum := map[string]float64{"samples": float64(res.Samples), "corrected_cells": float64(cells), "max_correction_pct": maxPct}
		if run.PeakHP > 0 {
			sum["peak_hp"] = run.PeakHP
		}
		if run.PeakTorque > 0 {
			sum["peak_torque"] = run.PeakTorque
		}
		return jetstream.Outcome{Summary: sum}, nil
	})
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// openFiles opens the file contents store: the blob store DYNOAI_FILES_URL
// names, or else the durable local directory DYNOAI_FILES_DIR.
func openFiles(ctx context.Context, s settings, log *slog.Logger) (runstore.FileStore, func(), error) {
	if s.FilesURL == "" {
		fs, err := runstore.NewLocalFileStore(s.FilesDir, runstore.LocalFileStoreOptions{})
		if err != nil {
			return nil, nil, err
		}
		return fs, func() { fs.Close() }, nil
	}
	bs, err := blobstore.Open(ctx, s.FilesURL, blobstore.Options{Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("DYNOAI_FILES_URL: %w", err)
	}
	if strings.HasPrefix(s.FilesURL, "mem:") {
		log.Warn("file contents are kept in memory and lost when the server stops (DYNOAI_FILES_URL=mem://)")
	}
	log.Info("file contents in a blob store", "store", bs.String())
	return bs, func() { bs.Close() }, nil
}
