package tune

import (
	"context"
	"math"
	"sort"

	"gonum.org/v1/gonum/mat"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/ve"
)

// attribution is a dyno.Source wrapper that accumulates how the samples
// share the grid's nodes under bilinear attribution: W[i] = Σ w_i and
// S[i][k] = Σ w_i·w_k. A cell's mean multiplier from the analyzer is then
// Σ_k (S[i][k]/W[i]) r_k, a blend of the node ratios r around it, and
// solving that system recovers r (see sharpen).
type attribution struct {
	dyno.Source
	rpm, mp []float64
	w       []float64
	s       []float64 // dense nodes × nodes
	minMAP  float64
	maxMAP  float64
	minRPM  float64
}

func newAttribution(src dyno.Source, g ve.Grid, f *ve.Filter) *attribution {
	n := len(g.RPM) * len(g.MAP)
	return &attribution{Source: src, rpm: g.RPM, mp: g.MAP, w: make([]float64, n), s: make([]float64, n*n),
		minMAP: f.MAPMin, maxMAP: f.MAPMax, minRPM: f.RPMMin}
}

func (a *attribution) Next(ctx context.Context, s *dyno.Sample) error {
	if err := a.Source.Next(ctx, s); err != nil {
		return err
	}
	if !dyno.Has(s.RPM) || !dyno.Has(s.MAP) || s.RPM < a.minRPM || s.MAP < a.minMAP || s.MAP > a.maxMAP {
		return nil
	}
	i0, i1, fr := bracket(a.rpm, s.RPM)
	j0, j1, fm := bracket(a.mp, s.MAP)
	cols := len(a.mp)
	nodes := [4]int{i0*cols + j0, i0*cols + j1, i1*cols + j0, i1*cols + j1}
	ws := [4]float64{(1 - fr) * (1 - fm), (1 - fr) * fm, fr * (1 - fm), fr * fm}
	n := len(a.w)
	for x := range 4 {
		if ws[x] == 0 {
			continue
		}
		a.w[nodes[x]] += ws[x]
		for y := range 4 {
			a.s[nodes[x]*n+nodes[y]] += ws[x] * ws[y]
		}
	}
	return nil
}

// bracket is ve's bilinear bracket: the two axis points around x and the
// fraction between them, clamped at the ends.
func bracket(a []float64, x float64) (i0, i1 int, f float64) {
	n := len(a)
	if n == 1 || x <= a[0] {
		return 0, 0, 0
	}
	if x >= a[n-1] {
		return n - 1, n - 1, 0
	}
	k := sort.SearchFloat64s(a, x)
	if a[k] == x {
		return k, k, 0
	}
	return k - 1, k, (x - a[k-1]) / (a[k] - a[k-1])
}

// sharpen returns the node multipliers r whose bilinear blend, weighted as
// the log's samples were, reproduces the analyzer's per-cell means: it
// solves Σ_k A_ik r_k = M_i over the covered nodes (A_ik = S_ik / W_i),
// uncovered nodes held at 1. Cells without evidence keep 1.0. When the
// system cannot be solved it returns the analyzer's correction as it is.
func (a *attribution) sharpen(cr *ve.CylinderResult) *ve.Table {
	out := cr.Correction.Clone()
	n := len(a.w)
	var cov []int
	for i := range n {
		r, c := i/len(a.mp), i%len(a.mp)
		if cr.Cell(r, c).Confidence != ve.ConfidenceNone && ve.Has(cr.Raw.Get(r, c)) && a.w[i] > 0 {
			cov = append(cov, i)
		}
	}
	if len(cov) == 0 {
		return out
	}
	pos := make(map[int]int, len(cov))
	for x, i := range cov {
		pos[i] = x
	}
	m := len(cov)
	A := mat.NewDense(m, m, nil)
	b := mat.NewVecDense(m, nil)
	for x, i := range cov {
		rhs := cr.Raw.Get(i/len(a.mp), i%len(a.mp))
		for k := range n {
			aik := a.s[i*n+k] / a.w[i]
			if aik == 0 {
				continue
			}
			if y, ok := pos[k]; ok {
				A.Set(x, y, aik)
			} else {
				rhs -= aik // an uncovered node keeps its value: r = 1
			}
		}
		b.SetVec(x, rhs)
	}
	var r mat.VecDense
	if err := r.SolveVec(A, b); err != nil {
		return out
	}
	for x, i := range cov {
		v := r.AtVec(x)
		if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
			return cr.Correction.Clone()
		}
		out.Set(i/len(a.mp), i%len(a.mp), v)
	}
	return out
}
