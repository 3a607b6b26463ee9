package colorscale

import (
	"fmt"
	"image/color"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// The documented stops come out exactly, and between them the colours
// order as the values do (red minus blue rises; the sequential channels'
// sum falls), to within a unit of rounding; across the whole range they
// order strictly.
func TestScales(t *testing.T) {
	for _, s := range Diverging {
		require.Equal(t, s.C, DivergingColor(s.T*5, 5), "t=%v", s.T)
	}
	require.Equal(t, color.RGBA{0xF7, 0xF7, 0xF7, 0xFF}, DivergingColor(0, 3))
	require.Equal(t, Diverging[0].C, DivergingColor(-100, 3), "clamped")
	require.Equal(t, Missing, DivergingColor(math.NaN(), 3))
	require.Equal(t, Missing, SequentialColor(1, 0))
	prevD, prevS := math.Inf(-1), math.Inf(1)
	for i := 0; i <= 200; i++ {
		v := -1 + float64(i)/100
		c := DivergingColor(v, 1)
		d := float64(c.R) - float64(c.B)
		require.GreaterOrEqual(t, d, prevD-1, "v=%v", v)
		prevD = max(prevD, d)
		if v >= 0 {
			s := SequentialColor(v, 1)
			sum := float64(s.R) + float64(s.G) + float64(s.B)
			require.LessOrEqual(t, sum, prevS+1, "v=%v", v)
			prevS = min(prevS, sum)
		}
	}
}

func TestLimit(t *testing.T) {
	for _, tc := range []struct {
		values []float64
		floor  float64
		want   float64
	}{
		{[]float64{1, -3.4, math.NaN()}, 2, 5},
		{[]float64{0.1}, 2, 2},
		{[]float64{12}, 2, 20},
		{[]float64{math.Inf(1), 0.3}, 0.5, 0.5},
		{nil, 0, 1},
		{[]float64{-0.7}, 0.5, 1},
	} {
		t.Run(fmt.Sprint(tc.values, tc.floor), func(t *testing.T) {
			require.Equal(t, tc.want, Limit(tc.values, tc.floor))
		})
	}
}

func ExampleDivergingColor() {
	l := Limit([]float64{-1.2, 3.4}, 2)
	c := DivergingColor(3.4, l)
	fmt.Printf("limit ±%v, +3.4 is #%02X%02X%02X, 0 is %v\n", l, c.R, c.G, c.B, DivergingColor(0, l))
	// Output: limit ±5, +3.4 is #DC7263, 0 is {247 247 247 255}
}
