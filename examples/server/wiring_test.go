package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dynoai/dynoai/jetstream/jetstreamtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func getJSON(t *testing.T, url string, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(res.Body)
	require.NoError(t, json.Unmarshal(b, &m), "%s", b)
	return res.StatusCode, m
}

// TestJetstreamWiring runs the server against the fake Jetstream: a sync
// picks up the stub runs, analyzes them, and they are runs of the store.
func TestJetstreamWiring(t *testing.T) {
	fake, err := jetstreamtest.NewStub(context.Background(), jetstreamtest.Options{APIKey: "js-secret-key-123"})
	require.NoError(t, err)
	defer fake.Close()
	url, stop := start(t, map[string]string{
		"DYNOAI_DATA_DIR": t.TempDir(), "DYNOAI_PORT": "0",
		"API_AUTH_ENABLED": "true", "API_KEYS": "dynoai_k1_0123456789abcdefghij tenant=default",
		"JETSTREAM_ENABLED": "true", "JETSTREAM_API_URL": fake.URL, "JETSTREAM_API_KEY": "js-secret-key-123",
		"JETSTREAM_POLL_INTERVAL": "3600",
	})
	defer func() { require.NoError(t, stop()) }()
	key := map[string]string{"X-API-Key": "dynoai_k1_0123456789abcdefghij"}
	code, _ := getJSON(t, url+"/api/jetstream/config", nil)
	require.Equal(t, 401, code, "reads need a key with authentication on")
	code, cfg := getJSON(t, url+"/api/jetstream/config", key)
	require.Equal(t, 200, code)
	assert.NotContains(t, cfg["api_key"], "secret")
	assert.Equal(t, true, cfg["configured"])

	req, _ := http.NewRequest("POST", url+"/api/jetstream/sync", nil)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 401, res.StatusCode, "sync needs a key")
	req.Header.Set("X-API-Key", "dynoai_k1_0123456789abcdefghij")
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode, "%s", b)

	require.Eventually(t, func() bool {
		_, l := getJSON(t, url+"/api/runs?source=jetstream&status=completed", key)
		return len(l["runs"].([]any)) > 0
	}, 30*time.Second, 100*time.Millisecond)
	_, st := getJSON(t, url+"/api/jetstream/status", key)
	assert.Equal(t, true, st["connected"])
}

// TestJetDriveWiring joins JetDrive on the loopback interface.
func TestJetDriveWiring(t *testing.T) {
	url, stop := start(t, map[string]string{
		"DYNOAI_DATA_DIR": t.TempDir(), "DYNOAI_PORT": "0",
		"JETDRIVE_ENABLED": "true", "JETDRIVE_IFACE": "loopback", "JETDRIVE_PORT": "22399",
		"JETDRIVE_MCAST_GROUP": "239.255.60.61",
	})
	defer func() { require.NoError(t, stop()) }()
	code, m := getJSON(t, url+"/api/jetdrive/providers", nil)
	require.Equal(t, 200, code, "%v", m)
	assert.Contains(t, m, "providers")
	code, m = getJSON(t, url+"/api/jetdrive/live", nil)
	require.Equal(t, 200, code)
	assert.Equal(t, true, m["stale"])
	code, m = getJSON(t, url+"/api/health", nil)
	assert.Equal(t, 200, code)
	assert.True(t, strings.Contains(toJSON(m), "jetdrive"))
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }
