package ve

import (
	"errors"
	"math"
	"slices"
)

// nodeFit is the outcome of the node fit for one cylinder, per node in
// row-major order.
type nodeFit struct {
	value      []float64 // fitted multiplier − 1; NaN where the node saw nothing
	stdErr     []float64 // posterior standard deviation of value; NaN where not computed
	resolution []float64 // diagonal of the resolution matrix, 0..1
	sigma      float64   // the residual standard deviation over the whole grid
	smoothness float64   // the prior's weight used, relative to the data's
}

// errFit reports a fit that could not be solved (never expected: the
// prior keeps the system positive definite).
var errFit = errors.New("ve: node fit is singular")

// smoothnessCandidates are the prior weights (relative to the data's
// median weight on a node) among which the fit picks the most likely
// when Options.Smoothness is zero: a rough VE error wants the lowest, a
// smooth one the highest its data support.
var smoothnessCandidates = [...]float64{1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1}

// fitNodes solves for the node values r (multiplier − 1) that minimise
//
//	Σ_s ω_s (y_s − Σ_k φ_k(s) r_k)² + λ Σ_(k,l) adjacent (r_k − r_l)² + μ Σ_k r_k²
//
// from the per-cell normal equations: the weighted least-squares fit of
// the table's nodes to the samples' bilinear weights (what the ECU
// interpolates), with a membrane prior that ties neighbours together
// where the data alone cannot (samples that only ever pass midway between
// two nodes) and a far weaker ridge towards no change for nodes without
// data. λ is smoothness times the data's median weight on an observed
// node, so the prior's pull does not depend on the log's length.
//
// With smoothness zero the fit chooses λ itself, as the value that
// maximises the restricted marginal likelihood of the data under the
// prior (the prior read as a Gaussian random field whose neighbour
// differences have variance σ²/λ): a table whose error changes from node
// to node gets a weak prior, a smooth one a strong prior, and the
// standard errors below follow.
//
// Each node's standard error is its posterior standard deviation,
// σ·√[(A+λP)⁻¹]_kk, σ from the residuals: it grows where the data say
// little about the node and the prior has to fill in, so it is what
// decides whether a node is corrected. The resolution, the diagonal of
// (A+λP)⁻¹A, is how much of the node's value comes from its own data.
// The system is banded (bandwidth one row of the grid plus one) and
// solved with gonum's band Cholesky (LAPACK dpbtrf); the posterior
// variances and resolutions come from the inverse's band, computed from
// the factor (bandChol.inverseBand) rather than column by column.
func fitNodes(nr, nc int, quads []*quadAcc, evidence []float64, minEvidence, smoothness float64) (*nodeFit, error) {
	n := nr * nc
	out := &nodeFit{value: make([]float64, n), stdErr: make([]float64, n), resolution: make([]float64, n)}
	for i := range out.value {
		out.value[i], out.stdErr[i] = math.NaN(), math.NaN()
	}
	if nr < 2 || nc < 2 || len(quads) != (nr-1)*(nc-1) {
		return out, nil
	}
	k := nc + 1
	data := make([]float64, n*(k+1)) // the data part A, band storage
	b := make([]float64, n)
	var yy, wsum float64 // Σ ω y², Σ ω
	node := func(qi, qj, a int) int { return (qi+a/2)*nc + qj + a%2 }
	for qi := 0; qi < nr-1; qi++ {
		for qj := 0; qj < nc-1; qj++ {
			q := quads[qi*(nc-1)+qj]
			if q == nil || q.n == 0 {
				continue
			}
			for si := range q.sub {
				sb := &q.sub[si]
				if sb.w <= 0 {
					continue
				}
				yy += sb.wyy
				wsum += sb.w
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
	if wsum == 0 {
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
	dmed := diag[len(diag)/2]
	mu := 1e-6*dmed + 1e-12
	r := make([]float64, n)

	// solve factorizes A + λ·(membrane) + μ·I and solves for r.
	var ch bandChol
	full := make([]float64, len(data))
	solve := func(lambda float64) bool {
		copy(full, data)
		edge := func(p, q int) {
			full[p*(k+1)] += lambda
			full[q*(k+1)] += lambda
			full[p*(k+1)+q-p] -= lambda
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
		if !ch.factorize(n, k, full) {
			return false
		}
		copy(r, b)
		ch.solve(r)
		return true
	}

	if smoothness == 0 {
		smoothness = chooseSmoothness(nr, nc, dmed, mu, yy, wsum, b, r, &ch, solve)
	}
	out.smoothness = smoothness
	if !solve(smoothness * dmed) {
		return out, errFit
	}
	// The residual variance: Σ ω (y − φ·r)² over the samples, each
	// sub-cell's samples predicted at its centroid.
	var rss float64
	for qi := 0; qi < nr-1; qi++ {
		for qj := 0; qj < nc-1; qj++ {
			q := quads[qi*(nc-1)+qj]
			if q == nil || q.n == 0 {
				continue
			}
			var rq [4]float64
			for a := range rq {
				rq[a] = r[node(qi, qj, a)]
			}
			for si := range q.sub {
				sb := &q.sub[si]
				if sb.w <= 0 {
					continue
				}
				phi := quadPhi(sb.wfr/sb.w, sb.wfm/sb.w)
				pred := phi[0]*rq[0] + phi[1]*rq[1] + phi[2]*rq[2] + phi[3]*rq[3]
				rss += math.Max(0, sb.wyy-2*pred*sb.wy+sb.w*pred*pred)
			}
		}
	}
	out.sigma = math.Sqrt(rss / wsum)
	// Per node: value, posterior standard deviation and resolution. With
	// Z = (A+λP)⁻¹ (its band is all either needs), the posterior variance
	// over σ² is z_pp and the resolution (A Z)_pp.
	z := ch.inverseBand(nil)
	for pn := 0; pn < n; pn++ {
		if evidence[pn] <= 0 {
			continue
		}
		out.value[pn] = r[pn]
		if evidence[pn] < minEvidence {
			continue
		}
		var res float64
		for m := max(0, pn-k); m <= min(n-1, pn+k); m++ {
			res += bandAt(data, k, pn, m) * bandAt(z, k, pn, m)
		}
		out.resolution[pn] = math.Max(0, math.Min(1, res))
		out.stdErr[pn] = out.sigma * math.Sqrt(math.Max(0, bandAt(z, k, pn, pn)))
	}
	return out, nil
}

// chooseSmoothness returns the candidate prior weight that maximises the
// restricted marginal likelihood, −2 log L up to a constant being
//
//	N log((yᵀWy − bᵀr̂)/N) + log|A + λP + μI| − log|λP + μI|
//
// with σ² profiled out. The membrane P is the grid graph's Laplacian,
// whose eigenvalues are known in closed form, so its determinant costs
// nothing; the other comes from the band Cholesky of each candidate.
func chooseSmoothness(nr, nc int, dmed, mu, yy, wsum float64, b, r []float64, ch *bandChol, solve func(float64) bool) float64 {
	best, bestS := math.Inf(1), 0.0
	for _, s := range smoothnessCandidates {
		lambda := s * dmed
		if !solve(lambda) {
			continue
		}
		var br float64
		for i := range b {
			br += b[i] * r[i]
		}
		fit := yy - br
		crit := wsum*math.Log(math.Max(fit, 1e-300)/wsum) + ch.logDet()
		for i := 0; i < nr; i++ {
			ei := 2 - 2*math.Cos(math.Pi*float64(i)/float64(nr))
			for j := 0; j < nc; j++ {
				ej := 2 - 2*math.Cos(math.Pi*float64(j)/float64(nc))
				crit -= math.Log(lambda*(ei+ej) + mu)
			}
		}
		if crit < best {
			best, bestS = crit, s
		}
	}
	if bestS == 0 {
		return defaultSmoothness
	}
	return bestS
}

// defaultSmoothness is the prior's weight when none can be chosen (every
// candidate failed to factorize: never expected).
const defaultSmoothness = 3e-4

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
