package ve

import "math"

// neighbours visits the non-empty 4-neighbours of (r, c) in the fixed order
// up, down, left, right that the predecessor's kernels use; the order
// decides the last bits of every sum.
func neighbours(g *Table, r, c int, visit func(v float64)) {
	rows, cols := g.Rows(), g.Cols()
	if r > 0 {
		if v := g.Get(r-1, c); Has(v) {
			visit(v)
		}
	}
	if r < rows-1 {
		if v := g.Get(r+1, c); Has(v) {
			visit(v)
		}
	}
	if c > 0 {
		if v := g.Get(r, c-1); Has(v) {
			visit(v)
		}
	}
	if c < cols-1 {
		if v := g.Get(r, c+1); Has(v) {
			visit(v)
		}
	}
}

// SmoothK1K2 applies the predecessor's frozen v1.0.0 kernels to a grid of
// percent corrections (empty cells are NaN and stay empty) and returns a new
// table:
//
// K1, gradient-limited adaptive smoothing: each cell's gradient is the
// largest absolute difference to its 4-neighbours in the original grid.
// Cells are visited in row-major order and smoothed in place (Gauss-Seidel:
// up and left neighbours are already smoothed when read) with
// p = passes when |v| <= 1, none when |v| >= 3, else
// round-half-even(passes x (3 - |v|) / 2) passes, each pass averaging the
// cell with its neighbours. Then cells whose gradient exceeds threshold are
// blended back toward the original by min(1, grad / (2 threshold)).
//
// K2, coverage-weighted smoothing, always runs: in place, row-major,
// v = 0.2 x (1.25 v + Σ neighbours) / (1.25 + k) + 0.8 v.
//
// passes is clamped into [0, 5].
func SmoothK1K2(g *Table, passes int, threshold float64) *Table {
	passes = max(0, min(5, passes))
	rows, cols := g.Rows(), g.Cols()
	// Stages 1 and 2: gradients on the original grid, then adaptive
	// smoothing in place (the compat replay traces the same two stages).
	grad, a := k1Stages(g, passes)

	// Stage 3: gradient-limited blending toward the original.
	b := a.Clone()
	for i, gv := range g.Values {
		av := a.Values[i]
		if !Has(gv) || !Has(av) || grad[i] <= threshold {
			continue
		}
		bf := math.Min(1, grad[i]/(2*threshold))
		b.Values[i] = (1-bf)*av + bf*gv
	}

	// Stage 4: K2.
	const alpha, centre = 0.20, 1.25
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			v := b.Get(r, c)
			if !Has(v) {
				continue
			}
			sum, wsum := centre*v, centre
			neighbours(b, r, c, func(n float64) { sum += n; wsum += 1.0 })
			b.Set(r, c, alpha*(sum/wsum)+(1-alpha)*v)
		}
	}
	return b
}

// k1Stages returns K1's gradients (stage 1) and its adaptively smoothed
// grid (stage 2), exactly as SmoothK1K2 computes them; passes is already
// clamped.
func k1Stages(g *Table, passes int) ([]float64, *Table) {
	rows, cols := g.Rows(), g.Cols()
	grad := make([]float64, len(g.Values))
	for r := range rows {
		for c := range cols {
			v := g.Get(r, c)
			if !Has(v) {
				continue
			}
			m := 0.0
			neighbours(g, r, c, func(n float64) { m = math.Max(m, math.Abs(v-n)) })
			grad[r*cols+c] = m
		}
	}
	a := g.Clone()
	var ns []float64
	for r := range rows {
		for c := range cols {
			v := a.Get(r, c)
			if !Has(v) {
				continue
			}
			abs := math.Abs(v)
			var p int
			switch {
			case abs >= 3.0:
				p = 0
			case abs <= 1.0:
				p = passes
			default:
				p = int(math.RoundToEven(float64(passes) * (3.0 - abs) / 2.0))
			}
			if p == 0 {
				continue
			}
			ns = ns[:0]
			neighbours(a, r, c, func(n float64) { ns = append(ns, n) })
			s := v
			for range p {
				sum := s
				for _, n := range ns {
					sum += n
				}
				s = sum / float64(1+len(ns))
			}
			a.Set(r, c, s)
		}
	}
	return grad, a
}

// ClampPercent limits every non-empty cell of a percent grid to
// [-limit, +limit] in place and returns how many cells changed by more than
// 0.01 (the predecessor's "clamped" count).
func ClampPercent(g *Table, limit float64) int {
	n := 0
	for i, v := range g.Values {
		if !Has(v) {
			continue
		}
		cv := math.Max(-limit, math.Min(limit, v))
		if math.Abs(v-cv) > 0.01 {
			n++
		}
		g.Values[i] = cv
	}
	return n
}
