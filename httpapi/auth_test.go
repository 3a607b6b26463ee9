package httpapi

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynoai/dynoai/authkeys"
	"github.com/dynoai/dynoai/jetstream"
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

func hdr(key string) map[string]string { return map[string]string{"X-API-Key": key} }

// Keys of TestOwnershipAndScopes: two shops, a reader and an admin.
var (
	keyShopA    = authkeys.Entry{Key: "dynoai_shop_a_key_0123456789", Tenant: "shop-a"}
	keyShopB    = authkeys.Entry{Key: "dynoai_shop_b_key_0123456789", Tenant: "shop-b"}
	keyReaderA  = authkeys.Entry{Key: "dynoai_shop_a_reader_012345", Tenant: "shop-a", Scopes: authkeys.ScopeRead}
	keyAnalyzeA = authkeys.Entry{Key: "dynoai_shop_a_analyze_01234", Tenant: "shop-a",
		Scopes: authkeys.ScopeRead | authkeys.ScopeAnalyze}
	keyAdmin   = authkeys.Entry{Key: "dynoai_admin_key_0123456789", Tenant: "ops", Scopes: authkeys.ScopeAdmin}
	keyDefault = authkeys.Entry{Key: "dynoai_default_key_01234567", Tenant: DefaultTenant}
)

func tenantKeys(t testing.TB) *authkeys.Memory {
	t.Helper()
	m, err := authkeys.NewMemory(keyShopA, keyShopB, keyReaderA, keyAnalyzeA, keyAdmin, keyDefault)
	require.NoError(t, err)
	return m
}

// TestOwnershipAndScopes: any valid key could read and delete any other
// key's runs. Now a run belongs to the tenant of the key that made it;
// another tenant's key gets 404 on every read, download, delete, apply and
// rollback of it and does not see it listed; admin sees all; and each route
// needs its scope.
func TestOwnershipAndScopes(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Auth = AuthConfig{Enabled: true, Keys: tenantKeys(t)} })
	ctx := context.Background()
	run := e.analyze(t, hdr(keyShopA.Key))
	require.Equal(t, runstore.StatusCompleted, run.Status)
	assert.Equal(t, "shop-a", run.Tenant, "the run records the tenant that made it")
	files, err := e.runs.Files(ctx, run.ID)
	require.NoError(t, err)
	fileURL := "/api/runs/" + run.ID + "/files/" + strconv.FormatInt(files[0].ID, 10)
	reads := []string{"/api/runs/" + run.ID, "/api/runs/" + run.ID + "/files", fileURL,
		"/api/download/" + run.ID + "/" + files[0].Name, "/api/ve-data/" + run.ID, "/api/diagnostics/" + run.ID,
		"/api/status/" + run.ID}
	writes := []struct{ method, path, body string }{
		{"DELETE", "/api/runs/" + run.ID, ""},
		{"POST", "/api/runs/" + run.ID + "/apply", `{"base_file_id":1}`},
		{"POST", "/api/runs/" + run.ID + "/dry-run", `{"base_file_id":1}`},
		{"POST", "/api/runs/" + run.ID + "/rollback", `{"cylinder":"front"}`},
		{"POST", "/api/apply", `{"run_id":"` + run.ID + `","base_file_id":1}`},
		{"POST", "/api/rollback", `{"run_id":"` + run.ID + `"}`},
	}
	listed := func(key string) []any {
		r := e.do(t, "GET", "/api/runs", nil, hdr(key))
		require.Equal(t, 200, r.code, "%s", r.body)
		return r.json(t)["runs"].([]any)
	}

	t.Run("another tenant sees nothing", func(t *testing.T) {
		for _, p := range reads {
			r := e.do(t, "GET", p, nil, hdr(keyShopB.Key))
			assert.Equal(t, 404, r.code, "%s: %s", p, r.body)
			assert.Equal(t, CodeNotFound, r.errCode(t))
		}
		for _, w := range writes {
			h := hdr(keyShopB.Key)
			h["Content-Type"] = "application/json"
			r := e.do(t, w.method, w.path, strings.NewReader(w.body), h)
			assert.Equal(t, 404, r.code, "%s %s: %s", w.method, w.path, r.body)
		}
		assert.Empty(t, listed(keyShopB.Key))
		_, err := e.runs.Get(ctx, run.ID)
		require.NoError(t, err, "the run is still there")
	})
	t.Run("the owner's keys see it", func(t *testing.T) {
		for _, k := range []string{keyShopA.Key, keyReaderA.Key} {
			for _, p := range reads {
				r := e.do(t, "GET", p, nil, hdr(k))
				assert.Equal(t, 200, r.code, "%s: %s", p, r.body)
			}
			assert.Len(t, listed(k), 1)
		}
	})
	t.Run("scopes", func(t *testing.T) {
		// A reader may not upload, delete or apply; an analyzer may not apply.
		r := e.upload(t, "a.csv", testLog(t), nil, hdr(keyReaderA.Key))
		assert.Equal(t, 403, r.code)
		assert.Equal(t, authkeys.CodeInsufficientScope, r.errCode(t))
		r = e.do(t, "DELETE", "/api/runs/"+run.ID, nil, hdr(keyReaderA.Key))
		assert.Equal(t, 403, r.code)
		for _, k := range []string{keyReaderA.Key, keyAnalyzeA.Key} {
			r = e.postJSON(t, "/api/runs/"+run.ID+"/dry-run", map[string]any{"base_file_id": 1}, hdr(k))
			assert.Equal(t, 403, r.code, "%s", r.body)
			assert.Equal(t, authkeys.CodeInsufficientScope, r.errCode(t))
		}
		r = e.do(t, "GET", "/metrics", nil, hdr(keyShopA.Key))
		assert.Equal(t, 404, r.code, "no gatherer: no /metrics route")
	})
	t.Run("admin sees and deletes every tenant's runs", func(t *testing.T) {
		other := e.analyze(t, hdr(keyShopB.Key))
		assert.Len(t, listed(keyAdmin.Key), 2)
		assert.Len(t, listed(keyShopA.Key), 1)
		for _, p := range reads {
			assert.Equal(t, 200, e.do(t, "GET", p, nil, hdr(keyAdmin.Key)).code, p)
		}
		assert.Equal(t, 204, e.do(t, "DELETE", "/api/runs/"+other.ID, nil, hdr(keyAdmin.Key)).code)
		assert.Equal(t, 204, e.do(t, "DELETE", "/api/runs/"+run.ID, nil, hdr(keyShopA.Key)).code, "the owner may delete")
	})
}

