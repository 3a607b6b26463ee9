package ve

import (
	"math"

	"github.com/dynoai/dynoai/dyno"
)

// nodeAcc accumulates what the samples attributed to one node say, with
// West's weighted incremental mean and variance of the multiplier (the
// cell-mean estimate and its spread), and the maps and diagnostics each
// node reports.
type nodeAcc struct {
	hits        int
	near        int     // samples for which this is the nearest node
	share       float64 // Σ share: the node's evidence
	w, w2       float64 // Σ weight, Σ weight²
	mean, m2    float64 // running weighted mean of the multiplier and Σ w (x-mean)²
	afrW, tgtW  float64
	tqW, tqWsum float64
	hpW, hpWsum float64
	knockMax    float64
	iatMax      float64
}

func newNodeAcc() nodeAcc { return nodeAcc{knockMax: math.NaN(), iatMax: math.NaN()} }

func (c *nodeAcc) add(share, weight, mult, afr, target float64, s *dyno.Sample, knock float64) {
	w := share * weight
	if w <= 0 {
		return
	}
	c.hits++
	c.share += share
	c.w += w
	c.w2 += w * w
	delta := mult - c.mean
	c.mean += w / c.w * delta
	c.m2 += w * delta * (mult - c.mean)
	c.afrW += w * afr
	c.tgtW += w * target
	if dyno.Has(s.Torque) {
		c.tqW += w * s.Torque
		c.tqWsum += w
	}
	if dyno.Has(s.Power) {
		c.hpW += w * s.Power
		c.hpWsum += w
	}
	if dyno.Has(knock) && (math.IsNaN(c.knockMax) || knock > c.knockMax) {
		c.knockMax = knock
	}
	if dyno.Has(s.IAT) && (math.IsNaN(c.iatMax) || s.IAT > c.iatMax) {
		c.iatMax = s.IAT
	}
}

// quadAcc accumulates the samples that fall in one grid cell, the
// rectangle between four nodes, for the node fit. The cell is split into
// quadSub × quadSub sub-cells; each keeps its samples' weight, weighted
// centroid and Σ ω y, Σ ω y² (y = multiplier − 1). The fit sees each
// sub-cell as one observation at its centroid: a thousand samples of a
// steady hold are one point, not a thousand, so sensor noise on speed and
// load cannot pass for information about how the four nodes differ.
type quadAcc struct {
	sub [quadSub * quadSub]subAcc
	n   int
}

// quadSub is the number of sub-cells along each side of a grid cell.
const quadSub = 4

type subAcc struct {
	w, wfr, wfm, wy, wyy float64
	n                    int32
}

func (q *quadAcc) add(fr, fm, omega, y float64) {
	a := min(int(fr*quadSub), quadSub-1)
	b := min(int(fm*quadSub), quadSub-1)
	s := &q.sub[a*quadSub+b]
	s.w += omega
	s.wfr += omega * fr
	s.wfm += omega * fm
	s.wy += omega * y
	s.wyy += omega * y * y
	s.n++
	q.n++
}

// quadPhi returns the bilinear weights of the position (fr, fm) in a cell,
// in the order (i,j), (i,j+1), (i+1,j), (i+1,j+1).
func quadPhi(fr, fm float64) [4]float64 {
	return [4]float64{(1 - fr) * (1 - fm), (1 - fr) * fm, fr * (1 - fm), fr * fm}
}

// cylAcc is one cylinder's accumulation over the grid.
type cylAcc struct {
	nodes []nodeAcc  // rows × cols
	quads []*quadAcc // (rows-1) × (cols-1), nil until a sample falls in

	accepted int
	rejected Rejections
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
	rIdx, lIdx                         *axisIndex
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
	rlo, rhi := reach(g.rpm)
	llo, lhi := reach(g.load)
	if rpm >= rlo && rpm <= rhi && load >= llo && load <= lhi {
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
	rlo, rhi = reach(g.rpm)
	llo, lhi = reach(g.load)
	return rpm >= rlo && rpm <= rhi && load >= llo && load <= lhi
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
		nodes := make([]nodeAcc, nr*nc)
		for i := range nodes {
			nodes[i] = newNodeAcc()
		}
		for i := 0; i < oldR; i++ {
			copy(nodes[(i+r0)*nc+l0:(i+r0)*nc+l0+oldC], c.nodes[i*oldC:(i+1)*oldC])
		}
		quads := make([]*quadAcc, (nr-1)*(nc-1))
		for i := 0; i < oldR-1; i++ {
			copy(quads[(i+r0)*(nc-1)+l0:(i+r0)*(nc-1)+l0+oldC-1], c.quads[i*(oldC-1):(i+1)*(oldC-1)])
		}
		c.nodes, c.quads = nodes, quads
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
func (g *growGrid) acc(c int) *cylAcc {
	for len(g.cyl) <= c {
		g.cyl = append(g.cyl, nil)
	}
	if g.cyl[c] == nil {
		nr, nc := len(g.rpm), len(g.load)
		a := &cylAcc{nodes: make([]nodeAcc, nr*nc)}
		for i := range a.nodes {
			a.nodes[i] = newNodeAcc()
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
