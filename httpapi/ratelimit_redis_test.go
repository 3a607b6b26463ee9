package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"time"

	"github.com/dynoai/dynoai/internal/services"

	"github.com/dynoai/dynoai/authkeys"
	"github.com/dynoai/dynoai/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// go-redis logs every failed dial itself; the failure tests cause many.
func init() { redis.SetLogger(quietRedis{}) }

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// redisURLEnv names the Redis server the tests use (.ci/redis.sh starts
// one and writes it to /tmp/dynoai-ci-redis.env).
const redisURLEnv = "DYNOAI_TEST_REDIS_URL"

// testRedisOptions returns the options of the Redis named by
// $DYNOAI_TEST_REDIS_URL. Without the variable the test is skipped, except
// under DYNOAI_SERVICES_REQUIRED=1 (set by .ci/run) where it fails.
func testRedisOptions(t testing.TB) *redis.Options {
	t.Helper()
	u := services.Need(t, redisURLEnv, "Redis tests; run .ci/redis.sh as root, then source /tmp/dynoai-ci-redis.env, or set it to e.g. redis://127.0.0.1:6379/0")
	o, err := redis.ParseURL(u)
	require.NoError(t, err, "%s", redisURLEnv)
	o.ContextTimeoutEnabled = true
	return o
}

// testRedis returns a client of the test Redis and a key prefix of this
// test's own; the test's keys are deleted when it ends.
func testRedis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	o := testRedisOptions(t)
	c := redis.NewClient(o)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.Ping(ctx).Err(), "Redis at %s", o.Addr)
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "dynoai:rltest:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, k := range scanKeys(t, c, prefix+"*") {
			c.Del(ctx, k)
		}
		c.Close()
	})
	return c, prefix
}

func scanKeys(t testing.TB, c *redis.Client, match string) []string {
	t.Helper()
	var out []string
	it := c.Scan(context.Background(), 0, match, 1000).Iterator()
	for it.Next(context.Background()) {
		out = append(out, it.Val())
	}
	require.NoError(t, it.Err())
	return out
}

// redisEnv starts a server whose rate limits are kept in Redis (through
// client, under prefix), behind a trusted proxy on loopback.
func redisEnv(t testing.TB, client redis.UniversalClient, prefix string, mutate func(*Config)) *testEnv {
	return newEnv(t, func(c *Config) {
		c.RateLimit.Enabled = true
		c.RateLimit.Redis = client
		c.RateLimit.RedisPrefix = prefix
		// Generous for a loaded machine under -race, so that exact counts
		// hold; the failure tests set the default's 100 ms.
		c.RateLimit.RedisTimeout = 2 * time.Second
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		if mutate != nil {
			mutate(c)
		}
	})
}

func xff(addr string) map[string]string { return map[string]string{"X-Forwarded-For": addr} }

