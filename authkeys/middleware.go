package authkeys

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
)

// Error codes and messages of the responses [Middleware] writes.
const (
	CodeAuthRequired      = "AUTH_REQUIRED"
	CodeInvalidAPIKey     = "INVALID_API_KEY"
	CodeInsufficientScope = "INSUFFICIENT_SCOPE"

	MessageAuthRequired  = "API key required. Provide X-API-Key header or Authorization: Bearer."
	MessageInvalidAPIKey = "Invalid or expired API key."
)

// HeaderAPIKey is the header that carries a key; "Authorization: Bearer" is
// accepted too.
const HeaderAPIKey = "X-API-Key"

// Options configures [Middleware]. The zero value enforces keys on every
// request and logs nothing.
type Options struct {
	// Disabled turns enforcement off (development mode): every request
	// passes, with or without a key, and no key id is put in the context.
	Disabled bool
	// Require reports whether a request needs a key. Nil means every
	// request does. [RequireMutating] requires keys on every method other
	// than GET, HEAD and OPTIONS. Put CORS handling outside this middleware
	// (or exempt OPTIONS here): browsers send preflights without keys. A
	// request that needs no key is still checked if it presents one (a
	// wrong key is refused, a valid one's identity is put in the context),
	// so an open route can serve a key holder according to their key.
	Require func(*http.Request) bool
	// Scope is what a key needs to pass: a valid key without every scope
	// of Scope is refused with 403 INSUFFICIENT_SCOPE. Zero means any
	// valid key (admin has every scope).
	Scope Scopes
	// RequestID returns the request id assigned by an outer middleware, for
	// the error body and the audit log. Nil means none.
	RequestID func(context.Context) string
	// RemoteIP returns the client address after trusted-proxy resolution.
	// Nil means the host part of r.RemoteAddr.
	RemoteIP func(*http.Request) string
	// Logger receives the audit events auth_missing and auth_invalid (Warn),
	// auth_no_keys (Error) and auth_ok (Debug), with method, path,
	// remote_ip, request_id, user_agent and, for valid keys only, key_id.
	// Nil discards them.
	Logger *slog.Logger
	// WriteError writes a refusal. Nil writes the JSON error envelope
	// {"error":{"code","message","request_id"}} with Content-Type
	// application/json; an HTTP API with its own envelope writer passes it.
	WriteError func(w http.ResponseWriter, r *http.Request, status int, code, message string)
}

// RequireMutating reports whether r's method changes state: anything but
// GET, HEAD and OPTIONS.
func RequireMutating(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

type ctxKey struct{}

// WithIdentity returns a copy of ctx carrying the identity of the key that
// authenticated the request.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// IdentityFromContext returns the identity of the key that authenticated
// the request, if [Middleware] verified one.
func IdentityFromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok && id.ID != ""
}

// KeyIDFromContext returns the id of the key that authenticated the request,
// if [Middleware] verified one.
func KeyIDFromContext(ctx context.Context) (KeyID, bool) {
	id, ok := IdentityFromContext(ctx)
	return id.ID, ok
}

// PresentedKey returns the key a request presents: the X-API-Key header if
// present, otherwise the token of an "Authorization: Bearer" header, else "".
// It reports ambiguous requests (several X-API-Key values) with ok=false.
func PresentedKey(r *http.Request) (key string, ok bool) {
	if vals := r.Header.Values(HeaderAPIKey); len(vals) > 0 {
		if len(vals) > 1 {
			return "", false
		}
		if vals[0] != "" {
			return vals[0], true
		}
	}
	auth := r.Header.Get("Authorization")
	if len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		return strings.TrimLeft(auth[7:], " "), true
	}
	return "", true
}

