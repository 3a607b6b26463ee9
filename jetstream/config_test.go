package jetstream_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/jetstream"
)

func TestConfigJSON(t *testing.T) {
	var c jetstream.Config
	require.NoError(t, json.Unmarshal([]byte(`{"api_url":"https://api.jetstream.dynojet.com","api_key":"dummy","poll_interval_seconds":30,"auto_process":true,"enabled":true}`), &c))
	assert.Equal(t, jetstream.Config{APIURL: "https://api.jetstream.dynojet.com", APIKey: "dummy", PollInterval: 30 * time.Second, AutoProcess: true, Enabled: true}, c)
	b, err := json.Marshal(c.Masked())
	require.NoError(t, err)
	assert.JSONEq(t, `{"api_url":"https://api.jetstream.dynojet.com","api_key":"********","poll_interval_seconds":30,"auto_process":true,"enabled":true}`, string(b))
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{"JETSTREAM_API_URL": "http://127.0.0.1:9", "JETSTREAM_API_KEY": "k", "JETSTREAM_POLL_INTERVAL": "x",
		"JETSTREAM_AUTO_PROCESS": "False", "JETSTREAM_ENABLED": "TRUE"}
	c := jetstream.ConfigFromEnv(func(k string) string { return env[k] })
	assert.Equal(t, jetstream.Config{APIURL: "http://127.0.0.1:9", APIKey: "k", PollInterval: 30 * time.Second, AutoProcess: false, Enabled: true}, c)
	c = jetstream.ConfigFromEnv(func(string) string { return "" })
	assert.True(t, c.AutoProcess)
	assert.False(t, c.Enabled)
}