// TestRedisLimitSharedAcrossServers: two servers on one Redis hold a key
// to one budget between them. Forty requests race from both at once for a
// budget of ten: exactly ten are accepted (overshoot 0: every check is one
// atomic script), and the expensive routes keep a budget of their own.
func TestRedisLimitSharedAcrossServers(t *testing.T) {
	client, prefix := testRedis(t)
	mut := func(c *Config) {
		c.RateLimit.Default = Rates{{10, time.Hour}, {1000, 24 * time.Hour}}
		c.RateLimit.Expensive = Rates{{1, time.Hour}}
		c.Auth = AuthConfig{Enabled: true, Keys: memKeys(t, testKey, key2)}
	}
	a := redisEnv(t, client, prefix, mut)
	// The second server has a client (and a connection pool) of its own.
	other := redis.NewClient(testRedisOptions(t))
	t.Cleanup(func() { other.Close() })
	b := redisEnv(t, other, prefix, mut)

	var accepted, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		e := a
		if i%2 == 1 {
			e = b
		}
		wg.Go(func() {
			r := e.do(t, "GET", "/api/runs", nil, hdr(testKey))
			switch r.code {
			case 200:
				accepted.Add(1)
			case 429:
				refused.Add(1)
			default:
				t.Errorf("unexpected %d: %s", r.code, r.body)
			}
		})
	}
	wg.Wait()
	t.Logf("shared budget of 10 over two servers: %d accepted, %d refused (overshoot %d)", accepted.Load(), refused.Load(), accepted.Load()-10)
	assert.EqualValues(t, 10, accepted.Load(), "one budget across both servers")
	assert.EqualValues(t, 30, refused.Load())

	r := b.do(t, "GET", "/api/runs", nil, hdr(testKey))
	assert.Equal(t, 429, r.code)
	assert.Equal(t, "10", r.header.Get("X-RateLimit-Limit"), "the tightest limit")
	assert.Equal(t, "0", r.header.Get("X-RateLimit-Remaining"))
	assert.InDelta(t, 360, atoi(t, r.header.Get("Retry-After")), 2, "a token of 10/hour is back in 6 minutes")
	assert.Equal(t, "10/hour;1000/day", r.json(t)["error"].(map[string]any)["details"].(map[string]any)["limit"])

	r = a.do(t, "GET", "/api/runs", nil, hdr(key2))
	assert.Equal(t, 200, r.code, "another key has its own budget")
	assert.Equal(t, "9", r.header.Get("X-RateLimit-Remaining"))

	up := a.upload(t, "a.csv", testLog(t), nil, hdr(testKey))
	require.Equal(t, 202, up.code, "the expensive budget is apart: %s", up.body)
	a.wait(t, up.json(t)["run_id"].(string))
	up = b.upload(t, "a.csv", testLog(t), nil, hdr(testKey))
	assert.Equal(t, 429, up.code, "and shared too")
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	var n int
	_, err := fmt.Sscan(s, &n)
	require.NoError(t, err, "%q", s)
	return n
}

// TestRedisAnonymousBudget: requests without a key share the anonymous
// total across servers, on top of their own network's bucket; a key never
// draws on either, and made-up keys count as anonymous.
func TestRedisAnonymousBudget(t *testing.T) {
	client, prefix := testRedis(t)
	mut := func(c *Config) {
		c.RateLimit.Default = Rates{{100, time.Hour}}
		c.RateLimit.AnonymousTotal = Rates{{4, time.Hour}}
		c.Auth = AuthConfig{Enabled: true, Keys: memKeys(t, testKey), OpenReads: true}
	}
	a, b := redisEnv(t, client, prefix, mut), redisEnv(t, client, prefix, mut)
	var codes []int
	for i := range 6 {
		e := []*testEnv{a, b}[i%2]
		h := xff(fmt.Sprintf("192.0.2.%d", i+1))
		if i == 3 {
			h["X-API-Key"] = authkeys.Generate() // a made-up key is anonymous (charged, then 403)
		}
		codes = append(codes, e.do(t, "GET", "/api/runs", nil, h).code)
	}
	assert.Equal(t, []int{200, 200, 200, 403, 429, 429}, codes)
	r := a.do(t, "GET", "/api/runs", nil, xff("192.0.2.99"))
	assert.Equal(t, "4", r.header.Get("X-RateLimit-Limit"), "refused by the anonymous total")
	assert.Equal(t, "4/hour", r.json(t)["error"].(map[string]any)["details"].(map[string]any)["limit"])
	for range 3 {
		assert.Equal(t, 200, b.do(t, "GET", "/api/runs", nil, hdr(testKey)).code, "a key is never held by anonymous traffic")
	}

	// A network's own bucket refuses before the total is touched, and a
	// refused request spends nothing anywhere (all or nothing).
	c := redisEnv(t, client, prefix+"x:", func(c *Config) {
		mut(c)
		c.RateLimit.Default = Rates{{2, time.Hour}}
		c.RateLimit.AnonymousTotal = Rates{{3, time.Hour}}
	})
	codes = codes[:0]
	for range 4 {
		codes = append(codes, c.do(t, "GET", "/api/runs", nil, xff("198.51.100.1")).code)
	}
	codes = append(codes, c.do(t, "GET", "/api/runs", nil, xff("198.51.100.2")).code)
	codes = append(codes, c.do(t, "GET", "/api/runs", nil, xff("198.51.100.3")).code)
	assert.Equal(t, []int{200, 200, 429, 429, 200, 429}, codes, "the two refused requests of .1 left the total one request")
}

