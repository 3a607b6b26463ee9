package httpapi

import (
	"bytes"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynoai/dynoai/authkeys"
	"github.com/dynoai/dynoai/runstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	sessKeyAll  = "sk-all-0123456789abcdefghijklmnop"
	sessKeyRead = "sk-read-0123456789abcdefghijklmnop"
)

func sessionEnv(t *testing.T, secret []byte, now func() time.Time, logs *syncBuffer, runs runstore.RunStore) *testEnv {
	t.Helper()
	keys, err := authkeys.NewMemory(authkeys.Entry{Key: sessKeyAll, Tenant: "shop"},
		authkeys.Entry{Key: sessKeyRead, Tenant: "shop", Scopes: authkeys.ScopeRead})
	require.NoError(t, err)
	return newEnv(t, func(c *Config) {
		c.Auth = AuthConfig{Enabled: true, Keys: keys, SessionSecret: secret}
		c.Now = now
		if logs != nil {
			c.Logger = slogNew(logs)
		}
		if runs != nil {
			c.Runs = runs
		}
	})
}

// sessionCookie signs in with key and returns the cookie header value.
func sessionCookie(t *testing.T, e *testEnv, key string) (string, *http.Cookie) {
	t.Helper()
	r := e.postJSON(t, "/api/session", map[string]string{"key": key}, nil)
	require.Equal(t, http.StatusOK, r.code, "%s", r.body)
	cs := (&http.Response{Header: r.header}).Cookies()
	require.Len(t, cs, 1)
	return cs[0].Name + "=" + cs[0].Value, cs[0]
}

