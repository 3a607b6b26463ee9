package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dynoai/dynoai/authkeys"
)

// HeaderRequestID carries the request id in both directions.
const HeaderRequestID = "X-Request-ID"

type requestIDKey struct{}

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// ValidRequestID reports whether a client-supplied request id is kept:
// 1 to 64 characters of [A-Za-z0-9._-].
func ValidRequestID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// newRequestID returns 12 random lowercase hex characters.
func newRequestID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requestID assigns the request id (keeping a well-formed client one),
// echoes it, and sets the headers every response carries.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderRequestID)
		if len(r.Header.Values(HeaderRequestID)) != 1 || !ValidRequestID(id) {
			id = newRequestID()
		}
		h := w.Header()
		h.Set(HeaderRequestID, id)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		ctx = context.WithValue(ctx, holderKey{}, &routeHolder{})
		r = r.WithContext(ctx)
		// What net/http lets through up to its own hard limit, answered here
		// in the envelope.
		if n := len(r.RequestURI); n > s.cfg.MaxURIBytes {
			writeEnvelope(w, r, http.StatusRequestURITooLong, CodeURITooLong,
				fmt.Sprintf("the request target is %d bytes; at most %d are accepted", n, s.cfg.MaxURIBytes),
				map[string]any{"limit_bytes": s.cfg.MaxURIBytes})
			return
		}
		if n := headerBytes(r); n > s.cfg.MaxHeaderBytes {
			writeEnvelope(w, r, http.StatusRequestHeaderFieldsTooLarge, CodeHeadersTooLarge,
				fmt.Sprintf("the request's headers are %d bytes; at most %d are accepted", n, s.cfg.MaxHeaderBytes),
				map[string]any{"limit_bytes": s.cfg.MaxHeaderBytes})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// headerBytes is the size of r's header block as sent: the request line
// and every "Name: value\r\n".
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	if r.Host != "" && r.Header.Get("Host") == "" {
		n += len("Host: \r\n") + len(r.Host)
	}
	return n
}

// recoverer turns a handler panic into 500 with the request id (if nothing
// was written yet) and logs it with the stack.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw := &trackWriter{ResponseWriter: w}
		start := time.Now()
		defer func() {
			v := recover()
			if v == nil {
				if s.log.Enabled(r.Context(), slog.LevelDebug) {
					s.log.DebugContext(r.Context(), "request", "request_id", RequestID(r.Context()), "method", r.Method,
						"path", r.URL.Path, "route", routeFromHolder(r), "status", tw.status, "duration", time.Since(start),
						"remote_ip", clientName(s, r))
				}
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			attrs := []any{"request_id", RequestID(r.Context()), "method", r.Method, "path", r.URL.Path, "panic", v}
			if s.cfg.Debug {
				attrs = append(attrs, "stack", string(debug.Stack()))
			}
			s.log.ErrorContext(r.Context(), "handler panic", attrs...)
			if tw.wrote {
				panic(http.ErrAbortHandler) // the response is half sent: cut it
			}
			writeEnvelope(w, r, http.StatusInternalServerError, CodeInternal, "An unexpected error occurred", nil)
		}()
		next.ServeHTTP(tw, r)
	})
}

// trackWriter remembers whether a response was started.
type trackWriter struct {
	http.ResponseWriter
	wrote  bool
	status int
}