// TestRedisIPv6Grouping: the addresses of one IPv6 /64 share a bucket in
// Redis as in process, across servers; the grouping is configurable.
func TestRedisIPv6Grouping(t *testing.T) {
	client, prefix := testRedis(t)
	for _, tc := range []struct {
		prefix  int
		sharing bool
	}{{0, true}, {128, false}} {
		t.Run(fmt.Sprint(tc.prefix), func(t *testing.T) {
			p := fmt.Sprintf("%s%d:", prefix, tc.prefix)
			mut := func(c *Config) {
				c.RateLimit.Default = Rates{{3, time.Hour}}
				c.RateLimit.IPv6Prefix = tc.prefix
			}
			a, b := redisEnv(t, client, p, mut), redisEnv(t, client, p, mut)
			var codes []int
			for i := range 6 {
				e := []*testEnv{a, b}[i%2]
				codes = append(codes, e.do(t, "GET", "/api/runs", nil, xff(fmt.Sprintf("2001:db8:1:2:%x::%x", i*7, i+1))).code)
			}
			if tc.sharing {
				assert.Equal(t, []int{200, 200, 200, 429, 429, 429}, codes, "one /64, one bucket")
				assert.Len(t, scanKeys(t, client, p+"default:a:*"), 1)
			} else {
				assert.Equal(t, []int{200, 200, 200, 200, 200, 200}, codes)
				assert.Len(t, scanKeys(t, client, p+"default:a:*"), 6)
			}
			assert.Equal(t, 200, a.do(t, "GET", "/api/runs", nil, xff("2001:db8:1:3::1")).code, "another /64")
			// IPv4 grouping is configurable too (here each address).
			assert.Equal(t, 200, b.do(t, "GET", "/api/runs", nil, xff("203.0.113.1")).code)
		})
	}
}

