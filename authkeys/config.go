package authkeys

import (
	"fmt"
	"log/slog"

	"github.com/dynoai/dynoai/internal/envvar"
)

// Environment variables read by [LoadEnv], named as in the predecessor.
const (
	EnvEnabled  = "API_AUTH_ENABLED"
	EnvKeys     = EnvVar // API_KEYS
	EnvKeysFile = "API_KEYS_FILE"
)

// Setup is authentication as configured from the environment.
type Setup struct {
	// Enabled reports whether keys are enforced (API_AUTH_ENABLED).
	Enabled bool
	// Store is the union of API_KEYS and, when API_KEYS_FILE is set, the
	// keys file. Reload re-reads both; Watch polls the file.
	Store *Multi
	// File is the keys-file store, nil when API_KEYS_FILE is unset.
	File *File
}

// LoadEnv builds a Setup from API_AUTH_ENABLED, API_KEYS and API_KEYS_FILE,
// read through lookup; a main package passes os.LookupEnv (the library never
// reads the process environment itself), and a nil lookup is an error.
//
// API_AUTH_ENABLED accepts 1/true/yes/on and 0/false/no/off in any case
// (unset or empty means false); any other value is an error naming the
// variable, never a silent default. A malformed key list, or a keys file
// that is set but missing or malformed, is an error too. Enabled with zero
// keys is not an error (requests then fail closed) but is logged at Error
// through opts.Logger.
func LoadEnv(lookup func(string) (string, bool), opts FileOptions) (Setup, error) {
	var s Setup
	enabled, err := envvar.Bool(envvar.Lookup(lookup), EnvEnabled, false)
	if err != nil {
		return Setup{}, fmt.Errorf("authkeys: %w", err)
	}
	s.Enabled = enabled
	env, err := NewEnv(EnvKeys, lookup)
	if err != nil {
		return Setup{}, err
	}
	stores := []KeyStore{env}
	if path, _ := envvar.String(envvar.Lookup(lookup), EnvKeysFile); path != "" {
		f, err := OpenFile(path, opts)
		if err != nil {
			return Setup{}, fmt.Errorf("%s: %w", EnvKeysFile, err)
		}
		s.File = f
		stores = append(stores, f)
	}
	s.Store = NewMulti(stores...)
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch {
	case !s.Enabled:
		log.Info("API authentication disabled", "event", "auth_config", "enabled", false)
	case s.Store.Len() == 0:
		log.Error("API authentication enabled with no keys configured; every request needing a key will be refused",
			"event", "auth_config", "enabled", true, "keys", 0)
	default:
		log.Info("API authentication enabled", "event", "auth_config", "enabled", true, "keys", s.Store.Len())
	}
	return s, nil
}

// ErrNotBool is returned by [ParseBool] for a value that is not a boolean.
var ErrNotBool = envvar.ErrNotBool

// ParseBool parses a boolean setting: 1, true, yes, on / 0, false, no, off
// in any case, surrounding spaces ignored; the empty string is false. It is
// the rule of every boolean variable the module reads.
func ParseBool(s string) (bool, error) { return envvar.ParseBool(s) }
