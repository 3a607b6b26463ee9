package tune_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/dyno/dynosim"
	"github.com/dynoai/dynoai/tune"
	"github.com/dynoai/dynoai/ve"
)

// result builds a one-cylinder result whose cells hold the given effective
// samples (rows RPM, columns MAP).
func result(rpm, mp []float64, eff [][]float64) *ve.Result {
	corr := ve.MustTable(rpm, mp, 1)
	cells := make([]ve.Cell, len(rpm)*len(mp))
	for i := range rpm {
		for j := range mp {
			cells[i*len(mp)+j].EffectiveSamples = eff[i][j]
		}
	}
	return &ve.Result{Grid: ve.Grid{RPM: rpm, MAP: mp}, Cylinders: []ve.CylinderResult{{Correction: corr, Cells: cells}}}
}

func TestPlannerShapes(t *testing.T) {
	rpm := []float64{2000, 2500, 3000, 3500, 4000}
	mp := []float64{40, 60, 100}
	for _, tt := range []struct {
		name  string
		eff   [][]float64
		kinds []string
		cells int
	}{
		{"all covered", [][]float64{{60, 60, 60}, {60, 60, 60}, {60, 60, 60}, {60, 60, 60}, {60, 60, 60}}, nil, 0},
		// A whole row weak: one sweep, not five holds.
		{"weak row", [][]float64{{0, 60, 60}, {0, 60, 60}, {10, 60, 60}, {0, 60, 60}, {0, 60, 60}}, []string{"sweep"}, 5},
		// Two isolated cells: holds.
		{"isolated", [][]float64{{60, 60, 60}, {20, 60, 60}, {60, 60, 60}, {60, 40, 60}, {60, 60, 60}}, []string{"hold", "hold"}, 2},
		// Full load: a pull for a run, a WOT hold for a single cell.
		{"full load", [][]float64{{60, 60, 0}, {60, 60, 0}, {60, 60, 0}, {60, 60, 60}, {60, 60, 0}}, []string{"pull", "hold"}, 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tests, err := tune.Planner(result(rpm, mp, tt.eff), tune.PlannerOptions{})
			require.NoError(t, err)
			var kinds []string
			cells := 0
			for _, ts := range tests {
				kinds = append(kinds, ts.Kind)
				cells += len(ts.Cells)
				assert.Positive(t, ts.Seconds)
				assert.GreaterOrEqual(t, ts.Passes, 1)
				if ts.Kind == "hold" && ts.MAPKPa == 100 {
					assert.Equal(t, 100.0, ts.TPS, "a full-load hold runs at wide-open throttle")
				}
			}
			assert.Equal(t, tt.kinds, kinds)
			assert.Equal(t, tt.cells, cells)
			steps := tune.Steps(tests, 0)
			assert.GreaterOrEqual(t, len(steps), len(tests))
			for _, st := range steps {
				assert.Contains(t, []dynosim.StepKind{dynosim.StepHold, dynosim.StepSweep, dynosim.StepPull}, st.Kind)
			}
		})
	}
}

// A sweep is cheaper than holding each cell of a long weak run.
func TestPlannerPrefersSweeps(t *testing.T) {
	rpm := []float64{1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000}
	eff := make([][]float64, len(rpm))
	for i := range eff {
		eff[i] = []float64{0}
	}
	res := result(rpm, []float64{50}, eff)
	sweep, err := tune.Planner(res, tune.PlannerOptions{})
	require.NoError(t, err)
	holds, err := tune.Planner(res, tune.PlannerOptions{MinSweepCells: 100})
	require.NoError(t, err)
	require.Len(t, sweep, 1)
	require.Len(t, holds, len(rpm))
	assert.Less(t, tune.TotalSeconds(sweep), tune.TotalSeconds(holds))
}

func TestPlannerErrors(t *testing.T) {
	res := result([]float64{2000}, []float64{50}, [][]float64{{0}})
	for _, o := range []tune.PlannerOptions{{TargetSamples: -1}, {SampleRate: -5}, {MinSweepCells: -1}, {Settle: -1}} {
		_, err := tune.Planner(res, o)
		require.ErrorIs(t, err, tune.ErrConfig)
	}
}
