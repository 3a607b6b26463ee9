package afr_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/dynoai/dynoai/afr"
	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynosim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Align undoes the simulator's transport delay: the aligned readings match
// a run of the same plan with an instant sensor.
func TestAlignUndoesSimulatorDelay(t *testing.T) {
	plan := []dynosim.Step{
		dynosim.HoldStep(3000, 40, time.Second),
		dynosim.HoldStep(3000, 90, time.Second),
		dynosim.SweepStep(2000, 5000, 60, 600),
		dynosim.PullStep(2000, 5500),
	}
	for _, tt := range []struct {
		name     string
		delay    afr.Delay
		max, avg float64
	}{
		{"fixed whole steps", afr.Delay{Fixed: 120 * time.Millisecond}, 1e-12, 1e-12},
		{"fixed fraction of a step", afr.Delay{Fixed: 73 * time.Millisecond}, 0.02, 0.001},
		{"rpm dependent", afr.Delay{Fixed: 40 * time.Millisecond, PerRPM: 150}, 0.02, 0.001},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			base, err := dynosim.New(dynosim.Config{Plan: plan})
			require.NoError(t, err)
			want, err := dyno.Collect(ctx, base)
			require.NoError(t, err)
			sim, err := dynosim.New(dynosim.Config{Plan: plan, Delay: tt.delay})
			require.NoError(t, err)
			got, err := dyno.Collect(ctx, afr.Align(sim, tt.delay))
			require.NoError(t, err)
			sim2, err := dynosim.New(dynosim.Config{Plan: plan, Delay: tt.delay})
			require.NoError(t, err)
			raw, err := dyno.Collect(ctx, sim2)
			require.NoError(t, err)
			var rawWorst float64
			for i := range raw {
				rawWorst = max(rawWorst, math.Abs(raw[i].AFR[dyno.Front]-want[i].AFR[dyno.Front]))
			}
			require.Greater(t, rawWorst, 0.2, "the delay must matter for this test to mean anything")
			require.Len(t, got, len(want))
			var worst, sum float64
			n := 0
			for i := range got {
				if !dyno.Has(got[i].AFR[dyno.Front]) {
					require.Greater(t, got[i].Time, got[len(got)-1].Time-tt.delay.Bound(), "only the tail lacks readings")
					continue
				}
				for c := range 2 {
					d := math.Abs(got[i].AFR[c] - want[i].AFR[c])
					worst = max(worst, d)
					sum += d
					n++
				}
			}
			t.Logf("worst %.3g mean %.3g (unaligned worst %.3g)", worst, sum/float64(n), rawWorst)
			assert.LessOrEqual(t, worst, tt.max)
			assert.LessOrEqual(t, sum/float64(n), tt.avg)
		})
	}
}

// afr.Targets is the simulator's target table as it is: the ECU commands it
// and a perfect tune burns it.
func TestTargetsDriveSimulator(t *testing.T) {
	tg := afr.DefaultTargets()
	sim, err := dynosim.New(dynosim.Config{TargetAFR: tg, Plan: []dynosim.Step{
		dynosim.SweepStep(1500, 5500, 35, 1000), dynosim.PullStep(2000, 5600),
	}})
	require.NoError(t, err)
	samples, err := dyno.Collect(context.Background(), sim)
	require.NoError(t, err)
	for i, s := range samples {
		want := tg.At(s.RPM, s.MAP)
		require.InDelta(t, want, s.AFRCommanded[dyno.Front], 1e-12, "sample %d", i)
		require.InDelta(t, want, s.AFR[dyno.Rear], 1e-12, "sample %d", i)
		m, err := afr.Multiplier(s.AFR[dyno.Front], s.AFRCommanded[dyno.Front])
		require.NoError(t, err)
		require.InDelta(t, 1, m, 1e-12)
	}
}
