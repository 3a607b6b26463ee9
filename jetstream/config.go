package jetstream

import (
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// MaskKey returns key fit for display and logs: empty stays empty; a key of
// 16 characters or more shows its last four after eight asterisks
// ("abcd1234efgh5678" -> "********5678"); a shorter key shows only the
// asterisks. Neither the length nor the start of a key is shown (the
// predecessor showed the first and last four, half of a 16-character key).
func MaskKey(key string) string {
	n := len(key)
	switch {
	case n == 0:
		return ""
	case n < 16:
		return "********"
	default:
		return "********" + key[n-4:]
	}
}

// Config is the Jetstream integration's configuration, as the predecessor's
// config/jetstream.json holds it. Its zero value is a disabled integration.
type Config struct {
	APIURL       string        `json:"api_url"`
	APIKey       string        `json:"api_key"`
	PollInterval time.Duration `json:"-"`
	// AutoProcess false makes the poller record new runs without processing them.
	AutoProcess bool `json:"auto_process"`
	Enabled     bool `json:"enabled"`
}

// MarshalJSON writes c as config/jetstream.json holds it, the poll interval
// in whole seconds under "poll_interval_seconds".
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		PollIntervalSeconds int64 `json:"poll_interval_seconds"`
	}{plain(c), int64(c.PollInterval / time.Second)})
}

// UnmarshalJSON reads config/jetstream.json. Absent keys keep c's values.
func (c *Config) UnmarshalJSON(b []byte) error {
	type plain Config
	v := struct {
		*plain
		PollIntervalSeconds *float64 `json:"poll_interval_seconds"`
	}{plain: (*plain)(c)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if v.PollIntervalSeconds != nil {
		c.PollInterval = time.Duration(*v.PollIntervalSeconds * float64(time.Second))
	}
	return nil
}

// ConfigFromEnv reads the predecessor's environment variables through
// getenv (typically os.Getenv): JETSTREAM_API_URL, JETSTREAM_API_KEY,
// JETSTREAM_POLL_INTERVAL (seconds, default 30; an unreadable value keeps the
// default), JETSTREAM_AUTO_PROCESS (true unless set to something other than
// "true") and JETSTREAM_ENABLED (false unless "true"), case-insensitively.
func ConfigFromEnv(getenv func(string) string) Config {
	c := Config{APIURL: strings.TrimSpace(getenv("JETSTREAM_API_URL")), APIKey: strings.TrimSpace(getenv("JETSTREAM_API_KEY")),
		PollInterval: 30 * time.Second, AutoProcess: true}
	if v := strings.TrimSpace(getenv("JETSTREAM_POLL_INTERVAL")); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			c.PollInterval = time.Duration(n) * time.Second
		}
	}
	if v := getenv("JETSTREAM_AUTO_PROCESS"); v != "" {
		c.AutoProcess = strings.EqualFold(strings.TrimSpace(v), "true")
	}
	c.Enabled = strings.EqualFold(strings.TrimSpace(getenv("JETSTREAM_ENABLED")), "true")
	return c
}

// Masked returns a copy of c whose APIKey is masked with MaskKey.
func (c Config) Masked() Config {
	c.APIKey = MaskKey(c.APIKey)
	return c
}

// LogValue makes slog print c with its key masked.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("api_url", c.APIURL),
		slog.String("api_key", MaskKey(c.APIKey)),
		slog.Duration("poll_interval", c.PollInterval),
		slog.Bool("auto_process", c.AutoProcess),
		slog.Bool("enabled", c.Enabled),
	)
}

// StubMode reports whether the environment asks for stub mode, by the
// predecessor's rule: the first non-empty of JETSTREAM_STUB_DATA,
// JETSTREAM_STUB_MODE and JETSTREAM_USE_STUBS decides, and it is on when its
// trimmed lower-case value is 1, true, yes or on. getenv is typically os.Getenv.
func StubMode(getenv func(string) string) bool {
	for _, name := range []string{"JETSTREAM_STUB_DATA", "JETSTREAM_STUB_MODE", "JETSTREAM_USE_STUBS"} {
		v := strings.ToLower(strings.TrimSpace(getenv(name)))
		if v == "" {
			continue
		}
		switch v {
		case "1", "true", "yes", "on":
			return true
		}
		return false
	}
	return false
}