// TestDefaultTenantOwnsUnownedRuns: runs made without a key (before
// authentication, by Jetstream or an import, or stored before tenants
// existed) belong to the default tenant: its keys and admin see them,
// other tenants do not.
func TestDefaultTenantOwnsUnownedRuns(t *testing.T) {
	for _, def := range []string{"", "garage-1"} {
		keyOfDefault := keyDefault
		if def != "" {
			keyOfDefault.Tenant = def
		}
		keys, err := authkeys.NewMemory(keyShopA, keyOfDefault, keyAdmin)
		require.NoError(t, err)
		e := newEnv(t, func(c *Config) { c.Auth = AuthConfig{Enabled: true, Keys: keys, DefaultTenant: def} })
		unowned, err := e.runs.Create(context.Background(), runstore.NewRun{Source: runstore.SourceJetstream, Filename: "js.csv"})
		require.NoError(t, err)
		for key, want := range map[string]int{keyOfDefault.Key: 200, keyAdmin.Key: 200, keyShopA.Key: 404} {
			assert.Equal(t, want, e.do(t, "GET", "/api/runs/"+unowned.ID, nil, hdr(key)).code, "default %q", def)
		}
	}
}

// TestReadsClosedByDefault: with authentication on, reads (logs, results,
// health details, Jetstream config and status, /metrics) were open. Now
// only liveness, readiness and the API document are, and they say nothing
// about the server.
func TestReadsClosedByDefault(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Auth = AuthConfig{Enabled: true, Keys: tenantKeys(t)}
		c.Gatherer = noGatherer{}
		c.Jetstream = &fakeJS{}
		c.JetstreamConfig = jetstream.Config{APIURL: "https://api.example", APIKey: "js-secret-key-123-abcd"}
	})
	run := e.analyze(t, hdr(keyShopA.Key))
	for _, p := range []string{"/api/runs", "/api/runs/" + run.ID, "/api/ve-data/" + run.ID, "/api/status/" + run.ID,
		"/api/health", "/metrics", "/api/jetstream/config", "/api/jetstream/status"} {
		r := e.get(t, p)
		assert.Equal(t, 401, r.code, "%s: %s", p, r.body)
		assert.Equal(t, authkeys.CodeAuthRequired, r.errCode(t))
	}
	for _, p := range []string{"/api/health/live", "/api/health/ready", "/api/openapi.json"} {
		assert.Equal(t, 200, e.get(t, p).code, p)
	}
	assert.JSONEq(t, `{"status":"alive"}`, string(e.get(t, "/api/health/live").body))
	assert.JSONEq(t, `{"status":"ready"}`, string(e.get(t, "/api/health/ready").body))
	// /metrics needs admin; health details need read.
	assert.Equal(t, 403, e.do(t, "GET", "/metrics", nil, hdr(keyShopA.Key)).code)
	assert.Equal(t, 200, e.do(t, "GET", "/metrics", nil, hdr(keyAdmin.Key)).code)
	assert.Equal(t, 200, e.do(t, "GET", "/api/health", nil, hdr(keyReaderA.Key)).code)
}

