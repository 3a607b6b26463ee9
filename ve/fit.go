package ve

import (
	"errors"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// nodeFit is the outcome of the node fit for one cylinder, per node in
// row-major order.
type nodeFit struct {
	value      []float64 // fitted multiplier − 1; NaN where the node saw nothing
	stdErr     []float64 // standard error of value; NaN where not computed
	resolution []float64 // diagonal of the resolution matrix, 0..1
	bias       []float64 // the prior's estimated pull on the node (fraction); NaN where not computed
	sigma      float64   // the residual standard deviation over the whole grid
}

// maxFitStdErr is the largest standard error (as a fraction) a node may
// have and still be corrected.
const maxFitStdErr = 0.01

// errFit reports a fit that could not be solved (never expected: the
// prior keeps the system positive definite).
var errFit = errors.New("ve: node fit is singular")

// fitNodes solves for the node values r (multiplier − 1) that minimise
//
//	Σ_s ω_s (y_s − Σ_k φ_k(s) r_k)² + λ Σ_(k,l) adjacent (r_k − r_l)² + μ Σ_k r_k²
//
// from the per-cell normal equations: the weighted least-squares fit of
// the table's nodes to the samples' bilinear weights (what the ECU
// interpolates), with a weak membrane prior that ties neighbours together
// where the data alone cannot (samples that only ever fall midway between
// two nodes) and a weaker ridge towards no change for nodes without data.
// λ is smoothness times the data's median weight on an observed node, so the
// prior's pull does not depend on the log's length.
//
// For each node with evidence it also computes the standard error (the
// sandwich (A+P)⁻¹ A (A+P)⁻¹ with the local residual variance of the
// cells around the node) and the resolution: how much of the node's value
// comes from its own data, the diagonal of (A+P)⁻¹ A. The system is banded
// (bandwidth one row of the grid plus one) and solved with gonum's band
// Cholesky.
func fitNodes(nr, nc int, quads []*quadAcc, evidence []float64, minEvidence, smoothness float64) (*nodeFit, error) {
	n := nr * nc
	out := &nodeFit{value: make([]float64, n), stdErr: make([]float64, n), resolution: make([]float64, n), bias: make([]float64, n)}
	for i := range out.value {
		out.value[i], out.stdErr[i], out.bias[i] = math.NaN(), math.NaN(), math.NaN()
	}
	if nr < 2 || nc < 2 || len(quads) != (nr-1)*(nc-1) {
		return out, nil
	}
	k := nc + 1
	data := make([]float64, n*(k+1)) // the data part A, band storage
	b := make([]float64, n)
	node := func(qi, qj, a int) int { return (qi+a/2)*nc + qj + a%2 }
	totalN := 0
	for qi := 0; qi < nr-1; qi++ {
		for qj := 0; qj < nc-1; qj++ {
			q := quads[qi*(nc-1)+qj]
			if q == nil || q.n == 0 {
				continue
			}
			totalN += q.n
			for si := range q.sub {
				sb := &q.sub[si]
				if sb.w <= 0 {
					continue
				}
				phi := quadPhi(sb.wfr/sb.w, sb.wfm/sb.w)
				for a := 0; a < 4; a++ {
					if phi[a] == 0 {
						continue
					}
					p := node(qi, qj, a)
					b[p] += phi[a] * sb.wy
					for c := a; c < 4; c++ {
						r := node(qi, qj, c)
						lo, hi := min(p, r), max(p, r)
						data[lo*(k+1)+hi-lo] += sb.w * phi[a] * phi[c]
					}
				}
			}
		}
	}
	if totalN == 0 {
		return out, nil
	}
	// The prior's scale: the data's median weight on an observed node (a
	// steady hold piles thousands of samples on a few nodes; the median
	// does not follow them).
	var diag []float64
	for p := 0; p < n; p++ {
		if d := data[p*(k+1)]; d > 0 {
			diag = append(diag, d)
		}
	}
	slices.Sort(diag)
	dmean := diag[len(diag)/2]
	lambda := smoothness * dmean
	mu := 1e-6*dmean + 1e-12
	// system returns A + λ·(membrane) + μ·I in band storage.
	system := func(lambda float64) []float64 {
		full := append([]float64(nil), data...)
		edge := func(p, r int) {
			full[p*(k+1)] += lambda
			full[r*(k+1)] += lambda
			full[p*(k+1)+r-p] -= lambda
		}
		for i := 0; i < nr; i++ {
			for j := 0; j < nc; j++ {
				p := i*nc + j
				full[p*(k+1)] += mu
				if j+1 < nc {
					edge(p, p+1)
				}
				if i+1 < nr {
					edge(p, p+nc)
				}
			}
		}
		return full
	}
	var ch, chk mat.BandCholesky
	if !ch.Factorize(mat.NewSymBandDense(n, k, system(lambda))) {
		return out, errFit
	}
	// The resolution that decides which nodes are corrected is measured
	// under a prior checkFactor times stronger: a node whose value only
	// fine second-order differences between samples can tell (a path that
	// crosses the cell at a slight slope) looks resolved under the weak
	// prior, but errors of a fraction of a percent in where the samples
	// are placed swing it by several percent. The stronger prior exposes it.
	if !chk.Factorize(mat.NewSymBandDense(n, k, system(lambda*checkFactor))) {
		return out, errFit
	}
	var r mat.VecDense
	if err := ch.SolveVecTo(&r, mat.NewVecDense(n, b)); err != nil {
		return out, err
	}
	// Residuals per cell, for the local noise.
	rss := make([]float64, len(quads))
	var rssAll float64
	for qi := 0; qi < nr-1; qi++ {
		for qj := 0; qj < nc-1; qj++ {
			qx := qi*(nc-1) + qj
			q := quads[qx]
			if q == nil || q.n == 0 {
				continue
			}
			var rq [4]float64
			for a := range rq {
				rq[a] = r.AtVec(node(qi, qj, a))
			}
			s := 0.0
			for si := range q.sub {
				sb := &q.sub[si]
				if sb.w <= 0 {
					continue
				}
				phi := quadPhi(sb.wfr/sb.w, sb.wfm/sb.w)
				pred := phi[0]*rq[0] + phi[1]*rq[1] + phi[2]*rq[2] + phi[3]*rq[3]
				// Σ ω (y − pred)², pred the same for the sub-cell's samples.
				s += sb.wyy - 2*pred*sb.wy + sb.w*pred*pred
			}
			rss[qx] = math.Max(0, s)
			rssAll += rss[qx]
		}
	}
	p := 0
	for _, e := range evidence {
		if e > 0 {
			p++
		}
	}
	dof := float64(totalN) / math.Max(1, float64(totalN-p))
	out.sigma = math.Sqrt(rssAll / float64(totalN) * dof)
	// Per node: value, resolution and standard error.
	e := mat.NewVecDense(n, nil)
	var z, zc mat.VecDense
	for pn := 0; pn < n; pn++ {
		if evidence[pn] <= 0 {
			continue
		}
		out.value[pn] = r.AtVec(pn)
		if evidence[pn] < minEvidence {
			continue
		}
		e.SetVec(pn, 1)
		err := ch.SolveVecTo(&z, e)
		if err == nil {
			err = chk.SolveVecTo(&zc, e)
		}
		e.SetVec(pn, 0)
		if err != nil {
			return out, err
		}
		resCheck := 0.0
		for m := max(0, pn-k); m <= min(n-1, pn+k); m++ {
			resCheck += bandAt(data, k, pn, m) * zc.AtVec(m)
		}
		// Row pn of the resolution matrix (A+P)⁻¹ A is (A z)ᵀ, A being
		// symmetric: its diagonal element is the resolution, and applied to
		// the fitted values it estimates how far the prior pulls the node
		// from what its own data say (the bias). The variance is zᵀ A z.
		res, quad, kernel := 0.0, 0.0, 0.0
		for l := 0; l < n; l++ {
			var az float64 // (A z)_l over A's band
			for m := max(0, l-k); m <= min(n-1, l+k); m++ {
				if zm := z.AtVec(m); zm != 0 {
					az += bandAt(data, k, l, m) * zm
				}
			}
			if l == pn {
				res = az
			}
			if !math.IsNaN(out.value[l]) || l == pn {
				kernel += az * r.AtVec(l)
			} else {
				kernel += az * r.AtVec(l)
			}
			quad += z.AtVec(l) * az
		}
		_ = res
		out.resolution[pn] = math.Max(0, math.Min(1, resCheck))
		out.bias[pn] = kernel - r.AtVec(pn)
		i, j := pn/nc, pn%nc
		var s2, cnt float64
		for di := -1; di <= 0; di++ {
			for dj := -1; dj <= 0; dj++ {
				qi, qj := i+di, j+dj
				if qi < 0 || qj < 0 || qi >= nr-1 || qj >= nc-1 {
					continue
				}
				qx := qi*(nc-1) + qj
				if quads[qx] == nil {
					continue
				}
				s2 += rss[qx]
				cnt += float64(quads[qx].n)
			}
		}
		local := out.sigma * out.sigma
		if cnt > 0 {
			// Blend the cells' own noise with the grid's, so a cell with few
			// samples neither hides nor invents noise.
			local = (s2*dof + local*4) / (cnt + 4)
		}
		out.stdErr[pn] = math.Sqrt(math.Max(0, local*quad))
	}
	return out, nil
}

// checkFactor is how much stronger the prior is under which a node's
// resolution is judged than the one it is fitted under.
const checkFactor = 10

// bandAt returns element (i, j) of a symmetric band matrix in the upper
// band storage fitNodes builds (row i holds columns i..i+k).
func bandAt(data []float64, k, i, j int) float64 {
	if i > j {
		i, j = j, i
	}
	if j-i > k {
		return 0
	}
	return data[i*(k+1)+j-i]
}
