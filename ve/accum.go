package ve

import (
	"math"

	"github.com/dynoai/dynoai/dyno"
)

// nodeAcc accumulates what the samples attributed to one node say: the
// weighted sums of the multiplier (kept as multiplier − 1, which stays
// small, so the variance from sums of squares does not cancel), the maps
// and diagnostics each node reports.
type nodeAcc struct {
	hits        int
	near        int     // samples for which this is the nearest node
	share       float64 // Σ share: the node's evidence
	w, w2       float64 // Σ weight, Σ weight²
	wy, wyy     float64 // Σ w (mult−1), Σ w (mult−1)²
	afrW, tgtW  float64
	tqW, tqWsum float64
	hpW, hpWsum float64
	knockMax    float64
	iatMax      float64
}

func newNodeAcc() nodeAcc { return nodeAcc{knockMax: math.NaN(), iatMax: math.NaN()} }

func (c *nodeAcc) add(share, weight, y, afr, target float64, s *dyno.Sample, knock float64) {
	w := share * weight
	if w <= 0 {
		return
	}
	c.hits++
	c.share += share
	c.w += w
	c.w2 += w * w
	c.wy += w * y
	c.wyy += w * y * y
	c.afrW += w * afr
	c.tgtW += w * target
	if t := s.Torque; t == t {
		c.tqW += w * t
		c.tqWsum += w
	}
	if p := s.Power; p == p {
		c.hpW += w * p
		c.hpWsum += w
	}
	if knock == knock && !(knock <= c.knockMax) {
		c.knockMax = knock
	}
	if t := s.IAT; t == t && !(t <= c.iatMax) {
		c.iatMax = t
	}
}

// mean returns the weighted mean multiplier.
func (c *nodeAcc) mean() float64 { return 1 + c.wy/c.w }

// stdErr returns the standard error of the weighted mean, NaN with under
// two effective samples.
func (c *nodeAcc) stdErr() float64 {
	nEff := c.w * c.w / c.w2 // effective sample size of weighted data
	if !(nEff > 1) {
		return math.NaN()
	}
	m := c.wy / c.w
	variance := math.Max(0, c.wyy/c.w-m*m) * nEff / (nEff - 1)
	return math.Sqrt(variance / nEff)
}

// quadAcc accumulates the samples that fall in one grid cell, the
// rectangle between four nodes. The cell is split into quadSub × quadSub
// sub-cells; each keeps its samples' count, weight, weighted centroid and
// the weighted sums the node fit and the node diagnostics need (y =
// multiplier − 1). The fit sees each sub-cell as one observation at its
// centroid: a thousand samples of a steady hold are one point, not a
// thousand, so sensor noise on speed and load cannot pass for information
// about how the four nodes differ. The nodes' own figures (evidence, mean
// AFR, torque...) are shared out of the sub-cells at the end, so a sample
// costs one sub-cell update, not four node updates.
type quadAcc struct {
	sub [quadSub * quadSub]subAcc
	n   int
}

// quadSub is the number of sub-cells along each side of a grid cell. It is
// even, so that every sub-cell lies wholly on one node's side of the
// cell's middle lines (its nearest node).
const quadSub = 4

type subAcc struct {
	n                int32
	w, w2, wfr, wfm  float64
	wy, wyy          float64
	wafr, wtgt       float64
	tqW, tq, hpW, hp float64 // Σ w over samples with torque, Σ w torque; the same for power
	knockMax, iatMax float64 // NaN when none
	initialized      bool
}

