package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dynoai/dynoai/authkeys"
)

// SessionCookie is the name of the browser session cookie that POST
// /api/session sets.
const SessionCookie = "dynoai_session"

// sessionPrefix starts every session token, telling it from an API key.
const sessionPrefix = "dys1."

// sessions signs and verifies session tokens: an identity (key id, tenant,
// scopes) and an expiry, signed with HMAC-SHA256 under a secret every
// replica shares. A token never holds the key itself.
type sessions struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time
}

type sessionClaims struct {
	KeyID   string `json:"k"`
	Tenant  string `json:"t"`
	Scopes  uint8  `json:"s"`
	Expires int64  `json:"e"` // unix seconds
}

func newSessions(secret []byte, ttl time.Duration, now func() time.Time) (*sessions, bool) {
	random := len(secret) == 0
	if random {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret) // never fails (crypto/rand)
	}
	return &sessions{secret: secret, ttl: ttl, now: now}, random
}

func (ss *sessions) sign(payload string) string {
	m := hmac.New(sha256.New, ss.secret)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// issue returns a token for id valid for the session TTL, and its expiry.
func (ss *sessions) issue(id authkeys.Identity) (string, time.Time) {
	exp := ss.now().Add(ss.ttl).Truncate(time.Second)
	b, _ := json.Marshal(sessionClaims{KeyID: string(id.ID), Tenant: id.Tenant, Scopes: uint8(id.Scopes), Expires: exp.Unix()})
	p := sessionPrefix + base64.RawURLEncoding.EncodeToString(b)
	return p + "." + ss.sign(p), exp
}

// verify returns the identity of a valid, unexpired token.
func (ss *sessions) verify(token string) (authkeys.Identity, time.Time, error) {
	i := strings.LastIndexByte(token, '.')
	if !strings.HasPrefix(token, sessionPrefix) || i <= len(sessionPrefix) {
		return authkeys.Identity{}, time.Time{}, authkeys.ErrInvalid
	}
	p, sig := token[:i], token[i+1:]
	if !hmac.Equal([]byte(sig), []byte(ss.sign(p))) {
		return authkeys.Identity{}, time.Time{}, authkeys.ErrInvalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(p[len(sessionPrefix):])
	if err != nil {
		return authkeys.Identity{}, time.Time{}, authkeys.ErrInvalid
	}
	var c sessionClaims
	if json.Unmarshal(raw, &c) != nil || c.KeyID == "" {
		return authkeys.Identity{}, time.Time{}, authkeys.ErrInvalid
	}
	exp := time.Unix(c.Expires, 0)
	if !ss.now().Before(exp) {
		return authkeys.Identity{}, time.Time{}, authkeys.ErrInvalid
	}
	return authkeys.Identity{ID: authkeys.KeyID(c.KeyID), Tenant: c.Tenant, Scopes: authkeys.Scopes(c.Scopes)}, exp, nil
}

// sessionKeys is the key store the routes check: session tokens verified
// by signature, anything else by the configured store.
type sessionKeys struct {
	inner authkeys.KeyStore
	ss    *sessions
}

func (k sessionKeys) Verify(ctx context.Context, presented string) (authkeys.Identity, error) {
	if strings.HasPrefix(presented, sessionPrefix) {
		id, _, err := k.ss.verify(presented)
		if err != nil {
			return id, err
		}
		return k.current(ctx, id)
	}
	if k.inner == nil {
		return authkeys.Identity{}, authkeys.ErrNoKeys
	}
	return k.inner.Verify(ctx, presented)
}

// current checks a session's key against the store: a revoked key ends
// its sessions at once, and a key whose tenant or scopes changed carries
// its sessions along. A store that cannot look keys up by id
// (authkeys.ErrNoLookup) leaves the session as signed, valid until it
// expires.
func (k sessionKeys) current(ctx context.Context, id authkeys.Identity) (authkeys.Identity, error) {
	l, ok := k.inner.(authkeys.Lookup)
	if !ok {
		return id, nil
	}
	cur, err := l.LookupID(ctx, id.ID)
	switch {
	case err == nil:
		return cur, nil
	case errors.Is(err, authkeys.ErrNoLookup):
		return id, nil
	case errors.Is(err, authkeys.ErrInvalid):
		return authkeys.Identity{}, fmt.Errorf("%w: the session's key %s is no longer valid", authkeys.ErrInvalid, id.ID)
	}
	return authkeys.Identity{}, err
}

func (k sessionKeys) Len() int {
	if k.inner == nil {
		return 0
	}
	return k.inner.Len()
}

// HeaderRequestedWith must accompany every request that changes state
// with a session cookie (the web UI sends it): a form another site (or
// another port of the same host, which SameSite counts as the same site)
// makes a browser post cannot set it.
const HeaderRequestedWith = "X-Requested-With"

// withSessionCookie presents a request's session cookie as its key when it
// carries no key of its own, so that the key middleware checks it like
// any key, scopes and tenant included. A cookie-borne request that changes
// state without HeaderRequestedWith is refused 403 FORBIDDEN.
func withSessionCookie(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(authkeys.HeaderAPIKey) == "" && r.Header.Get("Authorization") == "" {
			if c, err := r.Cookie(SessionCookie); err == nil && strings.HasPrefix(c.Value, sessionPrefix) {
				if authkeys.RequireMutating(r) && r.Header.Get(HeaderRequestedWith) == "" {
					writeEnvelope(w, r, http.StatusForbidden, CodeForbidden,
						"a request made with a session cookie that changes state needs the "+HeaderRequestedWith+" header", nil)
					return
				}
				r = r.Clone(r.Context())
				r.Header.Set("Authorization", "Bearer "+c.Value)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// sessionView is the answer of the session routes.
type sessionView struct {
	AuthEnabled   bool       `json:"auth_enabled"`
	OpenReads     bool       `json:"open_reads"`
	Authenticated bool       `json:"authenticated"`
	KeyID         string     `json:"key_id,omitempty"`
	Tenant        string     `json:"tenant,omitempty"`
	Scopes        []string   `json:"scopes,omitempty"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
	// Features says which optional parts this server runs, so that a page
	// does not ask for what is not there; only to those who may read.
	Features *features `json:"features,omitempty"`
}

type features struct {
	JetDrive  bool `json:"jetdrive"`
	Jetstream bool `json:"jetstream"`
}

func (s *Server) features() *features {
	return &features{JetDrive: s.cfg.JetDrive != nil, Jetstream: s.cfg.Jetstream != nil}
}

func (s *Server) sessionOf(id authkeys.Identity, exp time.Time) sessionView {
	v := sessionView{AuthEnabled: s.cfg.Auth.Enabled, OpenReads: s.cfg.Auth.OpenReads, Authenticated: true,
		KeyID: string(id.ID), Tenant: id.Tenant, Scopes: strings.Split(id.Scopes.String(), "+"), Features: s.features()}
	if !exp.IsZero() {
		e := exp.UTC()
		v.ExpiresAt = &e
	}
	return v
}

func (s *Server) cookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: SessionCookie, Value: value, Path: s.cfg.BasePath + "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.cfg.Auth.SecureCookie || r.TLS != nil}
}

// handleSessionCreate exchanges an API key, sent once in the body (never
// in a URL), for a session cookie.
func (s *Server) handleSessionCreate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Key string `json:"key"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if !s.cfg.Auth.Enabled {
		writeJSON(w, http.StatusOK, sessionView{Features: s.features()})
		return nil
	}
	if req.Key == "" {
		return invalid("key", "key is required: the API key to sign in with")
	}
	if strings.HasPrefix(req.Key, sessionPrefix) {
		return &Error{Status: http.StatusForbidden, Code: authkeys.CodeInvalidAPIKey, Message: authkeys.MessageInvalidAPIKey}
	}
	id, err := s.keys.Verify(r.Context(), req.Key)
	if err != nil {
		if errors.Is(err, authkeys.ErrInvalid) || errors.Is(err, authkeys.ErrMissing) {
			s.log.Warn("session refused", "event", "auth_invalid", "remote_ip", clientIP(r, s.cfg.TrustedProxies).String(),
				"request_id", RequestID(r.Context()))
			return &Error{Status: http.StatusForbidden, Code: authkeys.CodeInvalidAPIKey, Message: authkeys.MessageInvalidAPIKey}
		}
		return err
	}
	tok, exp := s.sessions.issue(id)
	http.SetCookie(w, s.cookie(r, tok, int(s.cfg.Auth.SessionTTL/time.Second)))
	s.log.Info("session started", "key_id", string(id.ID), "tenant", id.Tenant, "request_id", RequestID(r.Context()))
	writeJSON(w, http.StatusOK, s.sessionOf(id, exp))
	return nil
}

// handleSessionGet says whether the request's cookie is a valid session.
// It is never an error: the UI decides from it whether to show a login.
func (s *Server) handleSessionGet(w http.ResponseWriter, r *http.Request) error {
	v := sessionView{AuthEnabled: s.cfg.Auth.Enabled, OpenReads: s.cfg.Auth.OpenReads}
	if !s.cfg.Auth.Enabled || s.cfg.Auth.OpenReads {
		v.Features = s.features()
	}
	if !s.cfg.Auth.Enabled {
		writeJSON(w, http.StatusOK, v)
		return nil
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		if id, exp, err := s.sessions.verify(c.Value); err == nil {
			if cur, err := s.keys.current(r.Context(), id); err == nil {
				v = s.sessionOf(cur, exp)
			}
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, v)
	return nil
}

// handleSessionDelete ends the browser's session by clearing its cookie.
func (s *Server) handleSessionDelete(w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, s.cookie(r, "", -1))
	writeJSON(w, http.StatusOK, sessionView{AuthEnabled: s.cfg.Auth.Enabled, OpenReads: s.cfg.Auth.OpenReads})
	return nil
}
