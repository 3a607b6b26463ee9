package envvar

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(m map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestBool(t *testing.T) {
	tests := []struct {
		val     *string
		def     bool
		want    bool
		wantErr bool
	}{
		{nil, true, true, false},
		{ptr(""), true, true, false},
		{ptr("  "), false, false, false},
		{ptr(" On "), false, true, false},
		{ptr("NO"), true, false, false},
		{ptr("0"), true, false, false},
		{ptr("ture"), true, true, true},
	}
	for _, tc := range tests {
		m := map[string]string{}
		if tc.val != nil {
			m["X"] = *tc.val
		}
		got, err := Bool(env(m), "X", tc.def)
		if tc.wantErr {
			require.ErrorIs(t, err, ErrNotBool)
			assert.Contains(t, err.Error(), `X="ture"`)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, "%v", m)
	}
}

func TestPositiveInt(t *testing.T) {
	for in, want := range map[string]int{"": 30, " 5 ": 5, "120": 120} {
		got, err := PositiveInt(env(map[string]string{"N": in}), "N", 30)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"x", "0", "-3", "1.5", "99999999999999999999"} {
		_, err := PositiveInt(env(map[string]string{"N": bad}), "N", 30)
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "N=")
	}
}

func TestNilLookup(t *testing.T) {
	_, err := Bool(nil, "X", false)
	require.ErrorIs(t, err, ErrNoLookup)
	_, err = PositiveInt(nil, "X", 1)
	require.ErrorIs(t, err, ErrNoLookup)
	_, err = String(nil, "X")
	require.ErrorIs(t, err, ErrNoLookup)
}

func ptr(s string) *string { return &s }
