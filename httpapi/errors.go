package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/dynoai/dynoai/authkeys"
	"github.com/dynoai/dynoai/runstore"
)

// Error codes of the envelope, as in the predecessor where it had one.
const (
	CodeBadRequest       = "BAD_REQUEST"
	CodeValidation       = "VALIDATION_ERROR"
	CodeFileType         = "FILE_TYPE_NOT_ALLOWED"
	CodeCSVParsing       = "CSV_PARSING_ERROR"
	CodeNotFound         = "NOT_FOUND"
	CodeMethodNotAllowed = "METHOD_NOT_ALLOWED"
	CodeConflict         = "CONFLICT"
	CodeTooLarge         = "REQUEST_TOO_LARGE"
	CodeUnsupportedMedia = "UNSUPPORTED_MEDIA_TYPE"
	CodeRateLimited      = "RATE_LIMIT_EXCEEDED"
	CodeInternal         = "INTERNAL_ERROR"
	CodeChecksum         = "CHECKSUM_MISMATCH"
	CodeUnavailable      = "SERVICE_UNAVAILABLE"
	CodeNotConfigured    = "NOT_CONFIGURED"
	CodeTimeout          = "TIMEOUT"
	CodeUpstream         = "UPSTREAM_ERROR"
	CodeStorage          = "STORAGE_UNAVAILABLE"
	CodeForbidden        = "FORBIDDEN"
	CodeURITooLong       = "URI_TOO_LONG"
	CodeHeadersTooLarge  = "HEADERS_TOO_LARGE"
)

// Error is an error a handler returns to have it answered with status and
// code. Message is shown to the client; never put paths or internal detail
// in it.
type Error struct {
	Status  int
	Code    string
	Message string
	Details map[string]any
	Err     error // internal cause, logged, never sent
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

func badRequest(message string) *Error { return errorf(http.StatusBadRequest, CodeBadRequest, message) }

func invalid(field, message string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeValidation, Message: message,
		Details: map[string]any{"field": field}}
}

func notFound(resource, id string) *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: resource + " not found",
		Details: map[string]any{"resource": resource, "identifier": id}}
}

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own types reach here; a failure is a bug worth a 500.
		b = []byte(`{"error":{"code":"INTERNAL_ERROR","message":"response encoding failed"}}`)
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeEnvelope writes the error envelope with the request's id.
func writeEnvelope(w http.ResponseWriter, r *http.Request, status int, code, message string, details map[string]any) {
	env := authkeys.Envelope{Error: authkeys.EnvelopeError{
		Code: code, Message: message, RequestID: RequestID(r.Context()), Details: details,
	}}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, env)
}

// writeAuthError adapts writeEnvelope to authkeys.Options.WriteError.
func writeAuthError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	writeEnvelope(w, r, status, code, message, nil)
}

// fail answers r with err: an *Error as it says, a request body over its
// limit as 413, anything else as 500 (logged with the request id, never
// shown).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		if he.Status >= 500 {
			s.log.ErrorContext(r.Context(), "request failed", "request_id", RequestID(r.Context()),
				"method", r.Method, "path", r.URL.Path, "code", he.Code, "err", he.Err)
		}
		if he.Status == http.StatusTooManyRequests || he.Status == http.StatusServiceUnavailable {
			if ra, ok := he.Details["retry_after_seconds"].(int); ok {
				w.Header().Set("Retry-After", strconv.Itoa(ra))
			}
		}
		writeEnvelope(w, r, he.Status, he.Code, he.Message, he.Details)
	case errors.Is(err, runstore.ErrUnavailable):
		s.log.ErrorContext(r.Context(), "storage unavailable", "request_id", RequestID(r.Context()),
			"method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "30")
		writeEnvelope(w, r, http.StatusServiceUnavailable, CodeStorage,
			"storage is unavailable; nothing was stored, try again later", nil)
	case errors.As(err, &mbe):
		writeEnvelope(w, r, http.StatusRequestEntityTooLarge, CodeTooLarge,
			"request body exceeds "+strconv.FormatInt(mbe.Limit, 10)+" bytes",
			map[string]any{"limit_bytes": mbe.Limit})
	default:
		s.log.ErrorContext(r.Context(), "request failed", "request_id", RequestID(r.Context()),
			"method", r.Method, "path", r.URL.Path, "err", err)
		writeEnvelope(w, r, http.StatusInternalServerError, CodeInternal, "An unexpected error occurred", nil)
	}
}