func (t *trackWriter) WriteHeader(code int) {
	if code >= 200 && !t.wrote {
		t.wrote, t.status = true, code
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackWriter) Write(b []byte) (int, error) {
	if !t.wrote {
		t.wrote, t.status = true, http.StatusOK
	}
	return t.ResponseWriter.Write(b)
}

func (t *trackWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

func (t *trackWriter) Flush() {
	if !t.wrote {
		t.wrote, t.status = true, http.StatusOK
	}
	_ = http.NewResponseController(t.ResponseWriter).Flush()
}

// CORS header values.
const (
	corsAllowHeaders  = "Content-Type, X-API-Key, X-Request-ID, Authorization"
	corsExposeHeaders = "X-Request-ID, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, Content-Disposition"
)

// cors adds CORS headers for allowed origins and answers preflights. It
// reports whether it answered the request.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	allowed := slices.Contains(s.cfg.CORS.Origins, origin) || slices.Contains(s.cfg.CORS.Origins, "*")
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if !allowed {
		if preflight {
			writeEnvelope(w, r, http.StatusForbidden, "CORS_ORIGIN_NOT_ALLOWED", "origin not allowed", nil)
			return true
		}
		return false // no CORS headers: the browser blocks the response
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
	if !preflight {
		return false
	}
	method := r.Header.Get("Access-Control-Request-Method")
	probe := r.Clone(r.Context())
	probe.Method = method
	if _, p := s.mux.Handler(probe); p == "" {
		h.Del("Access-Control-Allow-Origin")
		writeEnvelope(w, r, http.StatusForbidden, "CORS_METHOD_NOT_ALLOWED", "method "+method+" is not allowed for this path", nil)
		return true
	}
	h.Set("Access-Control-Allow-Methods", method)
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", strconv.Itoa(int(s.cfg.CORS.MaxAge/time.Second)))
	w.WriteHeader(http.StatusNoContent)
	return true
}

// rateLimit charges a request to its budget: a verified API key to the
// key's bucket, anything else (no key, a wrong key) to the bucket of the
// client's network, resolved through the trusted proxies only, so neither
// made-up keys nor spoofed X-Forwarded-For get a fresh bucket, and
// anonymous traffic never draws on a key's budget.
func (s *Server) rateLimit(rt *route, next http.Handler) http.Handler {
	if s.limDefault == nil || rt.unlimited {
		return next
	}
	lim, local := s.rlDefault, s.limDefault
	if rt.expensive {
		lim, local = s.rlExpensive, s.limExpensive
	}
	if len(local.rates) == 0 && local.anonTotal == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var key clientKey
		if s.cfg.Auth.Enabled && s.cfg.Auth.Keys != nil {
			if k, ok := authkeys.PresentedKey(r); ok && k != "" {
				if id, err := s.cfg.Auth.Keys.Verify(r.Context(), k); err == nil {
					key.key = id.ID
				}
			}
		}
		if key.key == "" {
			key.net = clientNet(clientIP(r, s.cfg.TrustedProxies), s.cfg.RateLimit.IPv4Prefix, s.cfg.RateLimit.IPv6Prefix)
		}
		d, rates, err := lim.check(r.Context(), key, s.cfg.Now())
		h := w.Header()
		if err != nil {
			// Failing closed: the shared store did not answer in time.
			secs := int(math.Ceil(s.limStore.retryIn(s.limStore.clock()).Seconds()))
			h.Set("Retry-After", strconv.Itoa(secs))
			writeEnvelope(w, r, http.StatusServiceUnavailable, CodeUnavailable, "Rate limits cannot be checked right now. Please retry shortly.",
				map[string]any{"retry_after_seconds": secs, "retry_after": strconv.Itoa(secs) + " seconds"})
			return
		}
		if d.limit > 0 {
			h.Set("X-RateLimit-Limit", strconv.Itoa(d.limit))
			h.Set("X-RateLimit-Remaining", strconv.Itoa(max(d.remaining, 0)))
			h.Set("X-RateLimit-Reset", strconv.FormatInt(s.cfg.Now().Add(d.reset).Unix(), 10))
		}
		if !d.ok {
			secs := int(math.Ceil(d.retryAfter.Seconds()))
			secs = max(secs, 1)
			h.Set("Retry-After", strconv.Itoa(secs))
			writeEnvelope(w, r, http.StatusTooManyRequests, CodeRateLimited, "Too many requests. Please slow down.",
				map[string]any{"retry_after_seconds": secs, "retry_after": strconv.Itoa(secs) + " seconds", "limit": rates.String()})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// clientName is the client address as a string for logs.
func clientName(s *Server, r *http.Request) string {
	a := clientIP(r, s.cfg.TrustedProxies)
	if !a.IsValid() {
		return strings.TrimSpace(r.RemoteAddr)
	}
	return a.String()
}
