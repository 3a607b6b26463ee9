package authkeys_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynoai/dynoai/authkeys"
	"github.com/dynoai/dynoai/authkeys/authkeystest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func lines(entries []authkeys.Entry) string {
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e.String() + "\n")
	}
	return b.String()
}

func TestMemoryConformance(t *testing.T) {
	authkeystest.Run(t, func(t *testing.T, entries []authkeys.Entry) authkeys.KeyStore {
		m, err := authkeys.NewMemory(entries...)
		require.NoError(t, err)
		return m
	})
}

func TestFileConformance(t *testing.T) {
	authkeystest.Run(t, func(t *testing.T, entries []authkeys.Entry) authkeys.KeyStore {
		p := filepath.Join(t.TempDir(), "keys.txt")
		body := authkeys.FileHeader + "\n" + lines(entries) + authkeys.FileTrailer + "\n"
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		f, err := authkeys.OpenFile(p, authkeys.FileOptions{})
		require.NoError(t, err)
		return f
	})
}

func TestEnvConformance(t *testing.T) {
	authkeystest.Run(t, func(t *testing.T, entries []authkeys.Entry) authkeys.KeyStore {
		parts := make([]string, len(entries))
		for i, e := range entries {
			parts[i] = e.String()
		}
		v := strings.Join(parts, ",")
		e, err := authkeys.NewEnv("KEYS", func(string) (string, bool) { return v, true })
		require.NoError(t, err)
		return e
	})
}

// TestMultiConformance: the union of a memory store and an environment
// store, each holding half the entries.
func TestMultiConformance(t *testing.T) {
	authkeystest.Run(t, func(t *testing.T, entries []authkeys.Entry) authkeys.KeyStore {
		half := len(entries) / 2
		m, err := authkeys.NewMemory(entries[:half]...)
		require.NoError(t, err)
		parts := []string{}
		for _, e := range entries[half:] {
			parts = append(parts, e.String())
		}
		v := strings.Join(parts, ",")
		e, err := authkeys.NewEnv("KEYS", func(string) (string, bool) { return v, true })
		require.NoError(t, err)
		return authkeys.NewMulti(m, e)
	})
}

// verifyOnly is a KeyStore that cannot look keys up by id.
type verifyOnly struct{ authkeys.KeyStore }

// TestMultiLookupWithAStoreThatCannot: a Multi answers a held key's id from
// the store that holds it, and ErrNoLookup (not ErrInvalid) for another id
// when one of its stores cannot look keys up: the key may be there.
func TestMultiLookupWithAStoreThatCannot(t *testing.T) {
	keys, err := authkeys.GenerateN(2)
	require.NoError(t, err)
	a, err := authkeys.NewMemory(authkeys.Entry{Key: keys[0]})
	require.NoError(t, err)
	b, err := authkeys.NewMemory(authkeys.Entry{Key: keys[1]})
	require.NoError(t, err)
	m := authkeys.NewMulti(a, verifyOnly{b})
	ctx := context.Background()
	got, err := m.LookupID(ctx, authkeys.IDOf(keys[0]))
	require.NoError(t, err)
	assert.Equal(t, authkeys.IDOf(keys[0]), got.ID)
	_, err = m.LookupID(ctx, authkeys.IDOf(keys[1]))
	assert.ErrorIs(t, err, authkeys.ErrNoLookup)
	require.True(t, a.Remove(authkeys.IDOf(keys[0])))
	_, err = authkeys.NewMulti(a).LookupID(ctx, authkeys.IDOf(keys[0]))
	assert.ErrorIs(t, err, authkeys.ErrNoKeys, "removed: the store holds none now")
}
