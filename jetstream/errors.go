package jetstream

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// The kinds of failure a Client reports. Every error a Client returns for a
// failed call is an *Error whose Kind is one of these, so callers test with
// errors.Is(err, jetstream.ErrRateLimited) and read details with errors.As.
var (
	// ErrAuth means the API key was refused (HTTP 401 or 403). Not retried.
	ErrAuth = errors.New("jetstream: authentication failed")
	// ErrNotFound means the run does not exist (HTTP 404). Not retried.
	ErrNotFound = errors.New("jetstream: not found")
	// ErrRateLimited means the server asked the client to slow down (HTTP
	// 429). Retried after the server's Retry-After, or with backoff.
	ErrRateLimited = errors.New("jetstream: rate limited")
	// ErrServer means the server failed (HTTP 5xx). Retried with backoff.
	ErrServer = errors.New("jetstream: server error")
	// ErrNetwork means the request did not complete: connection refused or
	// reset, a timeout, or a download that ended early. Retried with backoff.
	ErrNetwork = errors.New("jetstream: network error")
	// ErrTooLarge means a response exceeded the client's size limit. Not retried.
	ErrTooLarge = errors.New("jetstream: response too large")
	// ErrBadResponse means the server answered with something the contract
	// does not allow: another 4xx status or a body that is not the expected
	// JSON. Not retried.
	ErrBadResponse = errors.New("jetstream: bad response")
)

// Error describes a failed Client call.
type Error struct {
	Op         string        // the call, for example "list runs" or "download"
	RunID      string        // the run concerned, if any
	Kind       error         // one of ErrAuth, ErrNotFound, ... ErrBadResponse
	StatusCode int           // the HTTP status, 0 when no response arrived
	RetryAfter time.Duration // the server's Retry-After, 0 when absent
	Attempts   int           // how many attempts were made
	Body       string        // the start of the error body, for diagnosis
	Err        error         // the underlying error, if any
}

// Error returns a one-line description, for example
// `jetstream: download run "JS-1": server error (HTTP 503) after 4 attempts: busy`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("jetstream: ")
	b.WriteString(e.Op)
	if e.RunID != "" {
		fmt.Fprintf(&b, " run %q", e.RunID)
	}
	b.WriteString(": ")
	b.WriteString(strings.TrimPrefix(e.Kind.Error(), "jetstream: "))
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.StatusCode)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " retry after %s", e.RetryAfter)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	if e.Body != "" {
		b.WriteString(": ")
		b.WriteString(e.Body)
	} else if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the Kind and the underlying error, so errors.Is matches both.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Retryable reports whether err is a failure worth trying again later:
// a network error, a server error or a rate limit.
func Retryable(err error) bool {
	return errors.Is(err, ErrNetwork) || errors.Is(err, ErrServer) || errors.Is(err, ErrRateLimited)
}
