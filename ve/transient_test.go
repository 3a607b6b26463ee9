package ve

import (
	"testing"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynosim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tipInSession plays repeated tip-ins from light load to full load at
// 3000 rpm; leanPct is the acceleration enrichment's shortfall.
func tipInSession(t *testing.T, leanPct float64) dyno.Source {
	return tipInSessionDelayed(t, leanPct, dyno.TransportDelay{})
}

func tipInSessionDelayed(t *testing.T, leanPct float64, delay dyno.TransportDelay) dyno.Source {
	t.Helper()
	var plan []dynosim.Step
	for range 8 {
		plan = append(plan, dynosim.HoldStep(3000, 35, time.Second), dynosim.HoldStep(3000, 95, time.Second))
	}
	// A steady 13.2 target: no full-load enrichment step to align.
	target := dyno.SurfaceFunc(func(float64, float64) float64 { return 13.2 })
	sim, err := dynosim.New(dynosim.Config{Seed: 6, Noise: dynosim.TypicalNoise(), Plan: plan, TipInLeanPct: leanPct, Delay: delay,
		TargetAFR: target})
	require.NoError(t, err)
	return sim
}

// TestTransientsLeanTipIn: an engine whose acceleration enrichment falls
// 15 % short runs lean after each tip-in; Transients finds every tip-in,
// calls them lean and suggests more enrichment for their throttle rate;
// with enough enrichment the same tip-ins are fine.
func TestTransientsLeanTipIn(t *testing.T) {
	res, err := Transients(t.Context(), tipInSession(t, 15), TransientOptions{})
	require.NoError(t, err)
	require.Empty(t, res.Note)
	require.GreaterOrEqual(t, len(res.Events), 7, "one per tip-in")
	lean := 0
	for _, e := range res.Events {
		if e.Verdict == "lean" {
			lean++
		}
		assert.InDelta(t, 3000, e.RPM, 100)
	}
	assert.GreaterOrEqual(t, lean, 7)
	suggested := 0
	for _, b := range res.Bins {
		if b.ChangePct > 0 {
			suggested++
			assert.Contains(t, b.Suggestion, "more acceleration enrichment")
			assert.InDelta(t, 15, b.ChangePct, 2, "the simulated shortfall")
		}
	}
	assert.Positive(t, suggested)
	good, err := Transients(t.Context(), tipInSession(t, 0), TransientOptions{})
	require.NoError(t, err)
	for _, b := range good.Bins {
		assert.Zero(t, b.ChangePct, b.Suggestion)
	}
	// A wideband 150 ms behind: judged against the target of then, the
	// same tip-ins read the same.
	delay := dyno.TransportDelay{Fixed: 150 * time.Millisecond}
	for _, lean := range []float64{15, 0} {
		r, err := Transients(t.Context(), tipInSessionDelayed(t, lean, delay), TransientOptions{Delay: delay})
		require.NoError(t, err)
		for _, b := range r.Bins {
			if b.Events > 0 {
				assert.InDelta(t, lean, b.MeanExcursion, 2.5, "lean %v, delayed wideband", lean)
			}
		}
	}
	names, err := res.WriteFiles(t.TempDir())
	require.NoError(t, err)
	assert.Equal(t, []string{"Transient_Fuel.json"}, names)
	_, err = Transients(t.Context(), tipInSession(t, 0), TransientOptions{Edges: []float64{100, 50}})
	assert.Error(t, err)
}
