package ve

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAdoptRollsBackExactly is the property: a table another tool made by
// multiplying a base and rounding to its own precision is adopted, and
// Rollback then gives the base back bit for bit.
func TestAdoptRollsBackExactly(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 42))
	for iter := range 300 {
		base := randomTable(rng, 1+rng.IntN(12), 1+rng.IntN(10), rng.IntN(3))
		applied := base.Clone()
		applied.Precision = 2 + rng.IntN(3) // the other tool keeps at least as many decimals
		for i, x := range base.Values {
			if Has(x) {
				applied.Values[i] = roundDecimal(x*(0.93+rng.Float64()*0.14), applied.Precision)
			}
		}
		a, err := Adopt(base, applied, ApplyOptions{Comment: "imported", Limits: Limits{MaxAdjustPercent: 7}})
		require.NoError(t, err, "iteration %d", iter)
		assert.Equal(t, "apply", a.Manifest.Operation)
		assert.Equal(t, 7.0, a.Manifest.MaxAdjustPercent)
		back, err := Rollback(a.Table, a.Effective, &a.Manifest)
		require.NoError(t, err, "iteration %d", iter)
		for i := range base.Values {
			if Has(base.Values[i]) {
				require.Equal(t, base.Values[i], back.Values[i], "iteration %d cell %d", iter, i)
			} else {
				require.False(t, Has(back.Values[i]))
			}
		}
	}
}

func TestAdoptRefuses(t *testing.T) {
	base := MustTable([]float64{1000, 2000}, []float64{50, 100}, 60)
	base.Precision = 1
	t.Run("axes", func(t *testing.T) {
		other := MustTable([]float64{1000, 2500}, []float64{50, 100}, 60)
		_, err := Adopt(base, other, ApplyOptions{})
		require.ErrorIs(t, err, ErrShape)
	})
	t.Run("one-sided cell", func(t *testing.T) {
		applied := base.Clone()
		applied.Values[3] = math.NaN()
		_, err := Adopt(base, applied, ApplyOptions{})
		require.ErrorIs(t, err, ErrShape)
		assert.Contains(t, err.Error(), "RPM 2000 / MAP 100")
	})
	t.Run("zero", func(t *testing.T) {
		applied := base.Clone()
		applied.Values[1] = 0
		_, err := Adopt(base, applied, ApplyOptions{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "RPM 1000 / MAP 100")
	})
}
