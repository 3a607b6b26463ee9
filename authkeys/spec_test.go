package authkeys

// The numbered cases of server-spec §2.2: every check of the predecessor's
// tests/api/test_api_authentication.py (1-17) and test_authentication.py
// (18-30), expressed against this package's API.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// K pads a readable test key name to MinKeyLen characters: keys shorter
// than that are refused (the predecessor's tests used "key1").
func K(name string) string {
	if len(name) >= MinKeyLen {
		return name
	}
	return name + "-" + strings.Repeat("x", MinKeyLen-len(name)-1)
}

// mem builds a Memory of bare keys (own tenant, default scopes).
func mem(t testing.TB, keys ...string) *Memory {
	t.Helper()
	entries := make([]Entry, len(keys))
	for i, k := range keys {
		entries[i] = Entry{Key: k}
	}
	m, err := NewMemory(entries...)
	require.NoError(t, err)
	return m
}

// envMap is a lookup function over a map, standing in for the environment.
type envMap map[string]string

func (m envMap) lookup(k string) (string, bool) { v, ok := m[k]; return v, ok }

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func valid(t *testing.T, s KeyStore, key string) bool {
	t.Helper()
	_, err := s.Verify(context.Background(), key)
	return err == nil
}

// successHandler is the protected route of the predecessor's tests.
var successHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"message":"success"}`))
})

func do(t *testing.T, h http.Handler, method string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, "/api/apply", nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func envelope(t *testing.T, rec *httptest.ResponseRecorder) EnvelopeError {
	t.Helper()
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type")) // case 29: exactly
	var env Envelope
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &env), rec.Body.String())
	assert.NotEmpty(t, env.Error.Code)
	assert.NotEmpty(t, env.Error.Message)
	return env.Error
}

func TestSpecConfig(t *testing.T) {
	t.Run("1 empty environment: disabled, 0 keys", func(t *testing.T) {
		s, err := LoadEnv(envMap{}.lookup, FileOptions{})
		require.NoError(t, err)
		assert.False(t, s.Enabled)
		assert.Equal(t, 0, s.Store.Len())
		assert.Nil(t, s.File)
	})
	t.Run("2/18 API_AUTH_ENABLED=true enables", func(t *testing.T) {
		for _, v := range []string{"true", "TRUE", "1", "yes", "on"} {
			s, err := LoadEnv(envMap{EnvEnabled: v}.lookup, FileOptions{})
			require.NoError(t, err, v)
			assert.True(t, s.Enabled, v)
		}
		// Unlike the predecessor, a malformed flag is an error, not "off".
		_, err := LoadEnv(envMap{EnvEnabled: "ture"}.lookup, FileOptions{})
		require.ErrorIs(t, err, ErrNotBool)
		assert.Contains(t, err.Error(), EnvEnabled)
	})
	t.Run("3/19 API_KEYS=key1,key2,key3", func(t *testing.T) {
		s, err := LoadEnv(envMap{EnvEnabled: "true", EnvKeys: K("key1") + "," + K("key2") + "," + K("key3")}.lookup, FileOptions{})
		require.NoError(t, err)
		assert.Equal(t, 3, s.Store.Len())
		for _, k := range []string{K("key1"), K("key2"), K("key3")} {
			assert.True(t, valid(t, s.Store, k), k)
		}
		assert.False(t, valid(t, s.Store, K("invalid")))
	})
	t.Run("4/21 keys file with comment and blank line", func(t *testing.T) {
		p := writeFile(t, t.TempDir(), "keys.txt", K("file_key1")+"\n"+K("file_key2")+"\n# Comment line\n\n"+K("file_key3")+"\n")
		s, err := LoadEnv(envMap{EnvKeysFile: p}.lookup, FileOptions{})
		require.NoError(t, err)
		assert.Equal(t, 3, s.Store.Len())
		for _, k := range []string{K("file_key1"), K("file_key2"), K("file_key3")} {
			assert.True(t, valid(t, s.Store, k), k)
		}
		assert.False(t, valid(t, s.Store, "# Comment line"))
		assert.False(t, valid(t, s.Store, "# comment line"))
	})
	t.Run("5/22 env and file union", func(t *testing.T) {
		p := writeFile(t, t.TempDir(), "keys.txt", K("file_key")+"\n")
		s, err := LoadEnv(envMap{EnvKeys: K("env_key"), EnvKeysFile: p}.lookup, FileOptions{})
		require.NoError(t, err)
		assert.Equal(t, 2, s.Store.Len())
		assert.True(t, valid(t, s.Store, K("env_key")))
		assert.True(t, valid(t, s.Store, K("file_key")))
	})
	t.Run("20 stored keys trimmed, presented key not", func(t *testing.T) {
		s, err := LoadEnv(envMap{EnvKeys: " " + K("key1") + " , " + K("key2") + " , " + K("key3") + " "}.lookup, FileOptions{})
		require.NoError(t, err)
		assert.True(t, valid(t, s.Store, K("key1")))
		assert.False(t, valid(t, s.Store, " "+K("key1")+" "))
	})
	t.Run("keys file set but missing is a startup error", func(t *testing.T) {
		_, err := LoadEnv(envMap{EnvKeysFile: filepath.Join(t.TempDir(), "nope")}.lookup, FileOptions{})
		require.ErrorIs(t, err, os.ErrNotExist)
		assert.Contains(t, err.Error(), EnvKeysFile)
	})
}

func TestSpecValidate(t *testing.T) {
	ctx := context.Background()
	t.Run("7 enabled + valid_key", func(t *testing.T) {
		id, err := mem(t, K("valid_key")).Verify(ctx, K("valid_key"))
		require.NoError(t, err)
		assert.Equal(t, IDOf(K("valid_key")), id.ID)
		assert.Equal(t, OwnTenant(id.ID), id.Tenant, "a bare key is its own tenant")
		assert.Equal(t, DefaultScopes, id.Scopes, "with read, analyze and apply")
	})
	t.Run("8 invalid and empty rejected", func(t *testing.T) {
		m := mem(t, K("valid_key"))
		_, err := m.Verify(ctx, K("invalid_key"))
		assert.ErrorIs(t, err, ErrInvalid)
		_, err = m.Verify(ctx, "")
		assert.ErrorIs(t, err, ErrMissing)
	})
	t.Run("zero keys fail closed", func(t *testing.T) {
		for _, s := range []KeyStore{mem(t), &Memory{}, NewMulti(), NewMulti(mem(t))} {
			_, err := s.Verify(ctx, K("anything"))
			assert.ErrorIs(t, err, ErrNoKeys)
			assert.ErrorIs(t, err, ErrInvalid)
		}
	})
	t.Run("16/30 no global: stores are independent", func(t *testing.T) {
		// The predecessor had a singleton with a reset hook; here each
		// store is a value and "reset" is building a new one.
		a, b := mem(t, K("k1")), mem(t, K("k1"))
		require.NoError(t, a.Set(Entry{Key: K("k2")}))
		assert.True(t, valid(t, b, K("k1")))
		assert.False(t, valid(t, a, K("k1")))
	})
	t.Run("25 reload after env change", func(t *testing.T) {
		env := envMap{EnvKeys: K("key1")}
		e, err := NewEnv("", env.lookup)
		require.NoError(t, err)
		assert.False(t, valid(t, e, K("key2")))
		env[EnvKeys] = K("key1") + "," + K("key2")
		n, err := e.Reload(ctx)
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		assert.True(t, valid(t, e, K("key2")))
	})
	t.Run("10 reload of a rewritten file", func(t *testing.T) {
		dir := t.TempDir()
		p := writeFile(t, dir, "keys.txt", K("initial_key")+"\n")
		f, err := OpenFile(p, FileOptions{})
		require.NoError(t, err)
		assert.Equal(t, 1, f.Len())
		writeFile(t, dir, "keys.txt", K("initial_key")+"\n"+K("new_key")+"\n")
		n, err := f.Reload(ctx)
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		assert.True(t, valid(t, f, K("new_key")))
	})
}

func TestSpecGenerate(t *testing.T) {
	// 9, 15: prefix, length > 20, two calls differ.
	a, b := Generate(), Generate()
	assert.True(t, strings.HasPrefix(a, Prefix))
	assert.Len(t, a, 50)
	assert.Greater(t, len(a), 20)
	assert.NotEqual(t, a, b)
	assert.Regexp(t, `^dynoai_[A-Za-z0-9_-]{43}$`, a)
	// 24: 100 generated keys are distinct.
	keys, err := GenerateN(100)
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, k := range keys {
		assert.False(t, seen[k])
		seen[k] = true
	}
	assert.Len(t, seen, 100)
	for _, n := range []int{0, -1, MaxGenerate + 1} {
		_, err := GenerateN(n)
		assert.ErrorIs(t, err, ErrCount, n)
	}
}

func TestSpecMiddleware(t *testing.T) {
	store := mem(t, K("key1"), K("key2"), K("key3"))
	protected := Middleware(store, Options{})(successHandler)

	t.Run("6/11/23/26 disabled passes everything", func(t *testing.T) {
		h := Middleware(store, Options{Disabled: true})(successHandler)
		for _, hdr := range []map[string]string{nil, {HeaderAPIKey: K("any_key")}, {HeaderAPIKey: ""}} {
			rec := do(t, h, http.MethodPost, hdr)
			assert.Equal(t, http.StatusOK, rec.Code)
			assert.JSONEq(t, `{"message":"success"}`, rec.Body.String())
		}
	})
	t.Run("12/26 no header -> 401 AUTH_REQUIRED naming X-API-Key", func(t *testing.T) {
		rec := do(t, protected, http.MethodGet, nil)
		assert.Equal(t, http.StatusUnauthorized, rec.Code)
		e := envelope(t, rec)
		assert.Equal(t, CodeAuthRequired, e.Code)
		assert.Contains(t, e.Message, "X-API-Key")
		assert.NotEmpty(t, rec.Header().Get("WWW-Authenticate"))
	})
	t.Run("empty header -> 401", func(t *testing.T) {
		rec := do(t, protected, http.MethodGet, map[string]string{HeaderAPIKey: ""})
		assert.Equal(t, http.StatusUnauthorized, rec.Code)
	})
	t.Run("13 invalid key -> 403 INVALID_API_KEY", func(t *testing.T) {
		rec := do(t, protected, http.MethodGet, map[string]string{HeaderAPIKey: K("invalid_key")})
		assert.Equal(t, http.StatusForbidden, rec.Code)
		assert.Equal(t, CodeInvalidAPIKey, envelope(t, rec).Code)
	})
	t.Run("14/17/26 each valid key, GET and POST -> 200", func(t *testing.T) {
		for _, k := range []string{K("key1"), K("key2"), K("key3")} {
			for _, m := range []string{http.MethodGet, http.MethodPost} {
				rec := do(t, protected, m, map[string]string{HeaderAPIKey: k})
				assert.Equal(t, http.StatusOK, rec.Code, k)
				assert.JSONEq(t, `{"message":"success"}`, rec.Body.String())
			}
		}
		rec := do(t, protected, http.MethodGet, map[string]string{HeaderAPIKey: K("invalid")})
		assert.Equal(t, http.StatusForbidden, rec.Code)
	})
	t.Run("26 undecorated route unaffected", func(t *testing.T) {
		rec := do(t, successHandler, http.MethodPost, map[string]string{HeaderAPIKey: K("invalid")})
		assert.Equal(t, http.StatusOK, rec.Code)
	})
	t.Run("27/28 which routes need a key", func(t *testing.T) {
		// Health stays public, mutating routes (analyze, apply) need a key.
		h := Middleware(store, Options{Require: RequireMutating})(successHandler)
		for _, tc := range []struct {
			method, key string
			want        int
		}{
			{http.MethodGet, "", http.StatusOK},
			{http.MethodHead, "", http.StatusOK},
			{http.MethodOptions, "", http.StatusOK},
			{http.MethodPost, "", http.StatusUnauthorized},
			{http.MethodPost, "wrong", http.StatusForbidden},
			{http.MethodPost, K("key2"), http.StatusOK},
			{http.MethodDelete, "", http.StatusUnauthorized},
			{http.MethodPut, K("key1"), http.StatusOK},
		} {
			rec := do(t, h, tc.method, map[string]string{HeaderAPIKey: tc.key})
			assert.Equal(t, tc.want, rec.Code, "%s key=%q", tc.method, tc.key)
		}
	})
}

// A nil lookup is an error, not an empty environment: the library never
// reads the process environment itself.
func TestLoadEnvNilLookup(t *testing.T) {
	_, err := LoadEnv(nil, FileOptions{})
	require.Error(t, err)
	_, err = NewEnv("", nil)
	require.Error(t, err)
}