// TestRedisStoresDigestsOnly: after traffic with keys, made-up keys, IPv4
// and IPv6 clients, no key name or value anywhere in Redis holds an API
// key, a key id, or a client address or network, in any form; the names
// are the documented ones; and every key but the salt expires, no later
// than its longest window.
func TestRedisStoresDigestsOnly(t *testing.T) {
	client, prefix := testRedis(t)
	madeUp := authkeys.Generate()
	e := redisEnv(t, client, prefix, func(c *Config) {
		c.RateLimit.Default = Rates{{5, time.Minute}, {50, time.Hour}}
		c.RateLimit.AnonymousTotal = Rates{{100, time.Minute}}
		c.Auth = AuthConfig{Enabled: true, Keys: memKeys(t, testKey), OpenReads: true}
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	probeAlways(e.srv)
	e.srv.redisProbe.every = 0
	addrs := []string{"198.51.100.77", "2001:db8:abcd:12::1", "2001:db8:abcd:12:ffff::2"}
	for _, a := range addrs {
		require.Equal(t, 200, e.do(t, "GET", "/api/runs", nil, xff(a)).code)
	}
	require.Equal(t, 200, e.do(t, "GET", "/api/runs", nil, map[string]string{"X-API-Key": testKey, "X-Forwarded-For": "198.51.100.78"}).code)
	require.Equal(t, 403, e.do(t, "GET", "/api/runs", nil, map[string]string{"X-API-Key": madeUp}).code, "charged, then refused")
	require.Equal(t, 200, e.get(t, "/api/runs").code) // from 127.0.0.1 itself
	require.Equal(t, 200, e.get(t, "/api/health").code)

	forbidden := []string{testKey, madeUp, string(authkeys.IDOf(testKey)), string(authkeys.IDOf(madeUp)),
		"198.51.100.77", "198.51.100.78", "127.0.0.1", "2001:db8:abcd:12", "2001:0db8", "20010db8", "c633644d" /* 198.51.100.77 in hex */}
	ctx := context.Background()
	name := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `(salt|probe:[0-9a-f]{12}|(default|expensive):(k:[0-9a-f]{32}|a:[0-9a-f]{32}|anonymous))$`)
	all := scanKeys(t, client, "*") // every key in the database, not only this test's
	var mine []string
	for _, k := range all {
		for _, f := range forbidden {
			assert.NotContains(t, strings.ToLower(k), strings.ToLower(f), "a key name holds %q", f)
		}
		if strings.HasPrefix(k, prefix) {
			mine = append(mine, k)
		}
	}
	// Three anonymous buckets (the IPv4 address, one /64 for both IPv6
	// addresses, and loopback for the made-up key and the plain request),
	// the key's bucket, the anonymous total, the salt and the probe.
	assert.Len(t, mine, 7, "%v", mine)
	for _, k := range mine {
		assert.Regexp(t, name, k)
		typ, err := client.Type(ctx, k).Result()
		require.NoError(t, err)
		var vals []string
		switch typ {
		case "hash":
			h, err := client.HGetAll(ctx, k).Result()
			require.NoError(t, err)
			for f, v := range h {
				assert.Regexp(t, `^[0-9]+/[0-9]+$`, f, "fields are limits")
				assert.Regexp(t, `^[0-9]+$`, v, "values are times")
				vals = append(vals, f, v)
			}
		case "string":
			v, err := client.Get(ctx, k).Result()
			require.NoError(t, err)
			vals = append(vals, v)
		default:
			t.Errorf("%s is a %s", k, typ)
		}
		for _, v := range vals {
			for _, f := range forbidden {
				assert.NotContains(t, strings.ToLower(v), strings.ToLower(f), "%s holds %q", k, f)
			}
		}
		ttl, err := client.PTTL(ctx, k).Result()
		require.NoError(t, err)
		switch {
		case strings.HasSuffix(k, "salt"):
			assert.Equal(t, time.Duration(-1), ttl, "the salt stays (one key)")
		case strings.Contains(k, ":probe:"):
			assert.True(t, ttl > 0 && ttl <= time.Minute, "%s expires in %v", k, ttl)
		default:
			// A bucket expires when its slowest limit is full again: here
			// 72 s (one step of 50/hour) per request charged, at most two.
			assert.True(t, ttl > 0 && ttl <= 2*72*time.Second, "%s expires in %v", k, ttl)
		}
	}
}

// TestRedisBucketsExpire: a bucket is gone from Redis once it is full
// again, so Redis holds only clients seen within their longest window.
func TestRedisBucketsExpire(t *testing.T) {
	client, prefix := testRedis(t)
	e := redisEnv(t, client, prefix, func(c *Config) { c.RateLimit.Default = Rates{{2, 400 * time.Millisecond}} })
	for i := range 20 {
		require.Equal(t, 200, e.do(t, "GET", "/api/runs", nil, xff(fmt.Sprintf("198.18.0.%d", i+1))).code)
	}
	assert.Len(t, scanKeys(t, client, prefix+"default:a:*"), 20)
	assert.Eventually(t, func() bool { return len(scanKeys(t, client, prefix+"default:a:*")) == 0 },
		3*time.Second, 50*time.Millisecond, "buckets expire once full (after 200 ms here)")
}

// TestRedisSaltReset: when Redis loses its data (a restart without
// persistence, FLUSHDB), servers that knew the old salt load the new one on
// their next check, so they go on sharing buckets.
func TestRedisSaltReset(t *testing.T) {
	client, prefix := testRedis(t)
	mut := func(c *Config) {
		c.RateLimit.Default = Rates{{4, time.Hour}}
		c.Auth = AuthConfig{Enabled: true, Keys: memKeys(t, testKey), OpenReads: true}
	}
	a, b := redisEnv(t, client, prefix, mut), redisEnv(t, client, prefix, mut)
	require.Equal(t, 200, a.do(t, "GET", "/api/runs", nil, hdr(testKey)).code)
	require.Equal(t, 200, b.do(t, "GET", "/api/runs", nil, hdr(testKey)).code)
	for _, k := range scanKeys(t, client, prefix+"*") {
		require.NoError(t, client.Del(context.Background(), k).Err())
	}
	var codes []int
	for i := range 6 {
		codes = append(codes, []*testEnv{a, b}[i%2].do(t, "GET", "/api/runs", nil, hdr(testKey)).code)
	}
	assert.Equal(t, []int{200, 200, 200, 200, 429, 429}, codes, "a fresh budget, still one for both servers")
	assert.Len(t, scanKeys(t, client, prefix+"salt"), 1)
}

// redisProxy forwards TCP connections to Redis, and can make it look down
// (every connection closed, new ones closed at once, as when the server is
// killed) or hung (connections accepted and never answered).
type redisProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	mode   string // "up", "down", "hung"
	conns  map[net.Conn]bool
}

func newRedisProxy(t testing.TB, target string) *redisProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &redisProxy{ln: ln, target: target, mode: "up", conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.set("down") })
	return p
}

