package ve

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSampleBag: the multiset's MAD equals the plain median-of-deviations
// on the same values, bit for bit, for cells of repeated values, of
// distinct values and across many merges.
func TestSampleBag(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		n    int
		gen  func() float64
	}{
		{"one", 1, func() float64 { return 1.25 }},
		{"two", 2, func() float64 { return rng.Float64() }},
		{"two-decimal sensor", 20_000, func() float64 {
			cmd, meas := 13.0, 11+float64(rng.IntN(500))/100
			return (cmd - meas) / meas * 100
		}},
		{"all distinct", 50_001, func() float64 { return rng.NormFloat64() * 3 }},
		{"constant", 1_000, func() float64 { return -0.5 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b sampleBag
			var raw []float64
			for range tc.n {
				v := tc.gen()
				b.add(v)
				raw = append(raw, v)
			}
			want := madOf(slices.Clone(raw))
			require.Equal(t, math.Float64bits(want), math.Float64bits(b.mad()), "want %v got %v", want, b.mad())
		})
	}
	var empty sampleBag
	require.True(t, math.IsNaN(empty.mad()))
}

// TestDynoAI3Corr: the one-pass estimate is close to the exact two-pass r,
// and the exact pass is asked for only near or past the flag.
func TestDynoAI3Corr(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, slope := range []float64{-2, -0.5, -0.2, 0, 0.7} {
		var pairs []float64
		for range 5000 {
			x := rng.NormFloat64()
			pairs = append(pairs, x, 13.5+slope*x+rng.NormFloat64())
		}
		c := corrOf(pairs)
		require.InDelta(t, c.exact(), c.approx(), 1e-9, "slope %v", slope)
		require.Equal(t, c.exact() <= dynoai3CorrFlag+dynoai3CorrMargin, c.needExact(), "slope %v r %v", slope, c.exact())
	}
	require.False(t, corrOf([]float64{1, 2, 3, 4}).needExact(), "fewer than 10 pairs are never checked")
}

// TestDynoAI3Electrical: a log whose AFR error falls as the battery sags is
// flagged, with the exact r of the predecessor's formula, whether the
// reader can seek (read twice) or not (read into memory once).
func TestDynoAI3Electrical(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("rpm,map_kpa,torque,afr_cmd_f,afr_cmd_r,afr_meas_f,afr_meas_r,iat,vbatt,tps\n")
	var pairs []float64
	for i := range 400 {
		batt := 12 + float64(i%40)*0.05
		meas := 12.2 + (batt-12)*0.6 + float64(i%7)*0.01
		fmt.Fprintf(&b, "%d,%d,80,13.0,13.0,%.2f,%.2f,100,%.2f,50\n", 2000+(i%8)*500, 50+(i%3)*15, meas, meas, batt)
		m, v := mustParse(fmt.Sprintf("%.2f", meas)), mustParse(fmt.Sprintf("%.2f", batt))
		e := (13.0 - m) / m * 100
		pairs = append(pairs, e, v, e, v)
	}
	want := corrOf(pairs).exact()
	require.Less(t, want, -0.4)
	for _, r := range []io.Reader{bytes.NewReader(b.Bytes()), onlyReader{bytes.NewReader(b.Bytes())}} {
		res, err := DynoAI3Compat(t.Context(), r, "batt.csv", DefaultDynoAI3Options())
		require.NoError(t, err)
		var got *DynoAI3Anomaly
		for i, a := range res.Anomalies {
			if a.Type == DynoAI3Electrical {
				got = &res.Anomalies[i]
			}
		}
		require.NotNil(t, got, "electrical anomaly in %v", res.Anomalies)
		require.Equal(t, math.Abs(want), got.Score)
		report, err := res.DiagnosticsReport()
		require.NoError(t, err)
		require.Contains(t, string(report), "[Electrical supply correlation] score="+pyRepr(math.Abs(want), false))
		for _, d := range res.SessionReplay.Decisions {
			require.NotEqual(t, DynoAI3Electrical, func() any { v, _ := d.Values.Get("type"); return v }(), "only spatial anomalies are logged")
		}
	}
}

func mustParse(s string) float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		panic(err)
	}
	return v
}