func (q *quadAcc) add(fr, fm, omega, y, afr, target float64, s *dyno.Sample, knock float64) {
	a := min(int(fr*quadSub), quadSub-1)
	b := min(int(fm*quadSub), quadSub-1)
	sb := &q.sub[a*quadSub+b]
	if !sb.initialized {
		sb.initialized, sb.knockMax, sb.iatMax = true, math.NaN(), math.NaN()
	}
	sb.n++
	sb.w += omega
	sb.w2 += omega * omega
	sb.wfr += omega * fr
	sb.wfm += omega * fm
	sb.wy += omega * y
	sb.wyy += omega * y * y
	sb.wafr += omega * afr
	sb.wtgt += omega * target
	if t := s.Torque; t == t {
		sb.tqW += omega
		sb.tq += omega * t
	}
	if p := s.Power; p == p {
		sb.hpW += omega
		sb.hp += omega * p
	}
	if knock == knock && !(knock <= sb.knockMax) {
		sb.knockMax = knock
	}
	if t := s.IAT; t == t && !(t <= sb.iatMax) {
		sb.iatMax = t
	}
	q.n++
}

// quadPhi returns the bilinear weights of the position (fr, fm) in a cell,
// in the order (i,j), (i,j+1), (i+1,j), (i+1,j+1).
func quadPhi(fr, fm float64) [4]float64 {
	return [4]float64{(1 - fr) * (1 - fm), (1 - fr) * fm, fr * (1 - fm), fr * fm}
}

// nodeStats returns the per-node figures of a cylinder: its own nodes for
// nearest-cell attribution, otherwise shared out of the cells' sub-cells
// by the bilinear weights of each sub-cell's centroid.
func (c *cylAcc) nodeStats(nr, nc int) []nodeAcc {
	if c.nearest {
		return c.nodes
	}
	out := make([]nodeAcc, nr*nc)
	for i := range out {
		out[i] = newNodeAcc()
	}
	for qi := 0; qi < nr-1; qi++ {
		for qj := 0; qj < nc-1; qj++ {
			q := c.quads[qi*(nc-1)+qj]
			if q == nil {
				continue
			}
			for si := range q.sub {
				sb := &q.sub[si]
				if sb.n == 0 || sb.w <= 0 {
					continue
				}
				phi := quadPhi(sb.wfr/sb.w, sb.wfm/sb.w)
				// The sub-cell's side of the cell's middle lines: its
				// samples' nearest node.
				near := (si/quadSub)/(quadSub/2)*2 + (si%quadSub)/(quadSub/2)
				for a := 0; a < 4; a++ {
					k := (qi+a/2)*nc + qj + a%2
					nd := &out[k]
					if a == near {
						nd.near += int(sb.n)
					}
					f := phi[a]
					if f <= 0 {
						continue
					}
					nd.hits += int(sb.n)
					nd.share += f * float64(sb.n)
					nd.w += f * sb.w
					nd.w2 += f * f * sb.w2
					nd.wy += f * sb.wy
					nd.wyy += f * sb.wyy
					nd.afrW += f * sb.wafr
					nd.tgtW += f * sb.wtgt
					nd.tqW += f * sb.tq
					nd.tqWsum += f * sb.tqW
					nd.hpW += f * sb.hp
					nd.hpWsum += f * sb.hpW
					if sb.knockMax == sb.knockMax && !(sb.knockMax <= nd.knockMax) {
						nd.knockMax = sb.knockMax
					}
					if sb.iatMax == sb.iatMax && !(sb.iatMax <= nd.iatMax) {
						nd.iatMax = sb.iatMax
					}
				}
			}
		}
	}
	return out
}

// cylAcc is one cylinder's accumulation over the grid.
type cylAcc struct {
	nearest bool       // nearest-cell attribution: nodes are accumulated directly
	nodes   []nodeAcc  // rows × cols, with nearest
	quads   []*quadAcc // (rows-1) × (cols-1), nil until a sample falls in

	accepted int
	rejected Rejections
	// rejectedAt counts rejections per reason on fine bins of speed and
	// load (the grid may still grow), for the decision log; bounded by the
	// range of speed and load, not the log's length.
	rejectedAt map[decelKey]*Rejections
}

