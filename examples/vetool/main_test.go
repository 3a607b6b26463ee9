package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestApplyRollbackFiles(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.csv")
	corr := filepath.Join(dir, "corr.csv")
	out := filepath.Join(dir, "new.csv")
	back := filepath.Join(dir, "back.csv")
	baseCSV := "RPM,35,50,65\n1500,58.0,58.5,59.25\n2000,60.125,66.5,71.0\n"
	require.NoError(t, os.WriteFile(base, []byte(baseCSV), 0o644))
	require.NoError(t, os.WriteFile(corr, []byte("RPM,35,50,65\n1500,1.0321,,0.9\n2000,1.2,1.0,0.995\n"), 0o644))

	var stdout bytes.Buffer
	require.NoError(t, run([]string{"apply", "-dry-run", "-base", base, "-correction", corr}, &stdout))
	require.Contains(t, stdout.String(), "dry run: nothing written")
	var before bytes.Buffer
	require.NoError(t, run([]string{"-dry-run", "-base", base, "apply", "-correction", corr}, &before), "flags before the command")
	require.Equal(t, stdout.String(), before.String())
	_, err := os.Stat(out)
	require.True(t, os.IsNotExist(err), "dry run wrote a file")

	stdout.Reset()
	require.NoError(t, run([]string{"apply", "-base", base, "-correction", corr, "-out", out}, &stdout))
	require.Contains(t, stdout.String(), "4 cells change (2 clamped")
	require.NoError(t, run([]string{"rollback", "-applied", out, "-out", back}, &stdout))
	got, err := os.ReadFile(back)
	require.NoError(t, err)
	require.Equal(t, "RPM,35,50,65\n1500,58.000,58.500,59.250\n2000,60.125,66.500,71.000\n", string(got))

	// Edit the applied table: rollback must refuse.
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(out, bytes.Replace(data, []byte("66.500000"), []byte("66.600000"), 1), 0o644))
	err = run([]string{"rollback", "-applied", out, "-out", back}, &stdout)
	require.ErrorContains(t, err, "hash mismatch")
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}, {"apply"}, {"rollback"}, {"-dry-run"}} {
		require.ErrorIs(t, run(args, &bytes.Buffer{}), errUsage, "%v", args)
	}
	require.ErrorContains(t, run([]string{"apply", "-dry-run", "base.csv"}, &bytes.Buffer{}), `unexpected argument "base.csv"`)
	require.ErrorContains(t, run([]string{"frobnicate", "-x"}, &bytes.Buffer{}), `unknown command "frobnicate"`)
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"-dry-run", "-h"}} {
		var out bytes.Buffer
		require.NoError(t, run(args, &out), "%v", args)
		require.Contains(t, out.String(), "Commands:", "%v", args)
		require.Contains(t, out.String(), "rollback")
	}
	// A command's own -h lists its flags and is not an error of the user's.
	require.ErrorIs(t, run([]string{"apply", "-h"}, &bytes.Buffer{}), flag.ErrHelp)
}
