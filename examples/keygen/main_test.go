package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynoai/dynoai/authkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var clock = func() time.Time { return time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC) }

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		keys   int
		tenant string
		scopes authkeys.Scopes
		err    string
	}{
		{nil, 1, "", authkeys.DefaultScopes, ""},
		{[]string{"-n", "3", "-tenant", "shop-7", "-scopes", "read+analyze"}, 3, "shop-7", authkeys.ScopeRead | authkeys.ScopeAnalyze, ""},
		{[]string{"-scopes", "admin"}, 1, "", authkeys.ScopeAdmin, ""},
		{[]string{"-n", "0"}, 0, "", 0, "between 1 and 1000"},
		{[]string{"-n", "1001"}, 0, "", 0, "between 1 and 1000"},
		{[]string{"-n", "x"}, 0, "", 0, "invalid value"},
		{[]string{"-tenant", "no spaces"}, 0, "", 0, "-tenant"},
		{[]string{"-scopes", "read+write"}, 0, "", 0, `unknown scope "write"`},
		{[]string{"generate"}, 0, "", 0, "unexpected argument"},
	} {
		var out, errOut bytes.Buffer
		err := run(tc.args, &out, &errOut, clock)
		if tc.err != "" {
			require.Error(t, err, tc.args)
			assert.Contains(t, err.Error(), tc.err)
			continue
		}
		require.NoError(t, err)
		// The output is a whole keys file the server loads as it is.
		entries, err := authkeys.ParseFile(out.Bytes())
		require.NoError(t, err, out.String())
		require.Len(t, entries, tc.keys)
		assert.True(t, strings.HasPrefix(out.String(), authkeys.FileHeader+"\n"))
		assert.True(t, strings.HasSuffix(out.String(), authkeys.FileTrailer+"\n"))
		m, err := authkeys.NewMemory(entries...)
		require.NoError(t, err)
		for _, e := range entries {
			assert.Regexp(t, `^dynoai_[A-Za-z0-9_-]{43}$`, e.Key)
			assert.Contains(t, out.String(), "# key id "+string(authkeys.IDOf(e.Key))+", made 2026-04-01T08:00:00Z")
			id, err := m.Verify(context.Background(), e.Key)
			require.NoError(t, err)
			want := tc.tenant
			if want == "" {
				want = authkeys.OwnTenant(id.ID)
			}
			assert.Equal(t, want, id.Tenant)
			assert.Equal(t, tc.scopes, id.Scopes)
		}
	}
}

// TestAddToFile: -file adds keys to an existing file atomically, keeping
// its keys, and refuses to touch a file that does not parse whole.
func TestAddToFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.txt")
	old := strings.Repeat("o", 30)
	require.NoError(t, os.WriteFile(path, []byte("# legacy list\n"+old+"\n"), 0o640))
	var out bytes.Buffer
	require.NoError(t, run([]string{"-file", path, "-tenant", "shop-1"}, &out, &out, clock))
	require.NoError(t, run([]string{"-file", path, "-n", "2", "-scopes", "read"}, &out, &out, clock))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	entries, err := authkeys.ParseFile(data)
	require.NoError(t, err, string(data))
	require.Len(t, entries, 4)
	assert.Equal(t, old, entries[0].Key)
	assert.Equal(t, "shop-1", entries[1].Tenant)
	assert.Equal(t, authkeys.ScopeRead, entries[3].Scopes)
	assert.True(t, strings.HasPrefix(string(data), authkeys.FileHeader+"\n"))
	assert.Equal(t, 1, strings.Count(string(data), authkeys.FileTrailer+"\n"))
	assert.NotContains(t, out.String(), entries[1].Key, "with -file the keys are not printed")
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), st.Mode().Perm(), "permissions kept")

	// A file that is cut off is left alone.
	cut := data[:len(data)-10]
	require.NoError(t, os.WriteFile(path, cut, 0o600))
	err = run([]string{"-file", path}, &out, &out, clock)
	require.ErrorContains(t, err, "does not parse whole")
	after, _ := os.ReadFile(path)
	assert.Equal(t, cut, after)

	// A missing file is created.
	fresh := filepath.Join(dir, "new.txt")
	require.NoError(t, run([]string{"-file", fresh}, &out, &out, clock))
	data, err = os.ReadFile(fresh)
	require.NoError(t, err)
	entries, err = authkeys.ParseFile(data)
	require.NoError(t, err)
	assert.Len(t, entries, 1)
}
