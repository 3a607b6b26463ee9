package tune

import (
	"context"
	"math"
	"sort"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/ve"
)

// attribution is a dyno.Source wrapper that accumulates how the samples
// share the grid's nodes under bilinear attribution: W[i] = Σ w_i and
// S[i][k] = Σ w_i·w_k. A cell's mean multiplier from the analyzer is then
// Σ_k (S[i][k]/W[i]) r_k, a blend of the node ratios r around it, and
// solving that system recovers r (see sharpen).
//
// It counts the samples the analyzer counts as well as it can from outside:
// speed and load within the filter's ranges and within half a bin of the
// grid (the analyzer's reach), and not within a throttle or manifold
// transient (the filter's rates over its window, and its hold after).
type attribution struct {
	dyno.Source
	rpm, mp []float64
	w       []float64
	s       []float64 // dense nodes × nodes
	f       ve.Filter
	reach   [4]float64 // rpm lo, hi, map lo, hi
	hist    []past     // ring of recent samples for the rates
	hold    time.Duration
	holding bool
}

type past struct {
	t         time.Duration
	tps, map_ float64
}

func newAttribution(src dyno.Source, g ve.Grid, f *ve.Filter) *attribution {
	n := len(g.RPM) * len(g.MAP)
	a := &attribution{Source: src, rpm: g.RPM, mp: g.MAP, w: make([]float64, n), s: make([]float64, n*n), f: *f}
	a.reach[0], a.reach[1] = reach(g.RPM)
	a.reach[2], a.reach[3] = reach(g.MAP)
	if a.f.RateWindow <= 0 {
		a.f.RateWindow = 100 * time.Millisecond
	}
	return a
}

// reach is how far the analyzer takes samples beyond an axis: half a bin.
func reach(ax []float64) (lo, hi float64) {
	if len(ax) < 2 {
		return math.Inf(-1), math.Inf(1)
	}
	n := len(ax)
	return ax[0] - (ax[1]-ax[0])/2, ax[n-1] + (ax[n-1]-ax[n-2])/2
}

// transient reports whether s is within a throttle or manifold transient.
func (a *attribution) transient(s *dyno.Sample) bool {
	var ref *past
	for k := len(a.hist) - 1; k >= 0; k-- {
		if s.Time-a.hist[k].t >= a.f.RateWindow {
			ref = &a.hist[k]
			break
		}
	}
	if ref == nil && len(a.hist) > 0 {
		ref = &a.hist[0]
	}
	fast := false
	if ref != nil && s.Time > ref.t {
		dt := (s.Time - ref.t).Seconds()
		fast = (a.f.MaxTPSRate > 0 && dyno.Has(s.TPS) && dyno.Has(ref.tps) && math.Abs(s.TPS-ref.tps)/dt > a.f.MaxTPSRate) ||
			(a.f.MaxMAPRate > 0 && dyno.Has(s.MAP) && dyno.Has(ref.map_) && math.Abs(s.MAP-ref.map_)/dt > a.f.MaxMAPRate)
	}
	// Keep the window's samples only.
	a.hist = append(a.hist, past{s.Time, s.TPS, s.MAP})
	drop := 0
	for drop < len(a.hist)-1 && s.Time-a.hist[drop+1].t >= a.f.RateWindow {
		drop++
	}
	if drop > 0 {
		a.hist = append(a.hist[:0], a.hist[drop:]...)
	}
	if fast {
		a.hold, a.holding = s.Time+a.f.TransientHold, true
	}
	a.holding = a.holding && s.Time < a.hold
	return fast || a.holding
}

func (a *attribution) Next(ctx context.Context, s *dyno.Sample) error {
	if err := a.Source.Next(ctx, s); err != nil {
		return err
	}
	if a.transient(s) || !dyno.Has(s.RPM) || !dyno.Has(s.MAP) || s.RPM < a.f.RPMMin || s.MAP < a.f.MAPMin || s.MAP > a.f.MAPMax ||
		s.RPM < a.reach[0] || s.RPM > a.reach[1] || s.MAP < a.reach[2] || s.MAP > a.reach[3] {
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
