package authkeys

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
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
// read through lookup (os.LookupEnv when nil).
//
// API_AUTH_ENABLED accepts 1/true/yes/on and 0/false/no/off in any case
// (unset or empty means false); any other value is an error naming the
// variable, never a silent default. A malformed key list, or a keys file
// that is set but missing or malformed, is an error too. Enabled with zero
// keys is not an error (requests then fail closed) but is logged at Error
// through opts.Logger.
func LoadEnv(lookup func(string) (string, bool), opts FileOptions) (Setup, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var s Setup
	raw, _ := lookup(EnvEnabled)
	enabled, err := ParseBool(raw)
	if err != nil {
		return Setup{}, fmt.Errorf("authkeys: %s=%q: %w", EnvEnabled, raw, err)
	}
	s.Enabled = enabled
	env, err := NewEnv(EnvKeys, lookup)
	if err != nil {
		return Setup{}, err
	}
	stores := []KeyStore{env}
	if path, _ := lookup(EnvKeysFile); strings.TrimSpace(path) != "" {
		f, err := OpenFile(strings.TrimSpace(path), opts)
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
var ErrNotBool = errors.New("not a boolean (want one of 1, true, yes, on, 0, false, no, off)")

// ParseBool parses a boolean setting: 1, true, yes, on / 0, false, no, off
// in any case, surrounding spaces ignored; the empty string is false.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes", "on":
		return true, nil
	case "", "0", "false", "no", "off":
		return false, nil
	}
	return false, ErrNotBool
}
