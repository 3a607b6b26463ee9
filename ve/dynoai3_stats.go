package ve

import (
	"math"
	"slices"
)

// dynoai3Corr is the electrical check's Pearson correlation of (AFR error,
// battery) pairs, computed the predecessor's way (means, then the sums of
// products of deviations, each summed in pair order) without holding the
// pairs: a first pass sums the means and shifted moments, which give r to
// about 1e-12; only when that r is near or past the -0.4 flag does a second
// pass over the same pairs compute the exact r the predecessor prints.
type dynoai3Corr struct {
	n                     int
	sx, sy                float64 // plain sums, for the exact means
	x0, y0                float64 // shift of the approximate moments
	ax, ay, axx, ayy, axy float64
	// second pass
	mx, my        float64
	sxy, sxx, syy float64
	ready         bool // the second pass ran
}

// dynoai3CorrFlag is the predecessor's flag, r <= -0.4; dynoai3CorrMargin
// is how close the approximate r must come to it for the exact pass.
const (
	dynoai3CorrFlag   = -0.4
	dynoai3CorrMargin = 1e-3
)

func (c *dynoai3Corr) add(x, y float64) {
	if c.n == 0 {
		c.x0, c.y0 = x, y
	}
	c.n++
	c.sx += x
	c.sy += y
	dx, dy := x-c.x0, y-c.y0
	c.ax += dx
	c.ay += dy
	c.axx += dx * dx
	c.ayy += dy * dy
	c.axy += dx * dy
}

// approx returns r from the first pass's moments.
func (c *dynoai3Corr) approx() float64 {
	n := float64(c.n)
	vx := c.axx - c.ax*c.ax/n
	vy := c.ayy - c.ay*c.ay/n
	cv := c.axy - c.ax*c.ay/n
	if vx <= 0 || vy <= 0 {
		return 0
	}
	return cv / math.Sqrt(vx*vy)
}

// needExact reports whether the second pass must run.
func (c *dynoai3Corr) needExact() bool {
	return c.n >= 10 && c.approx() <= dynoai3CorrFlag+dynoai3CorrMargin
}

// startExact prepares the second pass.
func (c *dynoai3Corr) startExact() {
	c.mx, c.my = c.sx/float64(c.n), c.sy/float64(c.n)
	c.sxy, c.sxx, c.syy = 0, 0, 0
	c.ready = true
}

// addExact is the second pass's step; it must see the same pairs in the
// same order as add.
func (c *dynoai3Corr) addExact(x, y float64) {
	dx, dy := x-c.mx, y-c.my
	c.sxy += dx * dy
	c.sxx += dx * dx
	c.syy += dy * dy
}

// exact returns the predecessor's r from the second pass: 0 when either
// variance is 0.
func (c *dynoai3Corr) exact() float64 {
	if c.sxx <= 0 || c.syy <= 0 {
		return 0
	}
	return c.sxy / math.Sqrt(c.sxx*c.syy)
}

// corrOf runs both passes over pairs held in memory (x, y interleaved).
func corrOf(pairs []float64) *dynoai3Corr {
	c := &dynoai3Corr{}
	for k := 0; k+1 < len(pairs); k += 2 {
		c.add(pairs[k], pairs[k+1])
	}
	if c.n > 0 {
		c.startExact()
		for k := 0; k+1 < len(pairs); k += 2 {
			c.addExact(pairs[k], pairs[k+1])
		}
	}
	return c
}

// sampleBag holds one cell's AFR errors for its median and MAD as a sorted
// multiset: values a log repeats (sensor readings have two decimals, so a
// cell sees a few thousand distinct errors however long the log) cost
// nothing more. New values wait in a buffer (512 values, or a quarter of
// the runs) that is sorted and merged in when full.
type sampleBag struct {
	buf    []float64
	vals   []float64 // sorted, distinct
	counts []uint32
	n      int
}

const sampleBagBuffer = 512

func (b *sampleBag) add(v float64) {
	b.buf = append(b.buf, v)
	b.n++
	// The buffer grows with the runs, so a cell of many distinct values
	// is merged a logarithmic number of times, not once per 512 values.
	if len(b.buf) >= max(sampleBagBuffer, len(b.vals)/4) {
		b.compact()
	}
}

// compact merges the buffer into the sorted runs.
func (b *sampleBag) compact() {
	if len(b.buf) == 0 {
		return
	}
	slices.Sort(b.buf)
	vals := make([]float64, 0, len(b.vals)+len(b.buf))
	counts := make([]uint32, 0, cap(vals))
	push := func(v float64, n uint32) {
		if k := len(vals) - 1; k >= 0 && vals[k] == v {
			counts[k] += n
			return
		}
		vals = append(vals, v)
		counts = append(counts, n)
	}
	i, j := 0, 0
	for i < len(b.vals) || j < len(b.buf) {
		if j == len(b.buf) || (i < len(b.vals) && b.vals[i] <= b.buf[j]) {
			push(b.vals[i], b.counts[i])
			i++
		} else {
			push(b.buf[j], 1)
			j++
		}
	}
	b.vals, b.counts = slices.Clip(vals), slices.Clip(counts)
	b.buf = b.buf[:0]
}

// kth returns the k-th smallest (0-based) of sorted runs.
func kth(vals []float64, counts []uint32, k int) float64 {
	for i, c := range counts {
		if k < int(c) {
			return vals[i]
		}
		k -= int(c)
	}
	return math.NaN()
}

// runsMedian is median() of the multiset of n values.
func runsMedian(vals []float64, counts []uint32, n int) float64 {
	if n%2 == 1 {
		return kth(vals, counts, n/2)
	}
	return (kth(vals, counts, n/2-1) + kth(vals, counts, n/2)) / 2
}

// mad is madOf() of the bag's values; NaN when empty.
func (b *sampleBag) mad() float64 {
	if b.n == 0 {
		return math.NaN()
	}
	b.compact()
	m := runsMedian(b.vals, b.counts, b.n)
	type dev struct {
		d float64
		n uint32
	}
	devs := make([]dev, len(b.vals))
	for i, v := range b.vals {
		devs[i] = dev{math.Abs(v - m), b.counts[i]}
	}
	slices.SortFunc(devs, func(a, b dev) int {
		switch {
		case a.d < b.d:
			return -1
		case a.d > b.d:
			return 1
		}
		return 0
	})
	ds, cs := make([]float64, len(devs)), make([]uint32, len(devs))
	for i, d := range devs {
		ds[i], cs[i] = d.d, d.n
	}
	return runsMedian(ds, cs, b.n)
}