// rejectAt counts a rejection for reason r at (rpm, load) when both are
// known.
func (a *cylAcc) rejectAt(rpm, load float64, r Reason) {
	if !Has(rpm) || !Has(load) {
		return
	}
	if a.rejectedAt == nil {
		a.rejectedAt = make(map[decelKey]*Rejections)
	}
	k := decelKey{int32(math.Round(rpm / decelRPMBin)), int32(math.Round(load / decelLoadBin))}
	rj := a.rejectedAt[k]
	if rj == nil {
		rj = new(Rejections)
		a.rejectedAt[k] = rj
	}
	rj[r]++
}

// growGrid is the analysis grid, which may grow beyond its starting axes
// at their end steps to reach the data (boost, high RPM, idle), within
// physical limits, and the accumulators of every cylinder on it.
type growGrid struct {
	rpm, load []float64
	extend    bool
	// limits of growth per axis
	rpmLo, rpmHi, loadLo, loadHi float64
	// how many nodes were added at each end
	addedR0, addedR1, addedL0, addedL1 int
	cyl                                []*cylAcc
	decel                              []*decelAcc // per cylinder: the samples rejected as decel
	nearest                            bool        // nearest-cell attribution
	rIdx, lIdx                         *axisIndex
	reach                              [4]float64 // rpm lo, hi, load lo, hi
}

// maxAxisNodes bounds an axis's length however far the data reaches.
const maxAxisNodes = 96

func newGrowGrid(g Grid, extend bool, axis LoadAxis, loadIsPercent bool) *growGrid {
	gg := &growGrid{rpm: append([]float64(nil), g.RPM...), load: append([]float64(nil), g.MAP...), extend: extend}
	gg.rpmLo, gg.rpmHi = 100, 20000
	gg.loadLo, gg.loadHi = 0, 600
	if axis == LoadTPS || loadIsPercent {
		gg.loadLo, gg.loadHi = 0, 100
	}
	gg.index()
	return gg
}

func (g *growGrid) index() {
	g.rIdx, g.lIdx = newAxisIndex(g.rpm), newAxisIndex(g.load)
	g.reach[0], g.reach[1] = reach(g.rpm)
	g.reach[2], g.reach[3] = reach(g.load)
}

func (g *growGrid) rows() int { return len(g.rpm) }
func (g *growGrid) cols() int { return len(g.load) }

// reach returns how far an axis reaches: half a bin beyond each edge.
func reach(a []float64) (lo, hi float64) {
	if len(a) < 2 {
		return math.Inf(-1), math.Inf(1)
	}
	n := len(a)
	return a[0] - (a[1]-a[0])/2, a[n-1] + (a[n-1]-a[n-2])/2
}

// covers grows the grid, when it may, until it reaches (rpm, load), and
// reports whether it does.
func (g *growGrid) covers(rpm, load float64) bool {
	if rpm >= g.reach[0] && rpm <= g.reach[1] && load >= g.reach[2] && load <= g.reach[3] {
		return true
	}
	if !g.extend || len(g.rpm) < 2 || len(g.load) < 2 {
		return false
	}
	r0, r1 := grow(g.rpm, rpm, g.rpmLo, g.rpmHi)
	l0, l1 := grow(g.load, load, g.loadLo, g.loadHi)
	if r0+r1+l0+l1 == 0 || len(g.rpm)+r0+r1 > maxAxisNodes || len(g.load)+l0+l1 > maxAxisNodes {
		return false
	}
	g.resize(r0, r1, l0, l1)
	return rpm >= g.reach[0] && rpm <= g.reach[1] && load >= g.reach[2] && load <= g.reach[3]
}

// grow returns how many nodes to add below and above axis a, at its end
// steps, for it to reach v within [lo, hi].
func grow(a []float64, v, lo, hi float64) (below, above int) {
	n := len(a)
	step0, step1 := a[1]-a[0], a[n-1]-a[n-2]
	for x := a[0]; v < x-step0/2 && x-step0 >= lo; x -= step0 {
		below++
	}
	for x := a[n-1]; v > x+step1/2 && x+step1 <= hi; x += step1 {
		above++
	}
	return below, above
}