func (p *redisProxy) addr() string { return p.ln.Addr().String() }

func (p *redisProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		mode := p.mode
		if mode == "down" {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = true
		p.mu.Unlock()
		if mode == "up" {
			go p.pipe(c)
		}
	}
}

func (p *redisProxy) pipe(c net.Conn) {
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[u] = true
	p.mu.Unlock()
	go func() { _, _ = io.Copy(u, c); u.Close() }()
	_, _ = io.Copy(c, u)
	c.Close()
}

// set switches the mode, closing every connection open so far.
func (p *redisProxy) set(mode string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = mode
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// proxiedRedis returns a client of the test Redis through a proxy.
func proxiedRedis(t testing.TB, deadlines bool) (*redis.Client, *redisProxy, string) {
	_, prefix := testRedis(t)
	o := testRedisOptions(t)
	p := newRedisProxy(t, o.Addr)
	o.Addr = p.addr()
	o.ContextTimeoutEnabled = deadlines
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c, p, prefix
}

// limStoreFailing reports whether the server's Redis is failing.
func (s *Server) limStoreFailing() bool {
	failing, _, _ := s.limStore.status()
	return failing
}

func counter(t testing.TB, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}

func healthComponent(t testing.TB, r resp, name string) map[string]any {
	t.Helper()
	for _, c := range r.json(t)["components"].([]any) {
		if c := c.(map[string]any); c["name"] == name {
			return c
		}
	}
	t.Fatalf("no component %s in %s", name, r.body)
	return nil
}

// TestRedisFailOpen: Redis killed mid-test (every connection cut, new ones
// refused) and then hung (never answering): requests go on being served and
// limited by the in-process buckets, which start warm (a key that spent
// its budget here stays held); each check waits at most the timeout, and
// after a failure checks skip Redis for a while; the failures are counted
// and logged once, health says degraded (readiness stays ready). When Redis
// is back the limits are shared again, and health healthy again.
func TestRedisFailOpen(t *testing.T) {
	for _, deadlines := range []bool{true, false} {
		t.Run(fmt.Sprintf("context_deadlines=%v", deadlines), func(t *testing.T) {
			client, proxy, prefix := proxiedRedis(t, deadlines)
			reg := prometheus.NewRegistry()
			m, err := metrics.New(metrics.Options{Registerer: reg})
			require.NoError(t, err)
			var logs syncBuffer
			e := redisEnv(t, client, prefix, func(c *Config) {
				c.RateLimit.RedisTimeout = DefaultRedisTimeout
				c.RateLimit.Default = Rates{{3, time.Hour}}
				c.Auth = AuthConfig{Enabled: true, Keys: memKeys(t, testKey, key2), OpenReads: true}
				c.Metrics = m
				c.Logger = slogNew(&logs)
			})
			e.srv.redisProbe.every = 0
			e.srv.limStore.retry = 300 * time.Millisecond
			clk := &moveClock{t: time.Now()} // the retry schedule's clock, moved by the test
			e.srv.limStore.now = clk.Now
			require.Equal(t, 200, e.do(t, "GET", "/api/runs", nil, hdr(testKey)).code)
			require.Equal(t, 200, e.do(t, "GET", "/api/runs", nil, hdr(testKey)).code)
			h := e.get(t, "/api/health")
			assert.Equal(t, "healthy", healthComponent(t, h, "redis")["status"], "%s", h.body)

			for _, mode := range []string{"down", "hung"} {
				t.Run(mode, func(t *testing.T) {
					clk.Advance(350 * time.Millisecond) // past the retry interval: the next check tries Redis
					proxy.set(mode)
					before := counter(t, reg, "dynoai_rate_limit_backend_errors_total", "backend", "redis")
					// A hung Redis costs one timeout, not a hang: the request
					// is served (a deadline far beyond the timeout detects a
					// hang without timing the timeout).
					r := doWithin(t, 20*time.Second, func() resp { return e.do(t, "GET", "/api/runs", nil, hdr(key2)) })
					assert.Equal(t, 200, r.code, "served: %s", r.body)
					assert.Equal(t, before+1, counter(t, reg, "dynoai_rate_limit_backend_errors_total", "backend", "redis"),
						"the check that tried Redis failed, and counted")
					if mode == "down" {
						assert.Equal(t, 200, e.do(t, "GET", "/api/runs", nil, hdr(testKey)).code, "third of three, in process")
						assert.Equal(t, 429, e.do(t, "GET", "/api/runs", nil, hdr(testKey)).code,
							"the fallback started warm: the two requests Redis allowed count here too")
					}
					failed := counter(t, reg, "dynoai_rate_limit_backend_errors_total", "backend", "redis")
					for range 50 {
						e.do(t, "GET", "/api/runs", nil, xff("198.51.100.9"))
					}
					assert.Equal(t, failed, counter(t, reg, "dynoai_rate_limit_backend_errors_total", "backend", "redis"),
						"checks skip Redis while it fails (the clock has not reached the retry)")
					assert.GreaterOrEqual(t, counter(t, reg, "dynoai_rate_limit_backend_errors_total", "backend", "redis"), 1.0)
					h := e.get(t, "/api/health")
					assert.Equal(t, 200, h.code)
					assert.Equal(t, "degraded", h.json(t)["status"])
					assert.Equal(t, "degraded", healthComponent(t, h, "redis")["status"])
					assert.Equal(t, 200, e.get(t, "/api/health/ready").code, "failing open, the server takes work")
				})
			}
			failures := counter(t, reg, "dynoai_rate_limit_backend_errors_total", "backend", "redis")
			assert.LessOrEqual(t, failures, 20.0, "about one failure per retry interval, not one per request")
			assert.Equal(t, 1, strings.Count(logs.String(), "rate limit store failing"), "one line per 30 s: %s", logs.String())
			assert.Contains(t, logs.String(), "limits are enforced by each server alone")

			proxy.set("up")
			assert.Eventually(t, func() bool {
				clk.Advance(350 * time.Millisecond) // each try past the retry interval
				return e.do(t, "GET", "/api/runs", nil, xff("198.51.100.10")).code == 200 && !e.srv.limStoreFailing()
			}, 5*time.Second, 50*time.Millisecond, "Redis is used again")
			assert.Contains(t, logs.String(), "rate limit store answers again")
			// Redis saw two of the key's three requests: one more is allowed.
			assert.Equal(t, 200, e.do(t, "GET", "/api/runs", nil, hdr(testKey)).code, "shared again: Redis's count")
			assert.Equal(t, 429, e.do(t, "GET", "/api/runs", nil, hdr(testKey)).code)
			// Health probes Redis on its own connection; one the hung
			// proxy left in the pool can fail the first probe after
			// recovery (go-redis then drops it), so health is asked until
			// it says healthy, within a deadline.
			assert.Eventually(t, func() bool {
				h = e.get(t, "/api/health")
				return healthComponent(t, h, "redis")["status"] == "healthy"
			}, 10*time.Second, 50*time.Millisecond, "health says healthy again: %s", h.body)
			t.Logf("failures counted: %v", counter(t, reg, "dynoai_rate_limit_backend_errors_total", "backend", "redis"))
		})
	}
}

// TestRedisFailClosed: failing closed, a rate-limited request is answered
// 503 with Retry-After while Redis is down, health and readiness say so,
// unlimited routes stay served, and it all recovers with Redis.
func TestRedisFailClosed(t *testing.T) {
	client, proxy, prefix := proxiedRedis(t, true)
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Options{Registerer: reg})
	require.NoError(t, err)
	var logs syncBuffer
	e := redisEnv(t, client, prefix, func(c *Config) {
		c.RateLimit.RedisTimeout = DefaultRedisTimeout
		c.RateLimit.Default = Rates{{100, time.Hour}}
		c.RateLimit.RedisFailClosed = true
		c.Metrics = m
		c.Logger = slogNew(&logs)
	})
	e.srv.redisProbe.every = 0
	e.srv.limStore.retry = 300 * time.Millisecond
	require.Equal(t, 200, e.get(t, "/api/runs").code)
	proxy.set("down")
	for range 5 {
		r := e.get(t, "/api/runs")
		require.Equal(t, 503, r.code, "%s", r.body)
		assert.Equal(t, CodeUnavailable, r.errCode(t))
		ra := atoi(t, r.header.Get("Retry-After"))
		assert.GreaterOrEqual(t, ra, 1)
		assert.EqualValues(t, ra, r.json(t)["error"].(map[string]any)["details"].(map[string]any)["retry_after_seconds"])
	}
	assert.GreaterOrEqual(t, counter(t, reg, "dynoai_rate_limit_backend_errors_total", "backend", "redis"), 1.0)
	assert.Contains(t, logs.String(), "rate-limited requests are answered 503")
	h := e.get(t, "/api/health")
	assert.Equal(t, 503, h.code)
	assert.Equal(t, "unhealthy", healthComponent(t, h, "redis")["status"])
	assert.NotContains(t, string(h.body), proxy.addr(), "no internal detail")
	rr := e.get(t, "/api/health/ready")
	assert.Equal(t, 503, rr.code)
	assert.JSONEq(t, `{"status":"not_ready","component":"redis"}`, string(rr.body))
	assert.Equal(t, 200, e.get(t, "/api/health/live").code)

	proxy.set("up")
	assert.Eventually(t, func() bool { return e.get(t, "/api/runs").code == 200 }, 5*time.Second, 50*time.Millisecond)
	assert.Equal(t, 200, e.get(t, "/api/health/ready").code)
}

