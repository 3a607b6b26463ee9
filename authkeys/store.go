package authkeys

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dynoai/dynoai/internal/envvar"
)

// KeyStore verifies presented API keys.
//
// Verify returns the [Identity] of a valid key (its id, tenant and scopes);
// otherwise an error that
// errors.Is [ErrMissing] (empty key), [ErrNoKeys] (the store is empty, which
// also matches ErrInvalid) or [ErrInvalid]. The presented key is compared
// exactly as given: it is not trimmed. Implementations are safe for
// concurrent use.
type KeyStore interface {
	Verify(ctx context.Context, presented string) (Identity, error)
	// Len returns the number of distinct keys currently held.
	Len() int
}

// Reloader is a KeyStore whose keys can be re-read from their source.
// Reload returns the number of keys after the reload. On error the previous
// keys stay in force.
type Reloader interface {
	Reload(ctx context.Context) (int, error)
}

// Watcher is a KeyStore that can watch its source and reload on change.
// Watch blocks until ctx is done and returns ctx.Err().
type Watcher interface {
	Watch(ctx context.Context) error
}

// Lookup is a KeyStore that can look a key up by its id, without the key
// itself: whether it is still held, with its tenant and scopes now. A
// credential made from a key earlier (httpapi's browser sessions) asks it,
// so revoking the key ends the credential too. Memory, Env, File and Multi
// implement it.
type Lookup interface {
	// LookupID returns the identity of the key with the given id, or an
	// error matching ErrInvalid when the store holds no such key (ErrNoKeys
	// when it holds none at all), or ErrNoLookup when it cannot tell.
	LookupID(ctx context.Context, id KeyID) (Identity, error)
}

// ErrNoLookup is LookupID's answer from a Multi that has a store which
// cannot look keys up by id: the key may be held there.
var ErrNoLookup = errors.New("authkeys: a store cannot look keys up by id")

// digestVerifier lets Multi hash a presented key once for all its stores.
type digestVerifier interface {
	verifyDigest(d *Digest) (Identity, error)
}

// holder is the atomically swapped key set shared by the stores.
type holder struct{ p atomic.Pointer[keySet] }

func (h *holder) load() *keySet {
	if s := h.p.Load(); s != nil {
		return s
	}
	return emptySet
}

func (h *holder) Len() int { return len(h.load().digests) }

func (h *holder) verifyDigest(d *Digest) (Identity, error) { return h.load().verifyDigest(d) }

// LookupID implements Lookup. Key ids are not secret (logs carry them), so
// the search need not take constant time.
func (h *holder) LookupID(ctx context.Context, id KeyID) (Identity, error) {
	if err := ctx.Err(); err != nil {
		return Identity{}, err
	}
	s := h.load()
	if len(s.digests) == 0 {
		return Identity{}, ErrNoKeys
	}
	for _, ident := range s.idents {
		if ident.ID == id {
			return ident, nil
		}
	}
	return Identity{}, ErrInvalid
}

// Memory is a KeyStore whose keys are set in code. The zero value holds no
// keys and is ready to use.
type Memory struct {
	holder
	mu sync.Mutex // serialises Set, Add and Remove
}

// NewMemory returns a Memory holding entries. A key outside
// MinKeyLen..MaxKeyLen, with a character that may not appear in a key, an
// invalid tenant, or given twice with different tenants or scopes is an
// error naming the entry's position (never the key).
func NewMemory(entries ...Entry) (*Memory, error) {
	m := &Memory{}
	if err := m.Set(entries...); err != nil {
		return nil, err
	}
	return m, nil
}

// checkEntries validates entries given in code as ParseEntry would.
func checkEntries(entries []Entry) error {
	for i, e := range entries {
		if _, p := parseEntry(e.Key); p != nil || strings.ContainsAny(e.Key, " \t") {
			reason := "not a single key"
			if p != nil {
				reason = p.reason
				if reason == "" {
					reason = fmt.Sprintf("character %U is not allowed in a key", p.char)
				}
			}
			return fmt.Errorf("authkeys: entry %d: %s", i+1, reason)
		}
		if e.Tenant != "" && !ValidTenant(e.Tenant) {
			return fmt.Errorf("authkeys: entry %d: tenant %q: want 1 to 64 of [A-Za-z0-9._:-], starting with a letter or digit", i+1, e.Tenant)
		}
		if e.Scopes&^(ScopeRead|ScopeAnalyze|ScopeApply|ScopeAdmin) != 0 {
			return fmt.Errorf("authkeys: entry %d: unknown scope bits %#x", i+1, uint8(e.Scopes))
		}
	}
	return checkRepeats(entries, func(i int) string { return fmt.Sprintf("entry %d", i+1) })
}

// Set replaces every key of m atomically. On error m is unchanged.
func (m *Memory) Set(entries ...Entry) error {
	if err := checkEntries(entries); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.p.Store(newKeySet(entries))
	return nil
}

// Add adds entries to m atomically (a key m already holds keeps its
// identity). On error m is unchanged.
func (m *Memory) Add(entries ...Entry) error {
	if err := checkEntries(entries); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.load()
	next := &keySet{digests: append([]Digest(nil), old.digests...), idents: append([]Identity(nil), old.idents...)}
	for _, e := range entries {
		d := DigestOf(e.Key)
		if _, ok := next.match(&d); ok {
			continue
		}
		next.digests = append(next.digests, d)
		next.idents = append(next.idents, e.identity(d.ID()))
	}
	m.p.Store(next)
	return nil
}

