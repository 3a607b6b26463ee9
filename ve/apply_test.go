package ve

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func randomTable(rng *rand.Rand, rows, cols, precision int) *Table {
	rpm := make([]float64, rows)
	mp := make([]float64, cols)
	for i := range rpm {
		rpm[i] = float64(1000 + 250*i)
	}
	for j := range mp {
		mp[j] = float64(20 + 5*j)
	}
	t := MustTable(rpm, mp, 0)
	t.Precision = precision
	for i := range t.Values {
		if rng.IntN(20) == 0 {
			t.Values[i] = math.NaN()
			continue
		}
		t.Values[i] = roundDecimal(20+rng.Float64()*110, precision)
	}
	return t
}

func randomCorrection(rng *rand.Rand, like *Table) *Table {
	c := MustTable(like.RPM, like.MAP, 1)
	c.Precision = 6
	for i := range c.Values {
		switch rng.IntN(10) {
		case 0:
			c.Values[i] = math.NaN()
		default:
			c.Values[i] = 0.8 + rng.Float64()*0.4 // some beyond the 7 % clamp
		}
	}
	return c
}

// TestRollbackInvertsApplyExactly is the property: rollback(apply(x)) == x
// bit for bit, over random tables, precisions, corrections and limits.
func TestRollbackInvertsApplyExactly(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 7))
	for iter := 0; iter < 500; iter++ {
		base := randomTable(rng, 1+rng.IntN(16), 1+rng.IntN(12), rng.IntN(MaxBasePrecision+1))
		corr := randomCorrection(rng, base)
		opts := ApplyOptions{}
		switch iter % 4 {
		case 1:
			opts.Limits.MaxAdjustPercent = -1
		case 2:
			opts.Limits.MinVE, opts.Limits.MaxVE = 30, 120
		case 3:
			opts.Limits.Baseline = base
			opts.Limits.MaxCumulativePercent = 3
		}
		applied, err := Apply(base, corr, opts)
		require.NoError(t, err, "iteration %d", iter)
		back, err := Rollback(applied.Table, applied.Effective, &applied.Manifest)
		require.NoError(t, err, "iteration %d", iter)
		require.True(t, back.Equal(base), "iteration %d: rollback(apply(x)) != x", iter)
	}
}

func TestApplyLimits(t *testing.T) {
	base := MustTable([]float64{1000, 2000}, []float64{50, 100}, 100)
	base.Precision = 1
	corr := MustTable(base.RPM, base.MAP, 1.05)
	corr.Set(0, 1, 1.20) // clamped to 1.07
	corr.Set(1, 0, math.NaN())
	applied, err := Apply(base, corr, ApplyOptions{Limits: Limits{MaxVE: 106, MinVE: 10}})
	require.NoError(t, err)
	assert.Equal(t, 105.0, applied.Table.Get(0, 0))
	assert.Equal(t, 106.0, applied.Table.Get(0, 1), "1.07 clamp, then the 106 rail")
	assert.Equal(t, 100.0, applied.Table.Get(1, 0), "empty correction cell changes nothing")
	assert.Equal(t, 1, applied.Manifest.Clamped)
	assert.Equal(t, 1, applied.Manifest.Railed, "clamped, then railed: both are counted")
	assert.Equal(t, 3, applied.Manifest.CellsChanged)
	assert.Len(t, applied.Diff, 3)
}

func TestApplyCumulativeCap(t *testing.T) {
	baseline := MustTable([]float64{1000}, []float64{50}, 100)
	cur := MustTable([]float64{1000}, []float64{50}, 104)
	corr := MustTable([]float64{1000}, []float64{50}, 1.05)
	applied, err := Apply(cur, corr, ApplyOptions{Limits: Limits{Baseline: baseline, MaxCumulativePercent: 8}})
	require.NoError(t, err)
	assert.InDelta(t, 108.0, applied.Table.Get(0, 0), 1e-9)
	assert.Equal(t, 1, applied.Manifest.Capped)
}

func TestRollbackRefusesTampering(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	base := randomTable(rng, 5, 5, 2)
	applied, err := Apply(base, randomCorrection(rng, base), ApplyOptions{})
	require.NoError(t, err)

	edited := applied.Table.Clone()
	edited.Values[3] += 0.001
	_, err = Rollback(edited, applied.Effective, &applied.Manifest)
	require.ErrorIs(t, err, ErrHashMismatch)

	corr := applied.Effective.Clone()
	corr.Values[0] = 1.01
	_, err = Rollback(applied.Table, corr, &applied.Manifest)
	require.ErrorIs(t, err, ErrHashMismatch)

	m := applied.Manifest
	m.BaseSHA256 = "0000"
	_, err = Rollback(applied.Table, applied.Effective, &m)
	require.ErrorIs(t, err, ErrHashMismatch)
}

func TestApplyRejectsBadInput(t *testing.T) {
	base := MustTable([]float64{1000, 2000}, []float64{50}, 100)
	other := MustTable([]float64{1000, 2500}, []float64{50}, 1)
	_, err := Apply(base, other, ApplyOptions{})
	require.ErrorIs(t, err, ErrShape)

	fine := MustTable([]float64{1000, 2000}, []float64{50}, 1)
	base.Values[0] = 1.0 / 3 // more decimals than any precision can carry exactly
	_, err = Apply(base, fine, ApplyOptions{})
	require.ErrorIs(t, err, ErrPrecision)

	base.Values[0] = 100
	fine.Values[1] = -1
	_, err = Apply(base, fine, ApplyOptions{})
	require.ErrorContains(t, err, "must be positive")
}

// The predecessor's vectors (spec §9.1): base 100 with +5 % gives 105, -3 %
// gives 97.
func TestApplyPredecessorVectors(t *testing.T) {
	base := MustTable([]float64{1500}, []float64{35, 50}, 100)
	corr := MustTable([]float64{1500}, []float64{35, 50}, 1)
	corr.Set(0, 0, 1.05)
	corr.Set(0, 1, 0.97)
	applied, err := Apply(base, corr, ApplyOptions{})
	require.NoError(t, err)
	assert.Equal(t, 105.0, applied.Table.Get(0, 0))
	assert.Equal(t, 97.0, applied.Table.Get(0, 1))
}
