package ve

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// The band of the inverse from the Takahashi recurrence equals the dense
// inverse's, on random positive definite band matrices of the shapes the
// fit builds.
func TestInverseBand(t *testing.T) {
	for _, tc := range []struct{ n, k int }{{1, 0}, {4, 1}, {12, 4}, {35, 6}, {64, 9}} {
		rng := rand.New(rand.NewPCG(uint64(tc.n), uint64(tc.k)))
		w := tc.k + 1
		band := make([]float64, tc.n*w)
		dense := mat.NewSymDense(tc.n, nil)
		for i := 0; i < tc.n; i++ {
			for j := i; j <= min(tc.n-1, i+tc.k); j++ {
				v := rng.NormFloat64()
				if i == j {
					v = float64(2*tc.k+2) + rng.Float64() // diagonally dominant
				}
				band[i*w+j-i] = v
				dense.SetSym(i, j, v)
			}
		}
		var ch bandChol
		require.True(t, ch.factorize(tc.n, tc.k, append([]float64(nil), band...)))
		z := ch.inverseBand(nil)
		var inv mat.Dense
		require.NoError(t, inv.Inverse(dense))
		for i := 0; i < tc.n; i++ {
			for j := i; j <= min(tc.n-1, i+tc.k); j++ {
				require.InDelta(t, inv.At(i, j), z[i*w+j-i], 1e-12, "n=%d k=%d (%d,%d)", tc.n, tc.k, i, j)
			}
		}
		var lu mat.LU
		lu.Factorize(dense)
		ld, sign := lu.LogDet()
		require.Equal(t, 1.0, sign)
		require.InDelta(t, ld, ch.logDet(), 1e-9)
	}
}
