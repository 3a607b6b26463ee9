package ve

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynoai/dynoai/dyno/dynosim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decelSession analyzes holds over a grid and three closed-throttle
// decels from 4500 to 2000 rpm; decelFuel 0 cuts fuel in them, 0.88 keeps
// fueling 13.6 % lean (a popping decel).
func decelSession(t *testing.T, decelFuel float64) *Result {
	t.Helper()
	g := Grid{RPM: []float64{2000, 2500, 3000, 3500, 4000, 4500}, MAP: []float64{20, 40, 60, 80, 95}}
	plan := dynosim.GridPlan(g.RPM, g.MAP[1:], time.Second)
	for range 3 {
		plan = append(plan, dynosim.DecelStep(4500, 2000, 0, 0))
	}
	sim, err := dynosim.New(dynosim.Config{Seed: 4, Noise: dynosim.TypicalNoise(), Plan: plan, DecelFuel: decelFuel})
	require.NoError(t, err)
	a, err := New(Options{Grid: g})
	require.NoError(t, err)
	res, err := a.Analyze(t.Context(), sim)
	require.NoError(t, err)
	return res
}

// TestDecelLeanRegion: a decel fueled 13.6 % lean is found in the decel
// cells (closed throttle, low load, the RPM it falls through), its
// enrichment proposed within the 15 % limit; with fuel cut the same
// decels are fuel-cut readings and nothing is proposed. The correction of
// the held cells is the same either way: decel never reaches it.
func TestDecelLeanRegion(t *testing.T) {
	lean := decelSession(t, 0.88)
	cut := decelSession(t, 0)
	require.Len(t, lean.Decel, 2)
	for _, d := range lean.Decel {
		assert.Positive(t, d.Samples)
		assert.Zero(t, d.Cut, "fueled decels never read fuel cut")
		require.NotEmpty(t, d.PopProne, d.Name)
		for _, c := range d.PopProne {
			assert.LessOrEqual(t, c.Load, 40.0, "decel is closed throttle, low load")
			assert.InDelta(t, 100*(1/0.88-1), c.LeanPct, 3, "cell %v/%v", c.RPM, c.Load)
			assert.InDelta(t, c.LeanPct, c.EnrichPct, 1e-9, "under the 15 % limit")
			assert.False(t, c.Limited)
		}
	}
	for _, d := range cut.Decel {
		assert.Empty(t, d.PopProne, "fuel cut is not a lean mixture")
		assert.Positive(t, d.Cut)
	}
	for ci := range lean.Cylinders {
		a, b := lean.Cylinders[ci].Correction, cut.Cylinders[ci].Correction
		for i := range a.Values {
			assert.InDelta(t, a.Values[i], b.Values[i], 0.002, "cell %d of %s: decel reached the correction", i, lean.Cylinders[ci].Name())
		}
	}
	// A tighter authority limits the proposal.
	d := finishDecelForTest(t, 0.88, DecelOptions{MaxEnrichPct: 8})
	for _, c := range d.PopProne {
		assert.Equal(t, 8.0, c.EnrichPct)
		assert.True(t, c.Limited)
	}
	// Exports.
	dir := t.TempDir()
	names, err := lean.WriteFiles(dir)
	require.NoError(t, err)
	assert.Contains(t, names, "Decel_Enrichment_Front.csv")
	assert.Contains(t, names, "Decel_Report.json")
	b, err := os.ReadFile(filepath.Join(dir, "Decel_Report.json"))
	require.NoError(t, err)
	var doc struct {
		Cylinders []struct {
			Name     string
			PopProne []map[string]any `json:"pop_prone"`
		}
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	require.Len(t, doc.Cylinders, 2)
	assert.NotEmpty(t, doc.Cylinders[0].PopProne)
	_, err = New(Options{Decel: DecelOptions{LeanPct: -1}})
	assert.Error(t, err)
	_, err = New(Options{Decel: DecelOptions{MaxEnrichPct: 60}})
	assert.Error(t, err)
}

func finishDecelForTest(t *testing.T, decelFuel float64, o DecelOptions) DecelCylinder {
	t.Helper()
	g := Grid{RPM: []float64{2000, 2500, 3000, 3500, 4000, 4500}, MAP: []float64{20, 40, 60, 80, 95}}
	plan := []dynosim.Step{dynosim.DecelStep(4500, 2000, 0, 0), dynosim.DecelStep(4500, 2000, 0, 0), dynosim.HoldStep(3000, 60, time.Second)}
	sim, err := dynosim.New(dynosim.Config{Seed: 4, Noise: dynosim.TypicalNoise(), Plan: plan, DecelFuel: decelFuel})
	require.NoError(t, err)
	a, err := New(Options{Grid: g, Decel: o})
	require.NoError(t, err)
	res, err := a.Analyze(t.Context(), sim)
	require.NoError(t, err)
	require.NotEmpty(t, res.Decel)
	return res.Decel[0]
}
