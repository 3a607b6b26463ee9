// Package envvar reads settings from environment variables by one strict
// rule, for the library functions that build a configuration from them
// (authkeys.LoadEnv, jetstream.ConfigFromEnv, jetstream.StubMode).
//
// Libraries never read the process environment themselves: they take a
// Lookup, and only main packages pass os.LookupEnv. The rule: a variable
// that is unset, or empty after trimming spaces, takes its default; any
// other value must parse, or the error names the variable and its value.
// A nil Lookup is an error, not an empty environment, so a forgotten
// argument is not mistaken for "nothing configured".
package envvar

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Lookup returns a variable's value and whether it is set, like
// os.LookupEnv.
type Lookup func(name string) (string, bool)

// ErrNotBool is wrapped by the error for a value that is not a boolean.
var ErrNotBool = errors.New("not a boolean (want one of 1, true, yes, on, 0, false, no, off)")

// ErrNoLookup is returned when the Lookup is nil.
var ErrNoLookup = errors.New("no lookup function (a main package passes os.LookupEnv)")

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

// String returns the trimmed value of name, "" when unset.
func String(l Lookup, name string) (string, error) {
	if l == nil {
		return "", ErrNoLookup
	}
	v, _ := l(name)
	return strings.TrimSpace(v), nil
}

// Bool returns the boolean value of name, def when unset or empty.
func Bool(l Lookup, name string, def bool) (bool, error) {
	v, err := String(l, name)
	if err != nil || v == "" {
		return def, err
	}
	b, err := ParseBool(v)
	if err != nil {
		return def, fmt.Errorf("%s=%q: %w", name, v, err)
	}
	return b, nil
}

// PositiveInt returns the value of name as an integer above zero, def when
// unset or empty.
func PositiveInt(l Lookup, name string, def int) (int, error) {
	v, err := String(l, name)
	if err != nil || v == "" {
		return def, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return def, fmt.Errorf("%s=%q: not a whole number above zero", name, v)
	}
	return n, nil
}
