package main

import (
	"path/filepath"
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
