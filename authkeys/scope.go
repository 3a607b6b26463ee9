package authkeys

import (
	"fmt"
	"strings"
)

// Scopes is a set of permissions a key has.
type Scopes uint8

// The scopes. ScopeAdmin includes every other scope and sees every tenant's
// data.
const (
	ScopeRead    Scopes = 1 << iota // read runs, files, results, live data
	ScopeAnalyze                    // upload logs for analysis, start syncs, delete runs
	ScopeApply                      // upload base tables, apply and roll back corrections
	ScopeAdmin                      // everything, across tenants; operational detail

	// DefaultScopes are the scopes of a key given without any: read,
	// analyze and apply, as every key had before scopes existed.
	DefaultScopes = ScopeRead | ScopeAnalyze | ScopeApply
)

var scopeNames = []struct {
	s    Scopes
	name string
}{{ScopeRead, "read"}, {ScopeAnalyze, "analyze"}, {ScopeApply, "apply"}, {ScopeAdmin, "admin"}}

// Has reports whether s includes every scope of want (admin includes all).
func (s Scopes) Has(want Scopes) bool {
	return s&ScopeAdmin != 0 || s&want == want
}

// String writes s as ParseScopes reads it, e.g. "read+analyze".
func (s Scopes) String() string {
	var parts []string
	for _, n := range scopeNames {
		if s&n.s != 0 {
			parts = append(parts, n.name)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

// ParseScopes reads scope names joined by '+' ("read+analyze"), in any
// case. An empty list, an unknown name or a repeated one is an error.
func ParseScopes(list string) (Scopes, error) {
	if list == "" {
		return 0, fmt.Errorf("empty scope list (want read, analyze, apply or admin, joined by +)")
	}
	var s Scopes
	for _, p := range strings.Split(list, "+") {
		found := false
		for _, n := range scopeNames {
			if strings.EqualFold(p, n.name) {
				if s&n.s != 0 {
					return 0, fmt.Errorf("scope %q given twice", n.name)
				}
				s |= n.s
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown scope %q (want read, analyze, apply or admin, joined by +)", p)
		}
	}
	return s, nil
}

// ValidTenant reports whether t is a tenant name: 1 to 64 characters of
// [A-Za-z0-9._:-] starting with a letter or a digit (package runstore uses
// the same rule).
func ValidTenant(t string) bool {
	if len(t) == 0 || len(t) > 64 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != ':' && c != '-') {
			return false
		}
	}
	return true
}

// Identity is who a verified key is: its id, the tenant that owns what it
// makes, and what it may do.
type Identity struct {
	ID     KeyID
	Tenant string
	Scopes Scopes
}

// Can reports whether the identity has every scope of want.
func (id Identity) Can(want Scopes) bool { return id.Scopes.Has(want) }

// Entry is one key with its owner and scopes, as a keys file line, an
// API_KEYS entry or NewMemory gives it.
type Entry struct {
	Key string
	// Tenant owns what the key makes; "" means the key is its own tenant,
	// named "key-" followed by its KeyID.
	Tenant string
	// Scopes the key has; zero means DefaultScopes.
	Scopes Scopes
}

// OwnTenant is the tenant of a key given without one.
func OwnTenant(id KeyID) string { return "key-" + string(id) }

// identity returns e's identity with the defaults filled in.
func (e Entry) identity(id KeyID) Identity {
	ident := Identity{ID: id, Tenant: e.Tenant, Scopes: e.Scopes}
	if ident.Tenant == "" {
		ident.Tenant = OwnTenant(id)
	}
	if ident.Scopes == 0 {
		ident.Scopes = DefaultScopes
	}
	return ident
}

// String writes e in the line format (see ParseEntry), key included.
func (e Entry) String() string {
	var b strings.Builder
	b.WriteString(e.Key)
	if e.Tenant != "" {
		b.WriteString(" tenant=" + e.Tenant)
	}
	if e.Scopes != 0 {
		b.WriteString(" scopes=" + e.Scopes.String())
	}
	return b.String()
}