// TestRedisNeverReachable: a Redis that was never there (a closed port)
// fails open from the first request.
func TestRedisNeverReachable(t *testing.T) {
	testRedisOptions(t) // the same skip rule as the other Redis tests
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	client := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { client.Close() })
	e := redisEnv(t, client, "", func(c *Config) {
		c.RateLimit.RedisTimeout = DefaultRedisTimeout
		c.RateLimit.Default = Rates{{2, time.Hour}}
	})
	assert.Equal(t, 200, e.get(t, "/api/runs").code)
	assert.Equal(t, 200, e.get(t, "/api/runs").code)
	assert.Equal(t, 429, e.get(t, "/api/runs").code, "held by the in-process limiter")
	assert.Equal(t, "degraded", healthComponent(t, e.get(t, "/api/health"), "redis")["status"])
}

func TestRedisConfigValidation(t *testing.T) {
	e := newEnv(t, nil)
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled: New does no I/O
	defer rc.Close()
	for name, mut := range map[string]func(*Config){
		"negative timeout": func(c *Config) { c.RateLimit.RedisTimeout = -time.Millisecond },
		"prefix space":     func(c *Config) { c.RateLimit.RedisPrefix = "a b:" },
		"long prefix":      func(c *Config) { c.RateLimit.RedisPrefix = strings.Repeat("x", 65) },
		"sub-ms period": func(c *Config) {
			c.RateLimit.Redis = rc
			c.RateLimit.Default = Rates{{1, time.Microsecond}}
		},
	} {
		c := Config{Runs: e.runs, Files: e.files}
		mut(&c)
		_, err := New(c)
		assert.ErrorIs(t, err, ErrConfig, name)
	}
}

