package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynolog"
	"github.com/dynoai/dynoai/tune"
)

// The written log must read back through the library's own reader with
// every row, both widebands and the logger's resolution.
func TestSimulateWritesReadableLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sim.csv")
	sc, err := tune.ScenarioByName("demo", 7)
	require.NoError(t, err)
	require.NoError(t, run(sc, path))
	rd, err := dynolog.Open(path, dynolog.ReadOptions{})
	require.NoError(t, err)
	defer rd.Close()
	samples, err := dyno.Collect(t.Context(), rd)
	require.NoError(t, err)
	require.Greater(t, len(samples), 5000)
	l := rd.Layout()
	require.Equal(t, 2, l.Cylinders)
	for _, c := range []dyno.Channel{dyno.ChanRPM, dyno.ChanMAP, dyno.ChanAFR, dyno.ChanAFRCommanded, dyno.ChanTorque, dyno.ChanPower} {
		require.True(t, l.Channels.Has(c), "missing %v", c)
	}
	for _, s := range samples[:100] {
		require.Equal(t, s.RPM, float64(int(s.RPM)), "rpm is logged whole")
	}
}

// The shipped sample log and its ECU's VE tables are exactly what the
// command writes without flags (regenerate them with the command in the
// package doc when the simulator changes).
func TestShippedSampleIsCurrent(t *testing.T) {
	sc, err := defaultScenario()
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, run(sc, filepath.Join(dir, "sample_pulls.csv")))
	require.NoError(t, writeECUVE(sc, filepath.Join(dir, "ve_base")))
	for _, name := range []string{"sample_pulls.csv", "ve_base_Front.csv", "ve_base_Rear.csv"} {
		want, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join("..", "..", "testdata", name))
		require.NoError(t, err)
		if runtime.GOARCH != "amd64" {
			// Other architectures may fuse multiply-adds, which can move a
			// rounded digit: the shape must match, the bytes need not.
			require.Equal(t, bytes.Count(want, []byte("\n")), bytes.Count(got, []byte("\n")), name)
			require.Equal(t, want[:bytes.IndexByte(want, '\n')], got[:bytes.IndexByte(got, '\n')], name)
			continue
		}
		require.True(t, bytes.Equal(want, got),
			"testdata/%s is not what examples/simulate writes; run: go run ./examples/simulate -out testdata/sample_pulls.csv -ecu-ve testdata/ve_base", name)
	}
}