// Remove removes the key with the given id, reporting whether it was there.
func (m *Memory) Remove(id KeyID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.load()
	next := &keySet{}
	found := false
	for i, ident := range old.idents {
		if ident.ID == id {
			found = true
			continue
		}
		next.digests = append(next.digests, old.digests[i])
		next.idents = append(next.idents, ident)
	}
	m.p.Store(next)
	return found
}

// Verify implements KeyStore.
func (m *Memory) Verify(_ context.Context, presented string) (Identity, error) {
	return m.load().verify(presented)
}

// EnvVar is the environment variable [Env] reads by default.
const EnvVar = "API_KEYS"

// Env is a KeyStore reading a comma-separated list of entries (keys with
// optional tenant and scopes) from an environment variable (see
// [ParseList]) when created and on every Reload.
type Env struct {
	holder
	name   string
	lookup func(string) (string, bool)
	mu     sync.Mutex
}

// NewEnv reads the variable name (EnvVar when empty) through lookup (a main
// package passes os.LookupEnv; nil is an error). An unset or empty variable
// means no keys.
func NewEnv(name string, lookup func(string) (string, bool)) (*Env, error) {
	if name == "" {
		name = EnvVar
	}
	if lookup == nil {
		return nil, fmt.Errorf("authkeys: environment variable %s: %w", name, envvar.ErrNoLookup)
	}
	e := &Env{name: name, lookup: lookup}
	if _, err := e.Reload(context.Background()); err != nil {
		return nil, err
	}
	return e, nil
}

// Reload re-reads the variable and swaps the key set atomically.
func (e *Env) Reload(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return e.Len(), err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	v, _ := e.lookup(e.name)
	entries, err := ParseList(v)
	if err != nil {
		return e.Len(), fmt.Errorf("authkeys: environment variable %s: %w", e.name, err)
	}
	s := newKeySet(entries)
	e.p.Store(s)
	return len(s.digests), nil
}

// Verify implements KeyStore.
func (e *Env) Verify(_ context.Context, presented string) (Identity, error) {
	return e.load().verify(presented)
}

// Multi is a KeyStore whose keys are the union of other stores' keys. A key
// is valid if any store holds it; every store is consulted for every key,
// so the time taken does not depend on which store (if any) matched.
type Multi struct {
	stores []KeyStore
}

// NewMulti returns the union of stores (nil stores are skipped).
func NewMulti(stores ...KeyStore) *Multi {
	m := &Multi{}
	for _, s := range stores {
		if s != nil {
			m.stores = append(m.stores, s)
		}
	}
	return m
}

// Stores returns the stores of m.
func (m *Multi) Stores() []KeyStore { return append([]KeyStore(nil), m.stores...) }

// Len returns the sum of the stores' key counts (a key held by two stores
// counts twice).
func (m *Multi) Len() int {
	n := 0
	for _, s := range m.stores {
		n += s.Len()
	}
	return n
}

// LookupID implements Lookup: the first store holding the key answers.
// When none does and a store cannot look keys up, it is ErrNoLookup.
func (m *Multi) LookupID(ctx context.Context, id KeyID) (Identity, error) {
	unsupported, haveKeys := false, false
	for _, s := range m.stores {
		l, ok := s.(Lookup)
		if !ok {
			unsupported = true
			continue
		}
		ident, err := l.LookupID(ctx, id)
		switch {
		case err == nil:
			return ident, nil
		case errors.Is(err, ErrNoLookup):
			unsupported = true
		case errors.Is(err, ErrNoKeys):
		case errors.Is(err, ErrInvalid):
			haveKeys = true
		default:
			return Identity{}, err
		}
	}
	switch {
	case unsupported:
		return Identity{}, ErrNoLookup
	case !haveKeys:
		return Identity{}, ErrNoKeys
	}
	return Identity{}, ErrInvalid
}

// Verify implements KeyStore.
func (m *Multi) Verify(ctx context.Context, presented string) (Identity, error) {
	if presented == "" {
		return Identity{}, ErrMissing
	}
	if len(presented) > MaxKeyLen {
		if m.Len() == 0 {
			return Identity{}, ErrNoKeys
		}
		return Identity{}, ErrInvalid
	}
	d := DigestOf(presented)
	var (
		id       Identity
		ok       bool
		failure  error // a store failure other than "not this key"
		haveKeys bool
	)
	for _, s := range m.stores {
		var (
			kid Identity
			err error
		)
		if dv, isDV := s.(digestVerifier); isDV {
			kid, err = dv.verifyDigest(&d)
		} else {
			kid, err = s.Verify(ctx, presented)
		}
		switch {
		case err == nil:
			if !ok {
				id, ok = kid, true
			}
		case errors.Is(err, ErrNoKeys):
		case errors.Is(err, ErrInvalid):
			haveKeys = true
		default:
			if failure == nil {
				failure = err
			}
		}
	}
	switch {
	case ok:
		return id, nil
	case failure != nil:
		return Identity{}, failure
	case !haveKeys:
		return Identity{}, ErrNoKeys
	}
	return Identity{}, ErrInvalid
}

// Reload reloads every store that is a [Reloader] and returns the new total
// key count with the errors of the stores that failed (joined).
func (m *Multi) Reload(ctx context.Context) (int, error) {
	var errs []error
	for _, s := range m.stores {
		if r, ok := s.(Reloader); ok {
			if _, err := r.Reload(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return m.Len(), errors.Join(errs...)
}

// Watch runs Watch on every store that is a [Watcher] until ctx is done.
func (m *Multi) Watch(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, s := range m.stores {
		if w, ok := s.(Watcher); ok {
			wg.Go(func() { _ = w.Watch(ctx) })
		}
	}
	wg.Wait()
	<-ctx.Done()
	return ctx.Err()
}