// BenchmarkLimiterCheck compares one check of the same budget in process
// and in Redis on loopback (one script round trip).
func BenchmarkLimiterCheck(b *testing.B) {
	rates := Rates{{1_000_000, time.Second}, {1_000_000, time.Hour}}
	keys := make([]clientKey, 1024)
	for i := range keys {
		keys[i] = clientKey{net: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i / 256), byte(i % 256)}), 32)}
	}
	run := func(b *testing.B, l rateLimiter) {
		ctx := context.Background()
		now := time.Now()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, _, err := l.check(ctx, keys[i&1023], now); err != nil {
				b.Fatal(err)
			}
			i++
		}
	}
	b.Run("in_process", func(b *testing.B) {
		run(b, newBudget(rates, RateLimitConfig{}))
	})
	b.Run("redis", func(b *testing.B) {
		client, prefix := testRedis(b)
		c := RateLimitConfig{Redis: client, RedisPrefix: prefix, RedisTimeout: time.Second}
		run(b, newRedisBudget(newRedisLimits(c), "default", rates, nil))
	})
	b.Run("redis_parallel", func(b *testing.B) {
		// Many requests at once, as a busy server checks them: the
		// round trips overlap on the client's connection pool.
		client, prefix := testRedis(b)
		c := RateLimitConfig{Redis: client, RedisPrefix: prefix, RedisTimeout: time.Second}
		l := newRedisBudget(newRedisLimits(c), "default", rates, nil)
		b.ReportAllocs()
		b.SetParallelism(8)
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			ctx, now := context.Background(), time.Now()
			for pb.Next() {
				if _, _, err := l.check(ctx, keys[n.Add(1)&1023], now); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("redis_with_failover", func(b *testing.B) {
		client, prefix := testRedis(b)
		c := RateLimitConfig{Redis: client, RedisPrefix: prefix, RedisTimeout: time.Second}
		st := &storeState{backend: metrics.BackendRedis, retry: storeRetry, logEvery: storeLogEvery}
		run(b, &failover{shared: newRedisBudget(newRedisLimits(c), "default", rates, nil), local: newBudget(rates, c), st: st})
	})
}

// TestRedisFloodDoesNotStarveKeys: 4000 requests without a valid key, from
// as many addresses (IPv4, and IPv6 each in a /64 of its own) and half with
// made-up keys, race through two servers on one Redis while a valid key
// reads steadily: the key is never refused, and the anonymous total holds
// the whole flood to its budget across both servers.
func TestRedisFloodDoesNotStarveKeys(t *testing.T) {
	client, prefix := testRedis(t)
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Options{Registerer: reg})
	require.NoError(t, err)
	mut := func(c *Config) {
		c.RateLimit.Default = Rates{{5, time.Hour}}
		c.RateLimit.AnonymousTotal = Rates{{100, time.Hour}}
		c.Auth = AuthConfig{Enabled: true, Keys: memKeys(t, testKey), OpenReads: true}
		c.Metrics = m
	}
	a, b := redisEnv(t, client, prefix, mut), redisEnv(t, client, prefix, mut)
	const flood = 4000
	var next, anonOK, keyOK, keyRefused atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if r := []*testEnv{a, b}[i%2].do(t, "GET", "/api/health/live", nil, nil); r.code != 200 {
				t.Errorf("liveness %d", r.code)
			}
		}
	})
	var fl sync.WaitGroup
	for w := range 16 {
		fl.Go(func() {
			e := []*testEnv{a, b}[w%2]
			for {
				i := next.Add(1) - 1
				if i >= flood {
					return
				}
				var h map[string]string
				if i%2 == 0 {
					h = xff(fmt.Sprintf("100.%d.%d.%d", 64+i>>16, (i>>8)&255, i&255))
				} else {
					h = xff(fmt.Sprintf("2001:db8:%x:%x::1", i>>16, i&0xffff))
					h["X-API-Key"] = "dynoai_made_up_key_0123456789"
				}
				if e.do(t, "GET", "/api/runs", nil, h).code != 429 { // 200, or 403 for a made-up key
					anonOK.Add(1)
				}
			}
		})
	}
	// The valid key: five requests of its budget of five, spread over the flood.
	for i := range 5 {
		time.Sleep(50 * time.Millisecond)
		r := []*testEnv{a, b}[i%2].do(t, "GET", "/api/runs", nil, map[string]string{"X-API-Key": testKey, "X-Forwarded-For": "100.64.0.2"})
		if r.code == 200 {
			keyOK.Add(1)
		} else {
			keyRefused.Add(1)
			t.Logf("key refused: %d %s", r.code, r.body)
		}
	}
	fl.Wait()
	close(stop)
	wg.Wait()
	t.Logf("flood of %d over two servers: %d let through (anonymous total 100/hour); valid key %d/5 accepted", flood, anonOK.Load(), keyOK.Load())
	assert.EqualValues(t, 5, keyOK.Load(), "the valid key is never held by the flood")
	assert.Zero(t, keyRefused.Load())
	assert.Zero(t, counter(t, reg, "dynoai_rate_limit_backend_errors_total", "backend", "redis"), "Redis decided every check")
	assert.EqualValues(t, 100, anonOK.Load(), "the anonymous total holds across servers")
}

// moveClock is a clock a test moves, safe for concurrent use.
type moveClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *moveClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *moveClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// doWithin runs f and fails the test if it has not returned within d: a
// hang detector, far from any bound the code under test has.
func doWithin(t *testing.T, d time.Duration, f func() resp) resp {
	t.Helper()
	done := make(chan resp, 1)
	go func() { done <- f() }()
	select {
	case r := <-done:
		return r
	case <-time.After(d):
		t.Fatalf("no answer within %v", d)
		return resp{}
	}
}
