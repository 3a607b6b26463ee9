package httpapi

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynoai/dynoai/authkeys"
	"github.com/dynoai/dynoai/runstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testKey = "dynoai_test_key_1234567890"
	key2    = "dynoai_second_key_12345678"
)

// memKeys is a key store of bare keys (each its own tenant, with read,
// analyze and apply).
func memKeys(t testing.TB, keys ...string) *authkeys.Memory {
	t.Helper()
	entries := make([]authkeys.Entry, len(keys))
	for i, k := range keys {
		entries[i] = authkeys.Entry{Key: k}
	}
	m, err := authkeys.NewMemory(entries...)
	require.NoError(t, err)
	return m
}

func TestAuth(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Auth = AuthConfig{Enabled: true, Keys: memKeys(t, testKey, key2)}
	})
	run := e.analyze(t, map[string]string{"X-API-Key": testKey})
	require.Equal(t, runstore.StatusCompleted, run.Status)
	zero := "00000000000000000000000000000000"

	t.Run("public and reads need no key", func(t *testing.T) {
		for _, p := range []string{"/api/health", "/api/health/live", "/api/health/ready", "/api/openapi.json", "/api/runs", "/api/runs/" + run.ID, "/api/ve-data/" + run.ID} {
			assert.Equal(t, 200, e.get(t, p).code, p)
		}
	})
	mutating := []struct{ method, path string }{
		{"POST", "/api/analyze"},
		{"DELETE", "/api/runs/" + zero},
		{"POST", "/api/runs/" + run.ID + "/apply"},
		{"POST", "/api/runs/" + run.ID + "/dry-run"},
		{"POST", "/api/runs/" + run.ID + "/rollback"},
		{"POST", "/api/runs/" + run.ID + "/tables"},
		{"POST", "/api/jetstream/sync"},
	}
	for _, m := range mutating {
		t.Run(m.method+m.path, func(t *testing.T) {
			r := e.do(t, m.method, m.path, nil, nil)
			assert.Equal(t, 401, r.code)
			assert.Equal(t, authkeys.CodeAuthRequired, r.errCode(t))
			assert.Contains(t, string(r.body), "X-API-Key")
			r = e.do(t, m.method, m.path, nil, map[string]string{"X-API-Key": "invalid_key"})
			assert.Equal(t, 403, r.code)
			assert.Equal(t, authkeys.CodeInvalidAPIKey, r.errCode(t))
			for _, k := range []string{testKey, key2} {
				r = e.do(t, m.method, m.path, nil, map[string]string{"X-API-Key": k})
				assert.NotContains(t, []int{401, 403}, r.code, "valid key %s: %s", k, r.body)
			}
			r = e.do(t, m.method, m.path, nil, map[string]string{"Authorization": "Bearer " + testKey})
			assert.NotContains(t, []int{401, 403}, r.code)
		})
	}
	t.Run("analyze with a valid key is accepted", func(t *testing.T) {
		r := e.upload(t, "a.csv", testLog(t), nil, map[string]string{"X-API-Key": key2})
		assert.Equal(t, 202, r.code)
		e.wait(t, r.json(t)["runId"].(string))
	})
}

func TestAuthReadsAndMetricsProtected(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Auth = AuthConfig{Enabled: true, Keys: memKeys(t, testKey), RequireReads: true, ProtectMetrics: true}
		c.Gatherer = noGatherer{}
	})
	for _, p := range []string{"/api/runs", "/metrics", "/api/jetstream/config"} {
		assert.Equal(t, 401, e.get(t, p).code, p)
		assert.Equal(t, 200, e.do(t, "GET", p, nil, map[string]string{"X-API-Key": testKey}).code, p)
	}
	assert.Equal(t, 200, e.get(t, "/api/health").code, "health stays public")
}

func TestAuthZeroKeysFailsClosed(t *testing.T) {
	for _, keys := range []authkeys.KeyStore{nil, memKeys(t)} {
		e := newEnv(t, func(c *Config) { c.Auth = AuthConfig{Enabled: true, Keys: keys} })
		assert.Equal(t, 401, e.do(t, "POST", "/api/analyze", nil, nil).code)
		assert.Equal(t, 403, e.do(t, "POST", "/api/analyze", nil, map[string]string{"X-API-Key": "anything"}).code)
		assert.Equal(t, 200, e.get(t, "/api/runs").code)
	}
}

func TestAuthDisabledIgnoresKeys(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Auth = AuthConfig{Enabled: false, Keys: memKeys(t, testKey)} })
	for _, h := range []map[string]string{nil, {"X-API-Key": "wrong"}} {
		r := e.upload(t, "a.csv", testLog(t), nil, h)
		assert.Equal(t, 202, r.code)
		e.wait(t, r.json(t)["runId"].(string))
	}
}

// TestKeyRotationInFlight rewrites the keys file while clients hammer a
// protected route: every answer is a clean 2xx/4xx (never a mixture or a
// 5xx), and once the reload is done the old key is refused and the new one
// accepted.
func TestKeyRotationInFlight(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.txt")
	oldKey, newKey := authkeys.Generate(), authkeys.Generate()
	require.NoError(t, os.WriteFile(path, []byte("# keys\n"+oldKey+"\n"), 0o600))
	fs, err := authkeys.OpenFile(path, authkeys.FileOptions{PollInterval: 5 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = fs.Watch(ctx) }()
	e := newEnv(t, func(c *Config) { c.Auth = AuthConfig{Enabled: true, Keys: fs} })
	// A protected, cheap request: DELETE of a run that does not exist is 404
	// when authorised, 403 when not.
	path404 := "/api/runs/00000000000000000000000000000000"
	var stop atomic.Bool
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				for _, k := range []string{oldKey, newKey} {
					req, _ := http.NewRequest("DELETE", e.ts.URL+path404, nil)
					req.Header.Set("X-API-Key", k)
					res, err := e.ts.Client().Do(req)
					if err != nil {
						bad.Add(1)
						continue
					}
					res.Body.Close()
					if res.StatusCode != 404 && res.StatusCode != 403 {
						bad.Add(1)
					}
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, os.WriteFile(path, []byte(newKey+"\n"), 0o600))
	// The watcher picks the change up (it needs two equal reads).
	require.Eventually(t, func() bool {
		return e.do(t, "DELETE", path404, nil, map[string]string{"X-API-Key": newKey}).code == 404
	}, 5*time.Second, 5*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	assert.Zero(t, bad.Load(), "answers other than 403/404 during rotation")
	assert.Equal(t, 403, e.do(t, "DELETE", path404, nil, map[string]string{"X-API-Key": oldKey}).code)
	assert.Equal(t, 404, e.do(t, "DELETE", path404, nil, map[string]string{"X-API-Key": newKey}).code)
	// Explicit Reload applies at once.
	third := authkeys.Generate()
	require.NoError(t, os.WriteFile(path, []byte(third+"\n"), 0o600))
	n, err := fs.Reload(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, 404, e.do(t, "DELETE", path404, nil, map[string]string{"X-API-Key": third}).code)
	assert.Equal(t, 403, e.do(t, "DELETE", path404, nil, map[string]string{"X-API-Key": newKey}).code)
}