// TestOpenReadsAndMetrics: reads and /metrics open only when configured
// so; a reader without a key then sees the default tenant's runs only.
func TestOpenReadsAndMetrics(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Auth = AuthConfig{Enabled: true, Keys: tenantKeys(t), OpenReads: true, OpenMetrics: true}
		c.Gatherer = noGatherer{}
	})
	mine := e.analyze(t, hdr(keyShopA.Key))
	unowned, err := e.runs.Create(context.Background(), runstore.NewRun{Source: runstore.SourceJetstream})
	require.NoError(t, err)
	assert.Equal(t, 200, e.get(t, "/metrics").code)
	assert.Equal(t, 200, e.get(t, "/api/runs/"+unowned.ID).code)
	assert.Equal(t, 404, e.get(t, "/api/runs/"+mine.ID).code, "another tenant's run is not opened")
	runs := e.get(t, "/api/runs").json(t)["runs"].([]any)
	assert.Len(t, runs, 1)
	// A presented key still counts (and a wrong one is refused).
	assert.Equal(t, 200, e.do(t, "GET", "/api/runs/"+mine.ID, nil, hdr(keyShopA.Key)).code)
	assert.Equal(t, 403, e.do(t, "GET", "/api/runs", nil, hdr("dynoai_wrong_key_0123456789")).code)
	// Writes still need a key.
	assert.Equal(t, 401, e.upload(t, "a.csv", testLog(t), nil, nil).code)
}

// TestUpstreamDetailAdminOnly: Jetstream's key showed 8 of its characters
// and upstream errors were shown to anyone. Now the key shows at most its
// last 4, and upstream error text only to admin; live data and Jetstream
// belong to the default tenant.
func TestUpstreamDetailAdminOnly(t *testing.T) {
	js := &fakeJS{statusErr: "GET https://api.example/runs: 401 token js-secret-key-123-abcd expired"}
	e := newEnv(t, func(c *Config) {
		c.Auth = AuthConfig{Enabled: true, Keys: tenantKeys(t)}
		c.Jetstream = js
		c.JetstreamConfig = jetstream.Config{APIURL: "https://api.example", APIKey: "js-secret-key-123-abcd"}
	})
	cfg := e.do(t, "GET", "/api/jetstream/config", nil, hdr(keyDefault.Key))
	require.Equal(t, 200, cfg.code)
	assert.Equal(t, "********abcd", cfg.json(t)["api_key"])
	st := e.do(t, "GET", "/api/jetstream/status", nil, hdr(keyDefault.Key)).json(t)
	assert.Equal(t, "the last poll failed", st["error"])
	st = e.do(t, "GET", "/api/jetstream/status", nil, hdr(keyAdmin.Key)).json(t)
	assert.Equal(t, js.statusErr, st["error"])
	for _, p := range []string{"/api/jetstream/status", "/api/jetstream/config"} {
		r := e.do(t, "GET", p, nil, hdr(keyShopA.Key))
		assert.Equal(t, 403, r.code, p)
		assert.Equal(t, CodeForbidden, r.errCode(t))
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Auth = AuthConfig{Enabled: true, Keys: memKeys(t, testKey, key2)}
	})
	run := e.analyze(t, hdr(testKey))
	require.Equal(t, runstore.StatusCompleted, run.Status)
	zero := "00000000000000000000000000000000"

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
			r = e.do(t, m.method, m.path, nil, hdr("invalid_key_0123456789abcdef"))
			assert.Equal(t, 403, r.code)
			assert.Equal(t, authkeys.CodeInvalidAPIKey, r.errCode(t))
			for _, k := range []string{testKey, key2} {
				r = e.do(t, m.method, m.path, nil, hdr(k))
				assert.NotContains(t, []int{401}, r.code, "valid key %s: %s", k, r.body)
				if r.code == 403 {
					assert.NotEqual(t, authkeys.CodeInvalidAPIKey, r.errCode(t))
				}
			}
			r = e.do(t, m.method, m.path, nil, map[string]string{"Authorization": "Bearer " + testKey})
			assert.NotContains(t, []int{401}, r.code)
		})
	}
	t.Run("analyze with a valid key is accepted", func(t *testing.T) {
		r := e.upload(t, "a.csv", testLog(t), nil, hdr(key2))
		assert.Equal(t, 202, r.code)
		e.wait(t, r.json(t)["run_id"].(string))
	})
}

