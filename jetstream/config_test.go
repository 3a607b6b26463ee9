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

func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{"JETSTREAM_API_URL": " http://127.0.0.1:9 ", "JETSTREAM_API_KEY": "k", "JETSTREAM_POLL_INTERVAL": "45",
		"JETSTREAM_AUTO_PROCESS": "False", "JETSTREAM_ENABLED": "TRUE"}
	c, err := jetstream.ConfigFromEnv(lookupIn(env))
	require.NoError(t, err)
	assert.Equal(t, jetstream.Config{APIURL: "http://127.0.0.1:9", APIKey: "k", PollInterval: 45 * time.Second, AutoProcess: false, Enabled: true}, c)
	c, err = jetstream.ConfigFromEnv(lookupIn(nil))
	require.NoError(t, err)
	assert.Equal(t, jetstream.Config{PollInterval: 30 * time.Second, AutoProcess: true}, c, "an empty environment keeps every default")

	// A value that does not parse is an error naming the variable, never a
	// silent default.
	for name, bad := range map[string]string{"JETSTREAM_POLL_INTERVAL": "x", "JETSTREAM_AUTO_PROCESS": "ture", "JETSTREAM_ENABLED": "maybe"} {
		_, err := jetstream.ConfigFromEnv(lookupIn(map[string]string{name: bad}))
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), name+"=")
	}
	_, err = jetstream.ConfigFromEnv(nil)
	require.Error(t, err, "a nil lookup is not an empty environment")
}
