package httpapi

import (
	"bytes"
	"context"
	"errors"
	"github.com/dynoai/dynoai/ve"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/dynoai/dynoai/authkeys"
	"github.com/dynoai/dynoai/runstore"
	"github.com/stretchr/testify/require"
)

func benchServer(b *testing.B, auth bool, mutate ...func(*Config)) (*Server, runstore.RunStore) {
	runs := runstore.NewMemory(runstore.Options{})
	cfg := Config{Runs: runs, Files: runstore.NewMemFileStore(),
		RateLimit: RateLimitConfig{Enabled: true, Default: Rates{{1_000_000, time.Second}}}}
	if auth {
		// A key of the default tenant, which owns the runs made below.
		keys, err := authkeys.NewMemory(authkeys.Entry{Key: testKey, Tenant: DefaultTenant})
		require.NoError(b, err)
		cfg.Auth = AuthConfig{Enabled: true, Keys: keys}
	}
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := New(cfg)
	require.NoError(b, err)
	err = srv.Start(context.Background())
	require.NoError(b, err)
	b.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	for i := range 100 {
		_, err := runs.Create(context.Background(), runstore.NewRun{Source: runstore.SourceUpload, Filename: "r" + strconv.Itoa(i) + ".csv"})
		require.NoError(b, err)
	}
	return srv, runs
}

func BenchmarkHandler(b *testing.B) {
	for _, auth := range []bool{false, true} {
		srv, _ := benchServer(b, auth)
		h := srv.Handler()
		for _, p := range []string{"/api/health/live", "/api/health", "/api/runs?limit=50"} {
			b.Run(p+"/auth="+strconv.FormatBool(auth), func(b *testing.B) {
				b.ReportAllocs()
				req := httptest.NewRequest("GET", p, nil)
				req.Header.Set("X-API-Key", testKey)
				for b.Loop() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != 200 {
						b.Fatalf("%d %s", rec.Code, rec.Body)
					}
				}
			})
		}
	}
}

// BenchmarkAnalyzeAccept measures the synchronous part of an upload of one
// simulated session (about 6800 rows): streaming into the file store, the
// content checks, and creating the run. The analysis itself runs after
// the 202; here the analyzer refuses at once so it costs nothing.
func BenchmarkAnalyzeAccept(b *testing.B) {
	srv, _ := benchServer(b, false, func(c *Config) {
		c.NewAnalyzer = func(ve.Options) (ve.Analyzer, error) { return nil, errors.New("skipped") }
	})
	h := srv.Handler()
	log := testLog(b)
	body, ct := multipartBody(b, "pulls.csv", log, nil)
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(body)
	data := buf.Bytes()
	b.SetBytes(int64(len(log)))
	b.ReportAllocs()
	for b.Loop() {
		// Keep the queue from filling: wait for the previous analysis.
		for srv.busy.Load() > 0 {
			time.Sleep(time.Millisecond)
		}
		for c, _ := srv.cfg.Runs.JobCounts(context.Background()); c.Backlog() > 0; c, _ = srv.cfg.Runs.JobCounts(context.Background()) {
			time.Sleep(time.Millisecond)
		}
		req := httptest.NewRequest("POST", "/api/analyze", bytes.NewReader(data))
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}

func BenchmarkLimiterAllow(b *testing.B) {
	l := newLimiter(Rates{{100, time.Second}, {1000, time.Hour}}, 0)
	keys := make([]clientKey, 1024)
	for i := range keys {
		keys[i] = clientKey{net: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i / 256), byte(i % 256)}), 32)}
	}
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.allow(keys[i&1023], now)
		i++
	}
}

// BenchmarkLimiterNewClients measures a request from a client never seen
// before against a full table: the least recently used bucket is recycled
// (no allocation once full).
func BenchmarkLimiterNewClients(b *testing.B) {
	l := newLimiter(Rates{{100, time.Second}, {1000, time.Hour}}, 100_000)
	now := time.Now()
	var i uint32
	key := func() clientKey {
		i++
		return clientKey{net: netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}), 32)}
	}
	for range 100_000 {
		l.allow(key(), now)
	}
	b.ReportAllocs()
	for b.Loop() {
		l.allow(key(), now)
	}
}