// resize adds nodes to the axes and moves every accumulator to its place
// on the new grid.
func (g *growGrid) resize(r0, r1, l0, l1 int) {
	oldR, oldC := len(g.rpm), len(g.load)
	g.rpm = extendAxis(g.rpm, r0, r1)
	g.load = extendAxis(g.load, l0, l1)
	g.addedR0, g.addedR1, g.addedL0, g.addedL1 = g.addedR0+r0, g.addedR1+r1, g.addedL0+l0, g.addedL1+l1
	g.index()
	nr, nc := len(g.rpm), len(g.load)
	for _, c := range g.cyl {
		if c == nil {
			continue
		}
		if c.nearest {
			nodes := make([]nodeAcc, nr*nc)
			for i := range nodes {
				nodes[i] = newNodeAcc()
			}
			for i := 0; i < oldR; i++ {
				copy(nodes[(i+r0)*nc+l0:(i+r0)*nc+l0+oldC], c.nodes[i*oldC:(i+1)*oldC])
			}
			c.nodes = nodes
		}
		quads := make([]*quadAcc, (nr-1)*(nc-1))
		for i := 0; i < oldR-1; i++ {
			copy(quads[(i+r0)*(nc-1)+l0:(i+r0)*(nc-1)+l0+oldC-1], c.quads[i*(oldC-1):(i+1)*(oldC-1)])
		}
		c.quads = quads
	}
}

func extendAxis(a []float64, below, above int) []float64 {
	n := len(a)
	step0, step1 := a[1]-a[0], a[n-1]-a[n-2]
	out := make([]float64, 0, n+below+above)
	for k := below; k >= 1; k-- {
		out = append(out, roundAxis(a[0]-float64(k)*step0))
	}
	out = append(out, a...)
	for k := 1; k <= above; k++ {
		out = append(out, roundAxis(a[n-1]+float64(k)*step1))
	}
	return out
}

// roundAxis keeps added nodes on round numbers (no 109.99999999).
func roundAxis(v float64) float64 { return math.Round(v*1e6) / 1e6 }

// acc returns cylinder c's accumulator, creating it.
// decelAt returns cylinder c's decel accumulator.
func (g *growGrid) decelAt(c int) *decelAcc {
	for len(g.decel) <= c {
		g.decel = append(g.decel, &decelAcc{})
	}
	return g.decel[c]
}

func (g *growGrid) acc(c int) *cylAcc {
	for len(g.cyl) <= c {
		g.cyl = append(g.cyl, nil)
	}
	if g.cyl[c] == nil {
		nr, nc := len(g.rpm), len(g.load)
		a := &cylAcc{nearest: g.nearest}
		if a.nearest {
			a.nodes = make([]nodeAcc, nr*nc)
			for i := range a.nodes {
				a.nodes[i] = newNodeAcc()
			}
		}
		if nr > 1 && nc > 1 {
			a.quads = make([]*quadAcc, (nr-1)*(nc-1))
		}
		g.cyl[c] = a
	}
	return g.cyl[c]
}

// place finds a sample's grid cell and its place in it: the cell whose
// corner (i, j) is its lower-left and the fractions (fr, fm) along its two
// sides. A sample beyond the last node (within reach) sits on the edge.
func (g *growGrid) place(rpm, load float64) (qi, qj int, fr, fm float64) {
	i0, i1, fr := g.rIdx.bracket(rpm)
	j0, j1, fm := g.lIdx.bracket(load)
	nr, nc := len(g.rpm), len(g.load)
	// Map onto a quad: at the last node use the quad below it, weight 1 on
	// its far side.
	if i0 == i1 {
		if i0 == nr-1 && nr > 1 {
			i0, fr = nr-2, 1
		} else {
			fr = 0
		}
	}
	if j0 == j1 {
		if j0 == nc-1 && nc > 1 {
			j0, fm = nc-2, 1
		} else {
			fm = 0
		}
	}
	return i0, j0, fr, fm
}
