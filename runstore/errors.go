package runstore

import (
	"errors"
	"fmt"
)

// Sentinel errors returned by every implementation; test them with errors.Is.
var (
	// ErrNotFound reports that a run or file does not exist.
	ErrNotFound = errors.New("runstore: not found")
	// ErrConflict reports a stale version or an illegal status transition:
	// the run changed since the caller read it.
	ErrConflict = errors.New("runstore: conflict")
	// ErrInvalid reports invalid input; the error is an *InvalidError.
	ErrInvalid = errors.New("runstore: invalid input")
	// ErrChecksum reports that a file's contents no longer match the SHA-256
	// or size recorded when it was attached.
	ErrChecksum = errors.New("runstore: checksum mismatch")
)

// InvalidError describes invalid input: which field and why. It matches
// ErrInvalid with errors.Is.
type InvalidError struct {
	Field  string // e.g. "status", "progress", "settings"
	Reason string
}

// Error implements error.
func (e *InvalidError) Error() string {
	return fmt.Sprintf("runstore: invalid %s: %s", e.Field, e.Reason)
}

// Is reports whether target is ErrInvalid.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func notFound(kind, id string) error {
	return fmt.Errorf("%w: %s %q", ErrNotFound, kind, id)
}

func conflict(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConflict, fmt.Sprintf(format, args...))
}
