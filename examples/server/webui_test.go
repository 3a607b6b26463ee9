package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBasePathAndSessionVars: DYNOAI_BASE_PATH mounts the API and the web
// UI under a prefix, and the session variables are checked.
func TestBasePathAndSessionVars(t *testing.T) {
	url, stop := start(t, map[string]string{"DYNOAI_DATA_DIR": t.TempDir(), "DYNOAI_PORT": "0", "DYNOAI_BASE_PATH": "/dyno",
		"DYNOAI_SESSION_SECRET": strings.Repeat("x", 32)})
	defer func() { require.NoError(t, stop()) }()
	get := func(p string) (int, string) {
		res, err := http.Get(url + p)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	code, body := get("/dyno/")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `src="ui/app.js"`)
	code, body = get("/dyno/api/openapi.json")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"url": "/dyno"`)
	code, _ = get("/api/health/live")
	assert.Equal(t, http.StatusNotFound, code)

	for _, tc := range []struct{ k, v, want string }{
		{"DYNOAI_BASE_PATH", "dyno", "DYNOAI_BASE_PATH"},
		{"DYNOAI_BASE_PATH", "/dyno/", "DYNOAI_BASE_PATH"},
		{"DYNOAI_SESSION_SECRET", "short", "at least 32"},
		{"DYNOAI_SESSION_TTL", "soon", "DYNOAI_SESSION_TTL"},
	} {
		env := map[string]string{"DYNOAI_DATA_DIR": t.TempDir(), tc.k: tc.v}
		environ, lookup := lookupOf(env)
		_, err := loadSettings(environ, lookup)
		require.Error(t, err, tc.k+"="+tc.v)
		assert.Contains(t, err.Error(), tc.want)
		assert.NotContains(t, err.Error(), "short", "the secret is not repeated in the error") // "short" is the value
	}
}
