package ve

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func grid(rows [][]float64) *Table {
	rpm := make([]float64, len(rows))
	mp := make([]float64, len(rows[0]))
	for i := range rpm {
		rpm[i] = float64(1000 + 500*i)
	}
	for j := range mp {
		mp[j] = float64(20 + 10*j)
	}
	t := MustTable(rpm, mp, math.NaN())
	for i, r := range rows {
		for j, v := range r {
			t.Set(i, j, v)
		}
	}
	return t
}

var null = math.NaN()

// The vectors are spec §9.1 (Python repr of the predecessor's outputs).
func TestSmoothK1K2Vectors(t *testing.T) {
	cases := []struct {
		name   string
		in     [][]float64
		passes int
		want   [][]float64
	}{
		{"single", [][]float64{{5.0}}, 2, [][]float64{{5.0}}},
		{"flat", [][]float64{{1, 1}, {1, 1}}, 2, [][]float64{{1, 1}, {1, 1}}},
		{"ramp", [][]float64{{0.5, 0.6, 0.7}}, 2, [][]float64{{0.5801851851851851, 0.631088319088319, 0.6483189616967394}}},
		{"k2 only", [][]float64{{0.5, 0.6, 0.7}}, 0, [][]float64{{0.508888888888889, 0.6005470085470086, 0.6911597340930674}}},
		{"bankers", [][]float64{{2.5, 2.0}}, 2, [][]float64{{2.477777777777778, 2.270246913580247}}},
		{"pair", [][]float64{{1.5, 2.0}}, 2, [][]float64{{1.8805555555555555, 1.9324382716049384}}},
		{"walkthrough", [][]float64{{3.5, 1.5, 0.5}}, 2, [][]float64{{3.3222222222222224, 1.6172649572649576, 1.5863494776828113}}},
		{"nulls", [][]float64{{0.2, 0.4, null}, {0.8, 5.0, -0.3}, {null, 1.2, -2.0}}, 2,
			[][]float64{{0.561025641025641, 0.6929861932938857, null}, {1.0437554240631164, 4.338542537804076, -0.11916661305821068}, {null, 1.1962180023264046, -1.6875660683527267}}},
		{"3x5", [][]float64{{2.0, 1.5, 1.0, 0.5, 0.0}, {1.8, 1.3, 0.8, 0.3, -0.2}, {1.5, 1.0, 0.5, 0.0, -0.5}}, 2,
			[][]float64{
				{1.731153846153846, 1.3516932692307693, 0.8855905086255658, 0.40462970956100164, 0.1005866775038786},
				{1.5666394838277193, 1.1886760872417341, 0.7245185394501475, 0.24348788683236922, -0.04319387333279108},
				{1.3144174867540706, 1.0067393667174498, 0.5768643893803134, 0.11893296009919366, -0.032731871249738476}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := grid(tc.in)
			before := in.Clone()
			got := SmoothK1K2(in, tc.passes, 1.0)
			require.True(t, in.Equal(before), "input was modified")
			want := grid(tc.want)
			for i := range want.Values {
				w, g := want.Values[i], got.Values[i]
				if math.IsNaN(w) {
					require.True(t, math.IsNaN(g), "cell %d: want empty, got %v", i, g)
					continue
				}
				require.InDelta(t, w, g, 1e-12, "cell %d", i)
			}
		})
	}
}

func TestClampPercent(t *testing.T) {
	g := grid([][]float64{{7.0001, -7.0001, 6.9999, 7, -7, null, 20, -25}})
	n := ClampPercent(g, 7)
	require.Equal(t, 2, n) // 20 and -25; 7.0001 moves by less than 0.01
	want := []float64{7, -7, 6.9999, 7, -7, null, 7, -7}
	for i, w := range want {
		if math.IsNaN(w) {
			require.True(t, math.IsNaN(g.Values[i]))
			continue
		}
		require.Equal(t, w, g.Values[i], "cell %d", i)
	}
}
