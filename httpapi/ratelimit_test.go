package httpapi

import (
	"fmt"
	"hash/maphash"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/dynoai/dynoai/authkeys"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type noGatherer struct{}

func (noGatherer) Gather() ([]*dto.MetricFamily, error) { return nil, nil }

var _ prometheus.Gatherer = noGatherer{}

func TestParseRates(t *testing.T) {
	cases := []struct {
		in   string
		want Rates
		err  string
	}{
		{"", nil, ""},
		{"100/minute", Rates{{100, time.Minute}}, ""},
		{"5/minute;20/hour", Rates{{5, time.Minute}, {20, time.Hour}}, ""},
		{"5 per 1 minute", nil, "limit 1"},
		{"1 per day", Rates{{1, 24 * time.Hour}}, ""},
		{"3000/Minutes", Rates{{3000, time.Minute}}, ""},
		{"10/30s", Rates{{10, 30 * time.Second}}, ""},
		{" 2/second , 7/hour ", Rates{{2, time.Second}, {7, time.Hour}}, ""},
		{"0/minute", nil, "1..1000000"},
		{"-1/minute", nil, "limit 1"},
		{"5/fortnight", nil, "unit"},
		{"5/minute;x", nil, "limit 2 at byte 9"},
		{";;", nil, "holds no limit"},
		{"1/0s", nil, "unit"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseRates(c.in)
			if c.err != "" {
				require.ErrorIs(t, err, ErrRate)
				assert.Contains(t, err.Error(), c.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
			if got != nil {
				again, err := ParseRates(got.String())
				require.NoError(t, err)
				assert.Equal(t, got, again, "String round-trips")
			}
		})
	}
}

func ck(name string) clientKey { return clientKey{key: authkeys.KeyID(name)} }

func TestLimiterTokenBucket(t *testing.T) {
	l := newLimiter(Rates{{2, time.Second}, {3, time.Minute}}, 0)
	now := time.Unix(1000, 0)
	assert.True(t, l.allow(ck("a"), now).ok)
	assert.True(t, l.allow(ck("a"), now).ok)
	d := l.allow(ck("a"), now)
	assert.False(t, d.ok, "per-second budget spent")
	assert.InDelta(t, 0.5, d.retryAfter.Seconds(), 1e-6)
	assert.True(t, l.allow(ck("b"), now).ok, "another client has its own bucket")
	now = now.Add(time.Second)
	assert.True(t, l.allow(ck("a"), now).ok, "refilled, third of the minute")
	d = l.allow(ck("a"), now)
	assert.False(t, d.ok, "the minute budget holds although the second refilled")
	assert.Greater(t, d.retryAfter, 10*time.Second)
}

// TestLimiterEvictsLeastRecentlyUsed: a full limiter recycles the bucket
// used longest ago for a new client (which starts full) instead of refusing
// it, and never grows past its bound.
func TestLimiterEvictsLeastRecentlyUsed(t *testing.T) {
	l := newLimiter(Rates{{1, time.Hour}}, 32) // one bucket per shard
	now := time.Unix(1000, 0)
	shard := func(k clientKey) uint64 { return maphash.Comparable(l.seed, k) % uint64(len(l.shards)) }
	var same []clientKey
	for i := 0; len(same) < 3; i++ {
		if k := ck("k" + strconv.Itoa(i)); len(same) == 0 || shard(k) == shard(same[0]) {
			same = append(same, k)
		}
	}
	assert.True(t, l.allow(same[0], now).ok)
	assert.False(t, l.allow(same[0], now).ok, "spent")
	assert.True(t, l.allow(same[1], now).ok, "a new client in a full shard gets a bucket")
	assert.True(t, l.allow(same[0], now).ok, "the evicted client starts full again: eviction never hurts it")
	assert.False(t, l.allow(same[0], now).ok)
	assert.True(t, l.allow(same[2], now).ok)
	assert.LessOrEqual(t, l.len(), 32)
	for i := range 10_000 {
		l.allow(ck("flood"+strconv.Itoa(i)), now)
	}
	assert.LessOrEqual(t, l.len(), 32, "bounded")
}

// TestLimiterFloodDoesNotStarve: flooding the limiter with many client
// addresses made every new client, a valid key included, get 429 on uploads
// for up to an hour. Now a full table recycles least recently used buckets,
// and keys have a table of their own: after the flood a new key and a new
// address are served at once.
func TestLimiterFloodDoesNotStarve(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.RateLimit = RateLimitConfig{Enabled: true, Default: Rates{{5, time.Hour}}, Expensive: Rates{{5, time.Hour}}, MaxClients: 320}
		c.Auth = AuthConfig{Enabled: true, Keys: memKeys(t, testKey, key2)}
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	for i := range 5000 {
		h := map[string]string{"X-Forwarded-For": fmt.Sprintf("198.18.%d.%d", i/250, i%250+1), "X-API-Key": authkeys.Generate()}
		r := e.do(t, "POST", "/api/analyze", nil, h)
		require.Contains(t, []int{403, 429}, r.code)
	}
	assert.LessOrEqual(t, e.srv.limExpensive.anonymous.len(), 320)
	assert.Zero(t, e.srv.limExpensive.keyed.len(), "made-up keys never get a key's bucket")
	r := e.upload(t, "a.csv", testLog(t), nil, map[string]string{"X-API-Key": key2, "X-Forwarded-For": "198.18.0.1"})
	assert.Equal(t, 202, r.code, "a valid key is served after the flood: %s", r.body)
	e.wait(t, r.json(t)["run_id"].(string))
	r = e.do(t, "POST", "/api/analyze", nil, map[string]string{"X-Forwarded-For": "203.0.113.200"})
	assert.Equal(t, 401, r.code, "a new address gets a fresh bucket (then needs a key)")
}

// TestIPv6GroupedBy64: the addresses of one IPv6 /64 (which one client can
// use by the billion) share one bucket; another /64 has its own; the
// grouping is configurable.
func TestIPv6GroupedBy64(t *testing.T) {
	for _, tc := range []struct {
		prefix  int
		sharing bool
	}{{0, true}, {128, false}} {
		e := newEnv(t, func(c *Config) {
			c.RateLimit = RateLimitConfig{Enabled: true, Default: Rates{{3, time.Hour}}, IPv6Prefix: tc.prefix}
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		})
		codes := []int{}
		for i := range 6 {
			r := e.do(t, "GET", "/api/runs", nil, map[string]string{"X-Forwarded-For": fmt.Sprintf("2001:db8:1:2:%x::%x", i*7, i+1)})
			codes = append(codes, r.code)
		}
		if tc.sharing {
			assert.Equal(t, []int{200, 200, 200, 429, 429, 429}, codes, "one /64, one bucket")
			assert.Equal(t, 1, e.srv.limDefault.anonymous.len())
		} else {
			assert.Equal(t, []int{200, 200, 200, 200, 200, 200}, codes)
		}
		r := e.do(t, "GET", "/api/runs", nil, map[string]string{"X-Forwarded-For": "2001:db8:1:3::1"})
		assert.Equal(t, 200, r.code, "another /64")
	}
}

// TestAnonymousTotal: requests without a key share one budget on top of
// their own buckets; a key does not draw on it.
func TestAnonymousTotal(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.RateLimit = RateLimitConfig{Enabled: true, Default: Rates{{100, time.Hour}}, AnonymousTotal: Rates{{4, time.Hour}}}
		c.Auth = AuthConfig{Enabled: true, Keys: memKeys(t, testKey), OpenReads: true}
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	var codes []int
	for i := range 6 {
		codes = append(codes, e.do(t, "GET", "/api/runs", nil, map[string]string{"X-Forwarded-For": fmt.Sprintf("192.0.2.%d", i+1)}).code)
	}
	assert.Equal(t, []int{200, 200, 200, 200, 429, 429}, codes)
	assert.Equal(t, 200, e.do(t, "GET", "/api/runs", nil, hdr(testKey)).code)
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	cases := []struct {
		remote string
		xff    []string
		want   string
	}{
		{"203.0.113.7:5000", nil, "203.0.113.7"},
		{"203.0.113.7:5000", []string{"1.2.3.4"}, "203.0.113.7"}, // untrusted peer: header ignored
		{"10.0.0.2:5000", []string{"192.168.1.100, 10.0.0.1"}, "192.168.1.100"},
		{"10.0.0.2:5000", []string{"6.6.6.6, 198.51.100.9"}, "198.51.100.9"}, // rightmost untrusted wins, not a spoofed leftmost
		{"10.0.0.2:5000", []string{"garbage, 10.0.0.5"}, "10.0.0.5"},
		{"10.0.0.2:5000", []string{"7.7.7.7", "198.51.100.1"}, "198.51.100.1"},
		{"10.0.0.2:5000", nil, "10.0.0.2"},
		{"[::1]:80", []string{"2001:db8::1"}, "2001:db8::1"},
		{"[::ffff:203.0.113.9]:80", nil, "203.0.113.9"},
	}
	for _, c := range cases {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		for _, x := range c.xff {
			r.Header.Add("X-Forwarded-For", x)
		}
		assert.Equal(t, c.want, clientIP(r, trusted).String(), "%s %v", c.remote, c.xff)
	}
}

func TestRateLimitHTTP(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.RateLimit = RateLimitConfig{Enabled: true, Default: Rates{{3, time.Minute}}, Expensive: Rates{{1, time.Minute}}}
		c.Auth = AuthConfig{Enabled: true, Keys: memKeys(t, testKey), OpenReads: true}
	})
	for i := range 3 {
		r := e.get(t, "/api/runs")
		require.Equal(t, 200, r.code, "request %d", i)
		assert.Equal(t, strconv.Itoa(2-i), r.header.Get("X-RateLimit-Remaining"))
		assert.Equal(t, "3", r.header.Get("X-RateLimit-Limit"))
	}
	r := e.get(t, "/api/runs")
	require.Equal(t, http.StatusTooManyRequests, r.code)
	assert.Equal(t, CodeRateLimited, r.errCode(t))
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	require.NoError(t, err)
	assert.InDelta(t, 19, ra, 2)
	assert.EqualValues(t, ra, r.json(t)["error"].(map[string]any)["details"].(map[string]any)["retry_after_seconds"])

	t.Run("bypass attempts share the address's bucket", func(t *testing.T) {
		for i, h := range []map[string]string{
			{"X-Forwarded-For": "1.2.3.4"},
			{"X-Forwarded-For": fmt.Sprintf("10.%d.0.1", 9)},
			{"X-API-Key": "made-up-key"},
			{"X-API-Key": authkeys.Generate()},
			{"X-Real-IP": "5.6.7.8"},
		} {
			assert.Equal(t, 429, e.do(t, "GET", "/api/runs", nil, h).code, "attempt %d", i)
		}
	})
	t.Run("health is exempt", func(t *testing.T) {
		for range 5 {
			assert.Equal(t, 200, e.get(t, "/api/health/live").code)
		}
	})
	t.Run("a verified key has its own budget", func(t *testing.T) {
		assert.Equal(t, 200, e.do(t, "GET", "/api/runs", nil, map[string]string{"X-API-Key": testKey}).code)
	})
	t.Run("expensive routes have their own budget", func(t *testing.T) {
		h := map[string]string{"X-API-Key": testKey}
		r := e.upload(t, "a.csv", testLog(t), nil, h)
		require.Equal(t, 202, r.code)
		e.wait(t, r.json(t)["run_id"].(string))
		r = e.upload(t, "a.csv", testLog(t), nil, h)
		assert.Equal(t, 429, r.code)
		assert.Equal(t, "1", r.header.Get("X-RateLimit-Limit"))
		assert.Equal(t, 200, e.do(t, "GET", "/api/runs", nil, h).code, "the default budget is separate")
	})
}