func TestSessionCookie(t *testing.T) {
	secret := bytes.Repeat([]byte("s"), 32)
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var offset atomic.Int64 // the clock is read by the server's goroutines too
	clock := func() time.Time { return start.Add(time.Duration(offset.Load())) }
	var logs syncBuffer
	e := sessionEnv(t, secret, clock, &logs, nil)

	// A page without a session learns that it must ask for a key: 200, never an error.
	r := e.get(t, "/api/session")
	require.Equal(t, http.StatusOK, r.code)
	assert.Equal(t, map[string]any{"auth_enabled": true, "open_reads": false, "authenticated": false}, r.json(t))
	assert.Equal(t, http.StatusUnauthorized, e.get(t, "/api/runs").code)

	// Wrong keys are refused like keys anywhere; no cookie is set.
	for _, k := range []string{"wrong-key-0123456789abcdefghij", "dys1.forged.sig"} {
		r = e.postJSON(t, "/api/session", map[string]string{"key": k}, nil)
		assert.Equal(t, http.StatusForbidden, r.code)
		assert.Equal(t, authkeys.CodeInvalidAPIKey, r.errCode(t))
		assert.Empty(t, r.header.Values("Set-Cookie"))
	}
	r = e.postJSON(t, "/api/session", map[string]string{}, nil)
	assert.Equal(t, http.StatusBadRequest, r.code)

	cookie, c := sessionCookie(t, e, sessKeyAll)
	assert.True(t, c.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
	assert.Equal(t, "/", c.Path)
	assert.Equal(t, int((8 * time.Hour).Seconds()), c.MaxAge)
	assert.NotContains(t, c.Value, sessKeyAll)
	hdr := map[string]string{"Cookie": cookie}

	r = e.do(t, "GET", "/api/session", nil, hdr)
	m := r.json(t)
	assert.Equal(t, true, m["authenticated"])
	assert.Equal(t, "shop", m["tenant"])
	assert.Equal(t, []any{"read", "analyze", "apply"}, m["scopes"])
	assert.Equal(t, http.StatusOK, e.do(t, "GET", "/api/runs", nil, hdr).code)
	body, ct := multipartBody(t, "pulls.csv", testLog(t), nil)
	r = e.do(t, "POST", "/api/analyze", body, map[string]string{"Cookie": cookie, "Content-Type": ct})
	assert.Equal(t, http.StatusForbidden, r.code, "a state change with the cookie alone, as a cross-site form would make it")
	assert.Equal(t, CodeForbidden, r.errCode(t))
	body, ct = multipartBody(t, "pulls.csv", testLog(t), nil)
	r = e.do(t, "POST", "/api/analyze", body, map[string]string{"Cookie": cookie, "Content-Type": ct, HeaderRequestedWith: "test"})
	require.Equal(t, http.StatusAccepted, r.code, "%s", r.body)
	run := e.wait(t, r.json(t)["run_id"].(string))
	assert.Equal(t, "shop", run.Tenant, "the session's tenant owns what it makes")

	// A read-only key's session has only the read scope.
	rcookie, _ := sessionCookie(t, e, sessKeyRead)
	assert.Equal(t, http.StatusOK, e.do(t, "GET", "/api/runs/"+run.ID, nil, map[string]string{"Cookie": rcookie}).code)
	r = e.do(t, "DELETE", "/api/runs/"+run.ID, nil, map[string]string{"Cookie": rcookie, HeaderRequestedWith: "test"})
	assert.Equal(t, http.StatusForbidden, r.code)
	assert.Equal(t, authkeys.CodeInsufficientScope, r.errCode(t))

	// A tampered session is refused.
	bad := cookie[:len(cookie)-2] + "xx"
	assert.Equal(t, http.StatusForbidden, e.do(t, "GET", "/api/runs", nil, map[string]string{"Cookie": bad}).code)
	// A key presented beside the cookie wins (and is checked).
	assert.Equal(t, http.StatusForbidden, e.do(t, "GET", "/api/runs", nil,
		map[string]string{"Cookie": cookie, "X-API-Key": "wrong-key-0123456789abcdefghij"}).code)

	// Another replica with the same secret accepts the session; one with
	// another secret does not.
	peer := sessionEnv(t, secret, clock, nil, e.runs)
	assert.Equal(t, http.StatusOK, peer.do(t, "GET", "/api/runs/"+run.ID, nil, hdr).code)
	other := sessionEnv(t, bytes.Repeat([]byte("o"), 32), clock, nil, e.runs)
	assert.Equal(t, http.StatusForbidden, other.do(t, "GET", "/api/runs/"+run.ID, nil, hdr).code)

	// Sessions expire.
	offset.Store(int64(8*time.Hour + time.Second))
	assert.Equal(t, http.StatusForbidden, e.do(t, "GET", "/api/runs", nil, hdr).code)
	assert.Equal(t, false, e.do(t, "GET", "/api/session", nil, hdr).json(t)["authenticated"])

	// Signing out clears the cookie.
	r = e.do(t, "DELETE", "/api/session", nil, hdr)
	require.Equal(t, http.StatusOK, r.code)
	cs := (&http.Response{Header: r.header}).Cookies()
	require.Len(t, cs, 1)
	assert.Equal(t, -1, cs[0].MaxAge)

	// Keys never reach the log.
	assert.NotContains(t, logs.String(), sessKeyAll)
	assert.NotContains(t, logs.String(), sessKeyRead)
	assert.Contains(t, logs.String(), "session started")
}

// TestSessionCookieUnderPrefix: the cookie's path is the base path.
func TestSessionCookieUnderPrefix(t *testing.T) {
	keys, err := authkeys.NewMemory(authkeys.Entry{Key: sessKeyAll})
	require.NoError(t, err)
	e := newEnv(t, func(c *Config) {
		c.Auth = AuthConfig{Enabled: true, Keys: keys, SecureCookie: true}
		c.BasePath = "/dyno"
	})
	r := e.postJSON(t, "/dyno/api/session", map[string]string{"key": sessKeyAll}, nil)
	require.Equal(t, http.StatusOK, r.code)
	cs := (&http.Response{Header: r.header}).Cookies()
	require.Len(t, cs, 1)
	assert.Equal(t, "/dyno/", cs[0].Path)
	assert.True(t, cs[0].Secure)
	assert.Equal(t, http.StatusOK, e.do(t, "GET", "/dyno/api/runs", nil, map[string]string{"Cookie": cs[0].Name + "=" + cs[0].Value}).code)
}

func TestSessionConfig(t *testing.T) {
	_, err := New(Config{Runs: runstore.NewMemory(runstore.Options{}), Files: runstore.NewMemFileStore(),
		Auth: AuthConfig{SessionSecret: []byte("short")}})
	require.ErrorIs(t, err, ErrConfig)
	assert.True(t, strings.Contains(err.Error(), "32"))

	// Without a secret, authentication on: a random one, said in the log.
	var logs syncBuffer
	keys, _ := authkeys.NewMemory(authkeys.Entry{Key: sessKeyAll})
	_, err = New(Config{Runs: runstore.NewMemory(runstore.Options{}), Files: runstore.NewMemFileStore(),
		Auth: AuthConfig{Enabled: true, Keys: keys}, Logger: slogNew(&logs)})
	require.NoError(t, err)
	assert.Contains(t, logs.String(), "no session secret configured")
}

// TestSessionWithoutAuth: with authentication off there is nothing to
// sign in to, and the page is told so.
func TestSessionWithoutAuth(t *testing.T) {
	e := newEnv(t, nil)
	r := e.postJSON(t, "/api/session", map[string]string{"key": "anything"}, nil)
	require.Equal(t, http.StatusOK, r.code)
	assert.Empty(t, r.header.Values("Set-Cookie"))
	m := e.get(t, "/api/session").json(t)
	assert.Equal(t, false, m["auth_enabled"])
	assert.Equal(t, map[string]any{"jetdrive": false, "jetstream": false}, m["features"])
}

// TestSessionEndsWhenItsKeyIsRevoked: a browser session made from a key
// stops working as soon as the key leaves the store (before, it lasted
// until it expired), and follows the key's scopes when they change.
func TestSessionEndsWhenItsKeyIsRevoked(t *testing.T) {
	keys, err := authkeys.NewMemory(authkeys.Entry{Key: sessKeyAll, Tenant: "shop"},
		authkeys.Entry{Key: sessKeyRead, Tenant: "shop", Scopes: authkeys.ScopeRead})
	require.NoError(t, err)
	e := newEnv(t, func(c *Config) {
		c.Auth = AuthConfig{Enabled: true, Keys: keys, SessionSecret: bytes.Repeat([]byte("s"), 32)}
	})
	cookie, _ := sessionCookie(t, e, sessKeyAll)
	hdr := map[string]string{"Cookie": cookie}
	require.Equal(t, http.StatusOK, e.do(t, "GET", "/api/runs", nil, hdr).code)

	// The key loses the apply scope: its session does too.
	require.NoError(t, keys.Set(authkeys.Entry{Key: sessKeyAll, Tenant: "shop", Scopes: authkeys.ScopeRead},
		authkeys.Entry{Key: sessKeyRead, Tenant: "shop", Scopes: authkeys.ScopeRead}))
	assert.Equal(t, []any{"read"}, e.do(t, "GET", "/api/session", nil, hdr).json(t)["scopes"])
	r := e.do(t, "DELETE", "/api/runs/0123456789abcdef0123456789abcdef", nil, map[string]string{"Cookie": cookie, HeaderRequestedWith: "test"})
	assert.Equal(t, authkeys.CodeInsufficientScope, r.errCode(t))

	// The key is revoked: the session ends at once, and says so.
	require.True(t, keys.Remove(authkeys.IDOf(sessKeyAll)))
	r = e.do(t, "GET", "/api/runs", nil, hdr)
	assert.Equal(t, http.StatusForbidden, r.code)
	assert.Equal(t, authkeys.CodeInvalidAPIKey, r.errCode(t))
	assert.Equal(t, false, e.do(t, "GET", "/api/session", nil, hdr).json(t)["authenticated"])
	// The other key's session is untouched.
	other, _ := sessionCookie(t, e, sessKeyRead)
	assert.Equal(t, http.StatusOK, e.do(t, "GET", "/api/runs", nil, map[string]string{"Cookie": other}).code)
}
