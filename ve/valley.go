package ve

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
)

// Valleys: at a fixed load, torque normally rises with RPM to its peak and
// falls after it; a dip between two higher points is a valley, and on a
// dyno it is usually spark: timing pulled by knock, or pulled in the table.
// FindValley finds the deepest valley of one curve; SparkValleys runs it on
// each cylinder's torque across RPM in the high-load columns of an
// analysis, says whether the valley is knock-limited (knock retard in its
// band) and suggests what to do with the timing there.
//
// The detector follows the predecessor's spark-valley module
// (predecessor-modules.md §3) where it is right and fixes its defects: a
// valley's sides are the neighbouring peaks, not the highest point of each
// whole side, so a dip on a rising curve is found (SV-1); cells without
// data are never filled and never count as evidence (SV-2); the whole curve
// is searched, not 20-80 % of the axis (SV-3); and the band stays between
// the two peaks (SV-4).

// ValleyOptions configure FindValley and SparkValleys. The zero value is
// ready to use.
type ValleyOptions struct {
	// Window is the centred moving average's width, over the points with
	// data only; 0 means 3 for FindValley and 1 (no smoothing) for
	// SparkValleys, whose cells are already means of many samples: a
	// 3-wide average would flatten a one-cell valley.
	Window int
	// MinDepth is how far both sides must rise above the valley, in the
	// curve's unit (FindValley); 0 means 2. SparkValleys uses MinDepthPct.
	MinDepth float64
	// MinDepthPct is SparkValleys' MinDepth in percent of the curve's
	// highest point; 0 means 3 %.
	MinDepthPct float64
	// MinPoints is how many points with data a curve needs; 0 means 5.
	MinPoints int
	// MinLoad picks the columns SparkValleys searches: loads at or above
	// it; 0 means the two highest-load columns with enough data.
	MinLoad float64
	// KnockDeg is the knock retard, in degrees, from which a valley cell
	// is knock-limited; 0 means 0.5.
	KnockDeg float64
}

func (o ValleyOptions) filled() (ValleyOptions, error) {
	switch {
	case o.Window < 0 || o.Window > 15:
		return o, fmt.Errorf("ve: valley window %d is outside 0..15", o.Window)
	case math.IsNaN(o.MinDepth) || o.MinDepth < 0, math.IsNaN(o.MinDepthPct) || o.MinDepthPct < 0:
		return o, errors.New("ve: valley depth must not be negative")
	case o.MinPoints < 0, math.IsNaN(o.KnockDeg) || o.KnockDeg < 0, math.IsNaN(o.MinLoad):
		return o, errors.New("ve: valley minimum points, knock and load must not be negative")
	}
	if o.Window == 0 {
		o.Window = 3
	}
	if o.MinDepth == 0 {
		o.MinDepth = 2
	}
	if o.MinDepthPct == 0 {
		o.MinDepthPct = 3
	}
	if o.MinPoints == 0 {
		o.MinPoints = 5
	}
	if o.KnockDeg == 0 {
		o.KnockDeg = 0.5
	}
	return o, nil
}

// Valley is a dip of a curve between two higher points.
type Valley struct {
	// Cylinder names the cylinder whose knock makes a valley knock-limited
	// (SparkValleys); "" otherwise.
	Cylinder string  `json:"cylinder,omitempty"`
	Load     float64 `json:"load,omitempty"` // the column searched (SparkValleys)
	// Center is the axis value (RPM) of the lowest smoothed point; Band
	// the contiguous points around it within half the depth of it, never
	// beyond the peaks.
	Center float64    `json:"center_rpm"`
	Band   [2]float64 `json:"band_rpm"`
	// Min, Pre and Post are the smoothed values at the centre and at the
	// peaks before and after it (PreAt, PostAt); Depth is the mean of the
	// two drops, both at least the minimum depth.
	Min    float64 `json:"min"`
	Pre    float64 `json:"pre"`
	Post   float64 `json:"post"`
	PreAt  float64 `json:"pre_rpm"`
	PostAt float64 `json:"post_rpm"`
	Depth  float64 `json:"depth"`
	// DepthPct is Depth in percent of the higher peak.
	DepthPct float64 `json:"depth_pct"`
	// Coverage is the share of the axis with data; Hits the evidence
	// (samples) at the centre and its two neighbours.
	Coverage float64 `json:"coverage"`
	Hits     float64 `json:"hits"`
	// Confidence, 0..1, grows with coverage, depth and hits (see
	// FindValley).
	Confidence float64 `json:"confidence"`
	// KnockLimited says knock retard of at least ValleyOptions.KnockDeg
	// was seen in the band; KnockMax is the largest (SparkValleys).
	KnockLimited bool    `json:"knock_limited"`
	KnockMax     float64 `json:"knock_max_deg"`
	// AdvanceDeg is the spark advance SparkValleys suggests trying in the
	// band (0 when knock-limited), and Suggestion says what to do.
	AdvanceDeg float64  `json:"advance_deg"`
	Suggestion string   `json:"suggestion,omitempty"`
	Evidence   []string `json:"evidence"`
}