func TestRateLimitTrustedProxy(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.RateLimit = RateLimitConfig{Enabled: true, Default: Rates{{1, time.Hour}}}
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	for _, ip := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
		h := map[string]string{"X-Forwarded-For": ip}
		assert.Equal(t, 200, e.do(t, "GET", "/api/runs", nil, h).code, "%s first", ip)
		assert.Equal(t, 429, e.do(t, "GET", "/api/runs", nil, h).code, "%s second", ip)
	}
	// A client behind the proxy cannot pick its identity by prepending.
	assert.Equal(t, 429, e.do(t, "GET", "/api/runs", nil, map[string]string{"X-Forwarded-For": "203.0.113.50, 198.51.100.1"}).code)
}

func TestCORS(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CORS = CORSConfig{Origins: []string{"https://shop.example"}} })
	r := e.do(t, "GET", "/api/runs", nil, map[string]string{"Origin": "https://shop.example"})
	assert.Equal(t, "https://shop.example", r.header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, r.header.Get("Access-Control-Expose-Headers"), "X-Request-ID")
	assert.Contains(t, r.header.Values("Vary"), "Origin")
	r = e.do(t, "GET", "/api/runs", nil, map[string]string{"Origin": "https://evil.example"})
	assert.Empty(t, r.header.Get("Access-Control-Allow-Origin"))
	pre := map[string]string{"Origin": "https://shop.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "X-API-Key"}
	r = e.do(t, "OPTIONS", "/api/analyze", nil, pre)
	assert.Equal(t, 204, r.code)
	assert.Equal(t, "POST", r.header.Get("Access-Control-Allow-Methods"))
	assert.Contains(t, r.header.Get("Access-Control-Allow-Headers"), "X-API-Key")
	assert.Equal(t, "600", r.header.Get("Access-Control-Max-Age"))
	pre["Origin"] = "https://evil.example"
	r = e.do(t, "OPTIONS", "/api/analyze", nil, pre)
	assert.Equal(t, 403, r.code)
	assert.Empty(t, r.header.Get("Access-Control-Allow-Origin"))
	pre["Origin"] = "https://shop.example"
	pre["Access-Control-Request-Method"] = "DELETE"
	r = e.do(t, "OPTIONS", "/api/analyze", nil, pre)
	assert.Equal(t, 403, r.code)
}

func TestConfigValidation(t *testing.T) {
	_, err := New(Config{})
	require.ErrorIs(t, err, ErrConfig)
	assert.Contains(t, err.Error(), "Runs is required")
	e := newEnv(t, nil)
	base := Config{Runs: e.runs, Files: e.files}
	for name, mut := range map[string]func(*Config){
		"wildcard with auth": func(c *Config) { c.CORS.Origins = []string{"*"}; c.Auth.Enabled = true },
		"origin with path":   func(c *Config) { c.CORS.Origins = []string{"https://a.example/x"} },
		"origin no scheme":   func(c *Config) { c.CORS.Origins = []string{"a.example"} },
		"negative workers":   func(c *Config) { c.Workers = -1 },
		"zero rate":          func(c *Config) { c.RateLimit.Default = Rates{{0, time.Second}} },
	} {
		c := base
		mut(&c)
		_, err := New(c)
		assert.ErrorIs(t, err, ErrConfig, name)
	}
	c := base
	c.CORS = CORSConfig{Origins: []string{"*"}}
	_, err = New(c)
	assert.NoError(t, err, "wildcard without auth is allowed")
}
