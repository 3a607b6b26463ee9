package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/internal/demo"
)

// The written log must read back through the library's own reader with
// every row, both widebands and the logger's resolution.
func TestSimulateWritesReadableLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sim.csv")
	require.NoError(t, run(demo.DefaultScenario(7), path))
	rd, err := dyno.Open(path, dyno.ReadOptions{})
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