// FindValley returns the deepest valley of curve over axis (NaN: no data),
// with hits[i] the evidence behind curve[i] (nil: unknown). ok is false when
// the curve has too few points or no dip of the minimum depth on both sides.
// Ties keep the lower axis value. Confidence adds three parts of up to 1/3
// each: coverage (1/3 at 80 % of the axis, 2/9 at 60 %, else 1/9), depth
// (1/3 at twice the minimum, else 2/9) and hits at the centre and its
// neighbours (1/3 from 30, 2/9 from 10, else 1/9; 2/9 when unknown).
func FindValley(axis, curve, hits []float64, opts ValleyOptions) (Valley, bool, error) {
	if len(axis) != len(curve) || (hits != nil && len(hits) != len(curve)) {
		return Valley{}, false, fmt.Errorf("ve: valley axis, curve and hits have %d, %d and %d points", len(axis), len(curve), len(hits))
	}
	o, err := opts.filled()
	if err != nil {
		return Valley{}, false, err
	}
	var idx []int // the points with data
	for i, v := range curve {
		if Has(v) && !math.IsInf(v, 0) {
			idx = append(idx, i)
		}
	}
	if len(idx) < o.MinPoints {
		return Valley{}, false, nil
	}
	half := o.Window / 2
	s := make([]float64, len(idx)) // smoothed, over the points with data
	for k, i := range idx {
		sum, n := 0.0, 0
		for _, j := range idx {
			if j >= i-half && j <= i+half {
				sum += curve[j]
				n++
			}
		}
		s[k] = sum / float64(n)
	}
	best, bestSum := -1, 0.0
	var bestPre, bestPost int
	for k := 1; k < len(s)-1; k++ {
		pre := k // climb to the neighbouring peak before
		for pre > 0 && s[pre-1] > s[pre] {
			pre--
		}
		post := k
		for post < len(s)-1 && s[post+1] > s[post] {
			post++
		}
		dPre, dPost := s[pre]-s[k], s[post]-s[k]
		if dPre < o.MinDepth || dPost < o.MinDepth {
			continue
		}
		if sum := dPre + dPost; sum > bestSum {
			best, bestSum, bestPre, bestPost = k, sum, pre, post
		}
	}
	if best < 0 {
		return Valley{}, false, nil
	}
	v := Valley{Center: axis[idx[best]], Min: s[best], Pre: s[bestPre], Post: s[bestPost],
		PreAt: axis[idx[bestPre]], PostAt: axis[idx[bestPost]], Depth: bestSum / 2}
	v.DepthPct = 100 * v.Depth / math.Max(v.Pre, v.Post)
	lo, hi := best, best
	limit := v.Min + v.Depth/2
	for lo-1 > bestPre && s[lo-1] <= limit {
		lo--
	}
	for hi+1 < bestPost && s[hi+1] <= limit {
		hi++
	}
	v.Band = [2]float64{axis[idx[lo]], axis[idx[hi]]}
	v.Coverage = float64(len(idx)) / float64(len(curve))
	hitsKnown := hits != nil
	if hitsKnown {
		for i := max(idx[best]-1, 0); i <= min(idx[best]+1, len(hits)-1); i++ {
			if Has(hits[i]) {
				v.Hits += hits[i]
			}
		}
	}
	part := func(x, full, some float64) float64 {
		switch {
		case x >= full:
			return 1.0 / 3
		case x >= some:
			return 2.0 / 9
		}
		return 1.0 / 9
	}
	v.Confidence = part(v.Coverage, 0.8, 0.6) + part(v.Depth, 2*o.MinDepth, 0)
	if hitsKnown {
		v.Confidence += part(v.Hits, 30, 10)
	} else {
		v.Confidence += 2.0 / 9
	}
	v.Confidence = math.Min(1, v.Confidence)
	v.Evidence = []string{
		fmt.Sprintf("data at %d of %d points (%.0f %%)", len(idx), len(curve), 100*v.Coverage),
		fmt.Sprintf("lowest at %g: %.2f, between %.2f at %g and %.2f at %g", v.Center, v.Min, v.Pre, v.PreAt, v.Post, v.PostAt),
		fmt.Sprintf("depth %.2f (%.1f %% of the higher side), band %g-%g", v.Depth, v.DepthPct, v.Band[0], v.Band[1]),
	}
	return v, true, nil
}

