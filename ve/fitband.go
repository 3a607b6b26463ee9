package ve

import (
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
)

// bandChol is the Cholesky factor A = UᵀU of a symmetric positive definite
// band matrix held in the upper band storage fitNodes builds (row i holds
// columns i..i+k), factorized in place by LAPACK's dpbtrf (gonum). Unlike
// mat.BandCholesky it does not estimate the condition number, which costs
// as much again as the factorization and which the fit never reads.
type bandChol struct {
	n, k int
	u    blas64.TriangularBand
}

// factorize factorizes the band matrix a (overwritten with U) and reports
// whether it is positive definite.
func (c *bandChol) factorize(n, k int, a []float64) bool {
	c.n, c.k = n, k
	t, ok := lapack64.Pbtrf(blas64.SymmetricBand{Uplo: blas.Upper, N: n, K: k, Data: a, Stride: k + 1})
	c.u = t
	return ok
}

// solve overwrites b with A⁻¹b.
func (c *bandChol) solve(b []float64) {
	lapack64.Pbtrs(c.u, blas64.General{Rows: c.n, Cols: 1, Data: b, Stride: 1})
}

// logDet returns log |A|.
func (c *bandChol) logDet() float64 {
	var s float64
	for i := 0; i < c.n; i++ {
		s += math.Log(c.u.Data[i*(c.k+1)])
	}
	return 2 * s
}

// inverseBand returns the elements of A⁻¹ within A's band, in the same
// upper band storage, by the Takahashi recurrence on the factor: with
// Z = A⁻¹ and UZ = U⁻ᵀ (lower triangular, diagonal 1/u_jj), row j of Z
// on and right of the diagonal follows from the rows below it,
//
//	z_jm = (δ_jm/u_jj − Σ_(l=j+1..j+k) u_jl z_lm) / u_jj,  m = j..j+k,
//
// which needs only elements of Z within the band. It costs n·k² against
// the n²·k of solving for each column of the inverse.
func (c *bandChol) inverseBand(z []float64) []float64 {
	n, k, u := c.n, c.k, c.u.Data
	w := k + 1
	if cap(z) < n*w {
		z = make([]float64, n*w)
	}
	z = z[:n*w]
	clear(z)
	at := func(l, m int) float64 { // Z[l][m], |l−m| ≤ k
		if l > m {
			l, m = m, l
		}
		return z[l*w+m-l]
	}
	for j := n - 1; j >= 0; j-- {
		ujj := u[j*w]
		hi := min(n-1, j+k)
		// Off the diagonal first (they use rows below only), then the
		// diagonal, which uses z_lj = z_jl just computed.
		for m := hi; m >= j; m-- {
			var s float64
			for l := j + 1; l <= hi; l++ {
				s += u[j*w+l-j] * at(l, m)
			}
			v := -s / ujj
			if m == j {
				v = (1/ujj - s) / ujj
			}
			z[j*w+m-j] = v
		}
	}
	return z
}
