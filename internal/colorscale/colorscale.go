// Package colorscale holds the colour scales every picture of a VE grid
// uses, so that the command line's heatmaps (examples/analyze) and the web
// UI colour a cell alike. It is the scale's one definition: a UI written in
// another language reproduces it from this comment.
//
// # Diverging (corrections, AFR error)
//
// A value v is read against a symmetric limit L > 0 (see Limit) as
// t = clamp(v/L, −1, 1), and coloured by linear interpolation, channel by
// channel in sRGB (8 bits, rounded to nearest), between five stops, the
// endpoints and middle of ColorBrewer's RdBu:
//
//	t = −1    #2166AC  (blue: richer than the target / remove fuel)
//	t = −0.5  #92C5DE
//	t =  0    #F7F7F7  (no change)
//	t = +0.5  #F4A582
//	t = +1    #B2182B  (red: leaner than the target / add fuel)
//
// Zero is always the middle colour, whatever the data: a correction of
// +3 % is red and −3 % blue on every grid. The red channel minus the blue
// channel rises with t (−139, −76, 0, 114, 135 at the stops; between them
// to within one unit of rounding), which is how a test can tell that
// colours order as values do.
//
// # Sequential (coverage: hits, evidence)
//
// A value v ≥ 0 is read against its maximum M as t = clamp(v/M, 0, 1) and
// interpolated likewise between
//
//	t = 0    #F7F7F7
//	t = 0.5  #A6DBA0
//	t = 1    #1B7837  (ColorBrewer PRGn's green end)
//
// The sum of the channels falls with t (within one unit of rounding).
//
// # Missing values
//
// NaN (a cell without data or without a correction) is #D9D9D9 on either
// scale, drawn without a value.
//
// # The limit
//
// Limit(values, floor) is the largest |v| of the finite values, but at least
// floor, rounded up to the next of 1, 2 or 5 times a power of ten: a grid
// of corrections within ±3.4 % is drawn on ±5 %. The pictures use floor 2
// for corrections in percent and 0.5 for AFR error in AFR points.
package colorscale

import (
	"image/color"
	"math"
)

// Stop is one colour of a scale at position T.
type Stop struct {
	T float64
	C color.RGBA
}

// Diverging is the diverging scale's stops, t from −1 to 1.
var Diverging = []Stop{
	{-1, color.RGBA{0x21, 0x66, 0xAC, 0xFF}},
	{-0.5, color.RGBA{0x92, 0xC5, 0xDE, 0xFF}},
	{0, color.RGBA{0xF7, 0xF7, 0xF7, 0xFF}},
	{0.5, color.RGBA{0xF4, 0xA5, 0x82, 0xFF}},
	{1, color.RGBA{0xB2, 0x18, 0x2B, 0xFF}},
}

// Sequential is the sequential scale's stops, t from 0 to 1.
var Sequential = []Stop{
	{0, color.RGBA{0xF7, 0xF7, 0xF7, 0xFF}},
	{0.5, color.RGBA{0xA6, 0xDB, 0xA0, 0xFF}},
	{1, color.RGBA{0x1B, 0x78, 0x37, 0xFF}},
}

// Missing is the colour of a cell without a value.
var Missing = color.RGBA{0xD9, 0xD9, 0xD9, 0xFF}

// Interpolate returns the colour at t on stops (sorted by T), t clamped to
// the stops' range.
func Interpolate(stops []Stop, t float64) color.RGBA {
	if math.IsNaN(t) || len(stops) == 0 {
		return Missing
	}
	if t <= stops[0].T {
		return stops[0].C
	}
	for i := 1; i < len(stops); i++ {
		if t <= stops[i].T {
			a, b := stops[i-1], stops[i]
			f := (t - a.T) / (b.T - a.T)
			mix := func(x, y uint8) uint8 { return uint8(math.Round(float64(x) + f*(float64(y)-float64(x)))) }
			return color.RGBA{mix(a.C.R, b.C.R), mix(a.C.G, b.C.G), mix(a.C.B, b.C.B), 0xFF}
		}
	}
	return stops[len(stops)-1].C
}

// DivergingColor returns the colour of v on the diverging scale with limit
// l (l > 0; NaN v is Missing).
func DivergingColor(v, l float64) color.RGBA {
	if math.IsNaN(v) || !(l > 0) {
		return Missing
	}
	return Interpolate(Diverging, math.Max(-1, math.Min(1, v/l)))
}

// SequentialColor returns the colour of v on the sequential scale with
// maximum m (m > 0; NaN v is Missing).
func SequentialColor(v, m float64) color.RGBA {
	if math.IsNaN(v) || !(m > 0) {
		return Missing
	}
	return Interpolate(Sequential, math.Max(0, math.Min(1, v/m)))
}

// Limit returns the diverging scale's limit for values: the largest
// finite |v|, at least floor, rounded up to 1, 2 or 5 times a power of ten.
func Limit(values []float64, floor float64) float64 {
	m := floor
	for _, v := range values {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			m = math.Max(m, math.Abs(v))
		}
	}
	if !(m > 0) {
		return 1
	}
	return Nice(m)
}

// Nice rounds x > 0 up to the next of 1, 2 or 5 times a power of ten.
func Nice(x float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, f := range []float64{1, 2, 5, 10} {
		if x <= f*p*(1+1e-12) {
			return f * p
		}
	}
	return 10 * p
}