func TestAuthZeroKeysFailsClosed(t *testing.T) {
	for _, keys := range []authkeys.KeyStore{nil, memKeys(t)} {
		e := newEnv(t, func(c *Config) { c.Auth = AuthConfig{Enabled: true, Keys: keys} })
		assert.Equal(t, 401, e.do(t, "POST", "/api/analyze", nil, nil).code)
		assert.Equal(t, 403, e.do(t, "POST", "/api/analyze", nil, hdr("anything_0123456789abcdefgh")).code)
		assert.Equal(t, 401, e.get(t, "/api/runs").code)
	}
}

func TestAuthDisabledIgnoresKeys(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Auth = AuthConfig{Enabled: false, Keys: memKeys(t, testKey)} })
	for _, h := range []map[string]string{nil, {"X-API-Key": "wrong"}} {
		r := e.upload(t, "a.csv", testLog(t), nil, h)
		assert.Equal(t, 202, r.code)
		run := e.wait(t, r.json(t)["run_id"].(string))
		assert.Empty(t, run.Tenant, "runs made without authentication belong to the default tenant")
	}
	assert.Equal(t, 200, e.get(t, "/api/runs").code)
	assert.Equal(t, 200, e.get(t, "/api/health").code)
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
	var bad, rounds atomic.Int64
	// more waits until the clients have made n more rounds of requests.
	more := func(n int64) {
		t.Helper()
		after := rounds.Load()
		require.Eventually(t, func() bool { return rounds.Load() >= after+n }, time.Minute, time.Millisecond)
	}
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
				rounds.Add(1)
			}
		}()
	}
	more(20) // the clients are at work before the rotation
	require.NoError(t, os.WriteFile(path, []byte(newKey+"\n"), 0o600))
	// The watcher picks the change up (it needs two equal reads).
	require.Eventually(t, func() bool {
		return e.do(t, "DELETE", path404, nil, hdr(newKey)).code == 404
	}, 5*time.Second, 5*time.Millisecond)
	more(20) // and after it
	stop.Store(true)
	wg.Wait()
	assert.Zero(t, bad.Load(), "answers other than 403/404 during rotation")
	assert.Equal(t, 403, e.do(t, "DELETE", path404, nil, hdr(oldKey)).code)
	assert.Equal(t, 404, e.do(t, "DELETE", path404, nil, hdr(newKey)).code)
	// Explicit Reload applies at once.
	third := authkeys.Generate()
	require.NoError(t, os.WriteFile(path, []byte(third+"\n"), 0o600))
	n, err := fs.Reload(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, 404, e.do(t, "DELETE", path404, nil, hdr(third)).code)
	assert.Equal(t, 403, e.do(t, "DELETE", path404, nil, hdr(newKey)).code)
}
