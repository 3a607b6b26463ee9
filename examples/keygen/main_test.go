package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/dynoai/dynoai/authkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		lines int
		err   string
	}{
		{nil, 1, ""},
		{[]string{"-n", "3"}, 3, ""},
		{[]string{"-n", "0"}, 0, "between 1 and 1000"},
		{[]string{"-n", "1001"}, 0, "between 1 and 1000"},
		{[]string{"-n", "x"}, 0, "invalid value"},
		{[]string{"generate"}, 0, "unexpected argument"},
	} {
		var out, errOut bytes.Buffer
		err := run(tc.args, &out, &errOut)
		if tc.err != "" {
			require.Error(t, err, tc.args)
			assert.Contains(t, err.Error(), tc.err)
			continue
		}
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		require.Len(t, lines, tc.lines)
		for _, l := range lines {
			key, id, ok := strings.Cut(l, "\t")
			require.True(t, ok, l)
			assert.Regexp(t, `^dynoai_[A-Za-z0-9_-]{43}$`, key)
			assert.Equal(t, string(authkeys.IDOf(key)), id)
		}
	}
}
