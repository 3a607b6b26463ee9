// Package authkeystest is the conformance suite every authkeys.KeyStore
// implementation runs: identities (id, tenant, scopes) of valid keys,
// refusals of missing, wrong, untrimmed and oversized keys, an empty store
// failing closed, Len, concurrent verification, and (for stores that
// implement authkeys.Lookup) lookups by key id.
package authkeystest

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/dynoai/dynoai/authkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Opener returns a store holding exactly entries (none for an empty
// store).
type Opener func(t *testing.T, entries []authkeys.Entry) authkeys.KeyStore

// Run runs the conformance suite against the stores open returns.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		f    func(t *testing.T, open Opener)
	}{
		{"Identities", testIdentities},
		{"Refusals", testRefusals},
		{"EmptyFailsClosed", testEmpty},
		{"Concurrent", testConcurrent},
		{"LookupID", testLookupID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, open) })
	}
}

func keys(t *testing.T, n int) []string {
	t.Helper()
	k, err := authkeys.GenerateN(n)
	require.NoError(t, err)
	return k
}

func testIdentities(t *testing.T, open Opener) {
	k := keys(t, 4)
	entries := []authkeys.Entry{
		{Key: k[0]},
		{Key: k[1], Tenant: "shop-7", Scopes: authkeys.ScopeRead},
		{Key: k[2], Tenant: "shop-7", Scopes: authkeys.ScopeAnalyze | authkeys.ScopeApply},
		{Key: k[3], Tenant: "ops", Scopes: authkeys.ScopeAdmin},
	}
	s := open(t, entries)
	assert.Equal(t, len(entries), s.Len())
	ctx := context.Background()
	for _, e := range entries {
		id, err := s.Verify(ctx, e.Key)
		require.NoError(t, err)
		assert.Equal(t, authkeys.IDOf(e.Key), id.ID)
		wantTenant, wantScopes := e.Tenant, e.Scopes
		if wantTenant == "" {
			wantTenant = authkeys.OwnTenant(id.ID)
		}
		if wantScopes == 0 {
			wantScopes = authkeys.DefaultScopes
		}
		assert.Equal(t, wantTenant, id.Tenant)
		assert.Equal(t, wantScopes, id.Scopes)
	}
	admin, _ := s.Verify(ctx, k[3])
	assert.True(t, admin.Can(authkeys.ScopeRead|authkeys.ScopeApply), "admin has every scope")
	reader, _ := s.Verify(ctx, k[1])
	assert.False(t, reader.Can(authkeys.ScopeApply))
}

func testRefusals(t *testing.T, open Opener) {
	k := keys(t, 2)
	s := open(t, []authkeys.Entry{{Key: k[0]}})
	ctx := context.Background()
	_, err := s.Verify(ctx, "")
	assert.ErrorIs(t, err, authkeys.ErrMissing)
	for _, bad := range []string{k[1], " " + k[0], k[0] + " ", k[0][:len(k[0])-1], k[0] + "x", strings.ToUpper(k[0]),
		strings.Repeat("k", authkeys.MaxKeyLen+1), "x"} {
		id, err := s.Verify(ctx, bad)
		assert.ErrorIs(t, err, authkeys.ErrInvalid, "%q", bad)
		assert.NotErrorIs(t, err, authkeys.ErrNoKeys)
		assert.Empty(t, id.ID)
		assert.NotContains(t, err.Error(), bad, "an error never echoes a key")
	}
}

func testEmpty(t *testing.T, open Opener) {
	s := open(t, nil)
	assert.Zero(t, s.Len())
	_, err := s.Verify(context.Background(), keys(t, 1)[0])
	assert.ErrorIs(t, err, authkeys.ErrNoKeys)
	assert.ErrorIs(t, err, authkeys.ErrInvalid)
}

func testConcurrent(t *testing.T, open Opener) {
	k := keys(t, 20)
	entries := make([]authkeys.Entry, len(k))
	for i := range k {
		entries[i] = authkeys.Entry{Key: k[i], Tenant: "t" + string(rune('a'+i))}
	}
	s := open(t, entries)
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				e := entries[(g+i)%len(entries)]
				id, err := s.Verify(context.Background(), e.Key)
				if err != nil || id.Tenant != e.Tenant {
					errs <- e.Tenant
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for tenant := range errs {
		t.Errorf("key of tenant %s did not verify to it", tenant)
	}
}

// testLookupID: a store that looks keys up by id gives the identity Verify
// gives, ErrInvalid for an id it does not hold and ErrNoKeys when empty.
func testLookupID(t *testing.T, open Opener) {
	k := keys(t, 3)
	s := open(t, []authkeys.Entry{{Key: k[0], Tenant: "shop-7", Scopes: authkeys.ScopeRead}, {Key: k[1]}})
	l, ok := s.(authkeys.Lookup)
	if !ok {
		t.Skipf("%T does not implement authkeys.Lookup", s)
	}
	ctx := context.Background()
	for _, key := range k[:2] {
		want, err := s.Verify(ctx, key)
		require.NoError(t, err)
		got, err := l.LookupID(ctx, want.ID)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := l.LookupID(ctx, authkeys.IDOf(k[2]))
	assert.ErrorIs(t, err, authkeys.ErrInvalid)
	assert.NotErrorIs(t, err, authkeys.ErrNoKeys)
	empty, ok := open(t, nil).(authkeys.Lookup)
	require.True(t, ok)
	_, err = empty.LookupID(ctx, authkeys.IDOf(k[0]))
	assert.ErrorIs(t, err, authkeys.ErrNoKeys)
}
