package main

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"time"

	"github.com/dynoai/dynoai/internal/services"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRateStorageSettings(t *testing.T) {
	load := func(env map[string]string) (settings, error) {
		environ, lookup := lookupOf(env)
		return loadSettings(environ, lookup)
	}
	s, err := load(nil)
	require.NoError(t, err)
	assert.Nil(t, s.RateRedis, "memory:// by default")
	assert.False(t, s.RateFailClosed, "fail open by default")

	s, err = load(map[string]string{"RATE_LIMIT_STORAGE": "redis://:s3cret@127.0.0.1:6390/2", "RATE_LIMIT_REDIS_FAILURE": "closed"})
	require.NoError(t, err)
	require.NotNil(t, s.RateRedis)
	assert.Equal(t, "127.0.0.1:6390", s.RateRedis.Addr)
	assert.Equal(t, 2, s.RateRedis.DB)
	assert.Equal(t, "s3cret", s.RateRedis.Password)
	assert.True(t, s.RateRedis.ContextTimeoutEnabled, "checks stop at their deadline")
	assert.True(t, s.RateFailClosed)
	assert.Equal(t, 100*time.Millisecond, s.RateTimeout, "the default")
	assert.Equal(t, "redis://127.0.0.1:6390/2", redisAddr(s.RateRedis), "logged without the password")

	s, err = load(map[string]string{"RATE_LIMIT_STORAGE": "rediss://cache.example:6380/0"})
	require.NoError(t, err)
	assert.NotNil(t, s.RateRedis.TLSConfig)
	assert.Equal(t, "rediss://cache.example:6380/0", redisAddr(s.RateRedis))

	s, err = load(map[string]string{"RATE_LIMIT_STORAGE": "unix:///run/redis/redis.sock?db=1"})
	require.NoError(t, err)
	assert.Equal(t, "unix", s.RateRedis.Network)
	assert.Equal(t, "/run/redis/redis.sock", s.RateRedis.Addr)
	assert.Equal(t, 1, s.RateRedis.DB)

	for v, want := range map[string]string{
		"memcached://x":                  `scheme "memcached"`,
		"redis-server:6379":              "want memory://",
		"redis://:s3cret@h:6379/x":       "invalid database number",
		"redis://:s3cret@h:6379/1/2":     "invalid URL path",
		"redis://:s3cret@h:6379/0?db=zz": "RATE_LIMIT_STORAGE",
		"redis://:s3cret@[::1:6379/0":    "not a valid URL",
	} {
		_, err := load(map[string]string{"RATE_LIMIT_STORAGE": v})
		require.Error(t, err, v)
		assert.Contains(t, err.Error(), "RATE_LIMIT_STORAGE")
		assert.Contains(t, err.Error(), want, v)
		assert.NotContains(t, err.Error(), "s3cret", "the password never appears")
	}
	s, err = load(map[string]string{"RATE_LIMIT_STORAGE": "redis://h:6379/0", "RATE_LIMIT_REDIS_TIMEOUT": "250ms"})
	require.NoError(t, err)
	assert.Equal(t, 250*time.Millisecond, s.RateTimeout)
	for _, v := range []string{"0", "100", "20s", "500us"} {
		_, err = load(map[string]string{"RATE_LIMIT_REDIS_TIMEOUT": v})
		assert.ErrorContains(t, err, "RATE_LIMIT_REDIS_TIMEOUT", v)
	}
	_, err = load(map[string]string{"RATE_LIMIT_REDIS_FAILURE": "closed"})
	assert.ErrorContains(t, err, "RATE_LIMIT_REDIS_FAILURE: closed needs RATE_LIMIT_STORAGE=redis://")
	_, err = load(map[string]string{"RATE_LIMIT_STORAGE": "redis://h:6379/0", "RATE_LIMIT_REDIS_FAILURE": "sideways"})
	assert.ErrorContains(t, err, `RATE_LIMIT_REDIS_FAILURE: "sideways" is not open or closed`)
}

// TestRedisRateLimitWiring runs two servers on one Redis (database 3 of
// $DYNOAI_TEST_REDIS_URL's server, emptied first): a client's limit holds
// across both, and health names Redis.
func TestRedisRateLimitWiring(t *testing.T) {
	base := services.Need(t, "DYNOAI_TEST_REDIS_URL", "Redis tests; run .ci/redis.sh as root, then source /tmp/dynoai-ci-redis.env")
	u, err := url.Parse(base)
	require.NoError(t, err)
	u.Path = "/3"
	o, err := redis.ParseURL(u.String())
	require.NoError(t, err)
	c := redis.NewClient(o)
	defer c.Close()
	require.NoError(t, c.FlushDB(context.Background()).Err())

	env := map[string]string{"DYNOAI_PORT": "0", "RATE_LIMIT_DEFAULT": "3/hour", "RATE_LIMIT_STORAGE": u.String()}
	env["DYNOAI_DATA_DIR"] = t.TempDir()
	a, stopA := start(t, env)
	defer func() { require.NoError(t, stopA()) }()
	env["DYNOAI_DATA_DIR"] = t.TempDir()
	b, stopB := start(t, env)
	defer func() { require.NoError(t, stopB()) }()

	var codes []int
	for i := range 6 {
		res, err := http.Get([]string{a, b}[i%2] + "/api/runs")
		require.NoError(t, err)
		res.Body.Close()
		codes = append(codes, res.StatusCode)
	}
	assert.Equal(t, []int{200, 200, 200, 429, 429, 429}, codes, "one budget for both servers")
	code, h := getJSON(t, a+"/api/health", nil)
	assert.Equal(t, 200, code)
	assert.Contains(t, toJSON(h["components"]), `"name":"redis","status":"healthy"`)
	keys, err := c.Keys(context.Background(), "dynoai:rl:*").Result()
	require.NoError(t, err)
	assert.NotEmpty(t, keys, "the buckets are in Redis")
}