// Middleware returns HTTP middleware that checks requests against store.
//
// For a request that needs a key (see Options.Require): no key -> 401
// AUTH_REQUIRED with a WWW-Authenticate challenge; a key the store rejects,
// or several X-API-Key headers -> 403 INVALID_API_KEY; a valid key without
// the scopes of Options.Scope -> 403 INSUFFICIENT_SCOPE; a nil or empty
// store rejects every key (fail closed). A valid key's [Identity] is put in
// the request context ([IdentityFromContext]). A request that does not need
// a key passes without one; if it presents one, the key is checked all the
// same.
func Middleware(store KeyStore, opts Options) func(http.Handler) http.Handler {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	writeErr := opts.WriteError
	if writeErr == nil {
		writeErr = func(w http.ResponseWriter, r *http.Request, status int, code, message string) {
			WriteEnvelope(w, status, code, message, requestID(opts.RequestID, r))
		}
	}
	return func(next http.Handler) http.Handler {
		if opts.Disabled {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			optional := opts.Require != nil && !opts.Require(r)
			audit := func(level slog.Level, event string, extra ...any) {
				if !log.Enabled(r.Context(), level) {
					return
				}
				attrs := append([]any{
					"event", event,
					"method", r.Method,
					"path", r.URL.Path,
					"remote_ip", remoteIP(opts.RemoteIP, r),
					"request_id", requestID(opts.RequestID, r),
					"user_agent", r.UserAgent(),
				}, extra...)
				log.Log(r.Context(), level, "api key check", attrs...)
			}
			key, unambiguous := PresentedKey(r)
			if !unambiguous {
				audit(slog.LevelWarn, "auth_invalid", "reason", "several X-API-Key headers")
				writeErr(w, r, http.StatusForbidden, CodeInvalidAPIKey, MessageInvalidAPIKey)
				return
			}
			if key == "" {
				if optional {
					next.ServeHTTP(w, r)
					return
				}
				audit(slog.LevelWarn, "auth_missing")
				w.Header().Set("WWW-Authenticate", `Bearer realm="dynoai"`)
				writeErr(w, r, http.StatusUnauthorized, CodeAuthRequired, MessageAuthRequired)
				return
			}
			var (
				id  Identity
				err error = ErrNoKeys
			)
			if store != nil {
				id, err = store.Verify(r.Context(), key)
			}
			if err != nil {
				switch {
				case errors.Is(err, ErrNoKeys):
					audit(slog.LevelError, "auth_no_keys")
				case errors.Is(err, ErrInvalid):
					audit(slog.LevelWarn, "auth_invalid")
				default:
					audit(slog.LevelError, "auth_error", "error", err.Error())
				}
				writeErr(w, r, http.StatusForbidden, CodeInvalidAPIKey, MessageInvalidAPIKey)
				return
			}
			if !id.Can(opts.Scope) {
				audit(slog.LevelWarn, "auth_scope", "key_id", string(id.ID), "tenant", id.Tenant,
					"scopes", id.Scopes.String(), "needs", opts.Scope.String())
				writeErr(w, r, http.StatusForbidden, CodeInsufficientScope,
					"This API key may not do this: it needs the "+opts.Scope.String()+" scope.")
				return
			}
			audit(slog.LevelDebug, "auth_ok", "key_id", string(id.ID), "tenant", id.Tenant)
			next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
		})
	}
}

func requestID(f func(context.Context) string, r *http.Request) string {
	if f == nil {
		return ""
	}
	return f(r.Context())
}

func remoteIP(f func(*http.Request) string, r *http.Request) string {
	if f != nil {
		return f(r)
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// Envelope is the JSON error body shared by the server's refusals.
type Envelope struct {
	Error EnvelopeError `json:"error"`
}

// EnvelopeError is the inside of an [Envelope].
type EnvelopeError struct {
	Code      string         `json:"code"`
	Message   string         `json:"message"`
	RequestID string         `json:"request_id,omitempty"`
	Details   map[string]any `json:"details,omitempty"`
}

// WriteEnvelope writes status and the JSON error envelope with Content-Type
// application/json and Cache-Control no-store. requestID is omitted when empty.
func WriteEnvelope(w http.ResponseWriter, status int, code, message, requestID string) {
	body, _ := json.Marshal(Envelope{Error: EnvelopeError{Code: code, Message: message, RequestID: requestID}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