// SparkValleys finds torque valleys across RPM in the high-load columns of
// res (see ValleyOptions.MinLoad). Torque is the engine's (the dyno
// measures it at the roller), so valleys are the engine's; the cells used
// are those where every cylinder has the analysis's MinSamples of
// evidence, and the torque is their mean. A valley whose band saw knock
// retard of KnockDeg or more on any cylinder is knock-limited (Cylinder
// names the one that knocked most): adding timing there would only add
// knock. Otherwise it suggests trying 1° more spark in the band (0.5°
// steps, re-testing each), the usual cause of a dip without knock being
// timing pulled in the table.
func SparkValleys(res *Result, opts ValleyOptions) ([]Valley, error) {
	if res == nil || len(res.Cylinders) == 0 {
		return nil, errors.New("ve: spark valleys need an analysis result with cylinders")
	}
	if opts.Window == 0 {
		opts.Window = 1
	}
	o, err := opts.filled()
	if err != nil {
		return nil, err
	}
	g := res.Grid
	curves := make([][]float64, len(g.MAP))
	hits := make([][]float64, len(g.MAP))
	var cols []int
	for j := range g.MAP {
		curves[j] = make([]float64, len(g.RPM))
		hits[j] = make([]float64, len(g.RPM))
		n := 0
		for i := range g.RPM {
			curves[j][i] = math.NaN()
			sum, ok, ev := 0.0, true, math.Inf(1)
			for ci := range res.Cylinders {
				c := res.Cylinders[ci].Cell(i, j)
				if c.EffectiveSamples < res.Options.MinSamples || !Has(c.Torque) || c.Torque <= 0 {
					ok = false
					break
				}
				sum += c.Torque
				ev = math.Min(ev, c.EffectiveSamples)
			}
			if ok {
				curves[j][i], hits[j][i] = sum/float64(len(res.Cylinders)), ev
				n++
			}
		}
		if (o.MinLoad > 0 && g.MAP[j] >= o.MinLoad) || (o.MinLoad == 0 && n >= o.MinPoints) {
			cols = append(cols, j)
		}
	}
	if o.MinLoad == 0 && len(cols) > 2 {
		cols = cols[len(cols)-2:]
	}
	out := []Valley{}
	for _, j := range cols {
		peak := 0.0
		for _, v := range curves[j] {
			if Has(v) {
				peak = math.Max(peak, v)
			}
		}
		co := o
		co.MinDepth = peak * o.MinDepthPct / 100
		if co.MinDepth <= 0 {
			continue
		}
		v, ok, err := FindValley(g.RPM, curves[j], hits[j], co)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		v.Load = g.MAP[j]
		for ci := range res.Cylinders {
			cr := &res.Cylinders[ci]
			for i, rpm := range g.RPM {
				if rpm < v.Band[0] || rpm > v.Band[1] {
					continue
				}
				if k := cr.Cell(i, j).KnockMax; Has(k) && k > v.KnockMax {
					v.KnockMax, v.Cylinder = k, cr.Name()
				}
			}
		}
		v.KnockLimited = v.KnockMax >= o.KnockDeg
		if v.KnockLimited {
			v.Suggestion = fmt.Sprintf("torque dips %.1f %% at %g rpm and knock pulled up to %.1f° on the %s cylinder there: the valley is knock-limited; do not add timing. Look at fuel octane, intake and head temperature, or a slightly richer mixture in %g-%g rpm",
				v.DepthPct, v.Center, v.KnockMax, v.Cylinder, v.Band[0], v.Band[1])
		} else {
			v.Cylinder = ""
			v.AdvanceDeg = 1
			v.Suggestion = fmt.Sprintf("torque dips %.1f %% at %g rpm with no knock: try 1° more spark in %g-%g rpm at %g kPa, in 0.5° steps, re-testing each and keeping what adds torque without knock",
				v.DepthPct, v.Center, v.Band[0], v.Band[1], v.Load)
		}
		out = append(out, v)
	}
	return out, nil
}

// WriteValleys writes valleys into dir as Spark_Valleys.csv (one row per
// valley) and Spark_Valleys.json, returning the names written.
func WriteValleys(dir string, valleys []Valley) ([]string, error) {
	names := []string{"Spark_Valleys.csv", "Spark_Valleys.json"}
	err := writeFileAtomic(filepath.Join(dir, names[0]), func(w io.Writer) error {
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"cylinder", "load", "center_rpm", "band_from_rpm", "band_to_rpm", "depth", "depth_pct",
			"knock_limited", "knock_max_deg", "advance_deg", "confidence"})
		f := func(v float64, p int) string { return strconv.FormatFloat(v, 'f', p, 64) }
		for _, v := range valleys {
			_ = cw.Write([]string{v.Cylinder, f(v.Load, 1), f(v.Center, 0), f(v.Band[0], 0), f(v.Band[1], 0), f(v.Depth, 2),
				f(v.DepthPct, 2), strconv.FormatBool(v.KnockLimited), f(v.KnockMax, 2), f(v.AdvanceDeg, 1), f(v.Confidence, 2)})
		}
		cw.Flush()
		return cw.Error()
	})
	if err != nil {
		return names[:1], err
	}
	err = writeJSONFile(dir, names[1], map[string]any{"valleys": valleys})
	return names, err
}
