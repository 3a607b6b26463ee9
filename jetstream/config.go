package jetstream

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/dynoai/dynoai/internal/envvar"
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
// lookup (a main package passes os.LookupEnv; the library never reads the
// process environment itself): JETSTREAM_API_URL, JETSTREAM_API_KEY,
// JETSTREAM_POLL_INTERVAL (whole seconds above zero, default 30),
// JETSTREAM_AUTO_PROCESS (default true) and JETSTREAM_ENABLED (default
// false). Booleans are 1/true/yes/on or 0/false/no/off in any case; an
// unset or empty variable keeps its default, and any other value is an
// error naming the variable (the predecessor silently kept the default).
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	l := envvar.Lookup(lookup)
	c := Config{PollInterval: 30 * time.Second}
	var err error
	if c.APIURL, err = envvar.String(l, "JETSTREAM_API_URL"); err != nil {
		return Config{}, fmt.Errorf("jetstream: %w", err)
	}
	c.APIKey, _ = envvar.String(l, "JETSTREAM_API_KEY")
	secs, err := envvar.PositiveInt(l, "JETSTREAM_POLL_INTERVAL", 30)
	if err != nil {
		return Config{}, fmt.Errorf("jetstream: %w", err)
	}
	c.PollInterval = time.Duration(secs) * time.Second
	if c.AutoProcess, err = envvar.Bool(l, "JETSTREAM_AUTO_PROCESS", true); err != nil {
		return Config{}, fmt.Errorf("jetstream: %w", err)
	}
	if c.Enabled, err = envvar.Bool(l, "JETSTREAM_ENABLED", false); err != nil {
		return Config{}, fmt.Errorf("jetstream: %w", err)
	}
	return c, nil
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

// StubMode reports whether the environment, read through lookup (a main
// package passes os.LookupEnv), asks for stub mode. As in the predecessor
// the first non-empty of JETSTREAM_STUB_DATA, JETSTREAM_STUB_MODE and
// JETSTREAM_USE_STUBS decides; its value is a boolean by ConfigFromEnv's
// rule, and anything else is an error naming the variable.
func StubMode(lookup func(string) (string, bool)) (bool, error) {
	l := envvar.Lookup(lookup)
	for _, name := range []string{"JETSTREAM_STUB_DATA", "JETSTREAM_STUB_MODE", "JETSTREAM_USE_STUBS"} {
		v, err := envvar.String(l, name)
		if err != nil {
			return false, fmt.Errorf("jetstream: %w", err)
		}
		if v == "" {
			continue
		}
		on, err := envvar.Bool(l, name, false)
		if err != nil {
			return false, fmt.Errorf("jetstream: %w", err)
		}
		return on, nil
	}
	return false, nil
}
