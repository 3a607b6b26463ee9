package ve

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/internal/shareddata"
)

func TestTableAtBilinear(t *testing.T) {
	tb := MustTable([]float64{1000, 2000}, []float64{50, 100}, 0)
	tb.Set(0, 0, 10)
	tb.Set(0, 1, 20)
	tb.Set(1, 0, 30)
	tb.Set(1, 1, 40)
	assert.Equal(t, 10.0, tb.At(1000, 50))
	assert.Equal(t, 25.0, tb.At(1500, 75))
	assert.Equal(t, 15.0, tb.At(1000, 75))
	assert.Equal(t, 10.0, tb.At(0, 0), "held at the edge below")
	assert.Equal(t, 40.0, tb.At(9000, 200), "held at the edge above")
	tb.Set(1, 1, math.NaN())
	assert.InDelta(t, 20.0, tb.At(1500, 75), 1e-12, "an empty neighbour is skipped: (10+20+30)/3")
}

func TestNearestTiesGoLow(t *testing.T) {
	g := dynoAI3Grid()
	for _, tc := range []struct{ in, want float64 }{{1750, 1500}, {2249.99, 2000}, {2750, 2500}, {3750, 3500}, {7000, 6500}} {
		assert.Equal(t, tc.want, g.RPM[Nearest(g.RPM, tc.in)], "rpm %v", tc.in)
	}
	for _, tc := range []struct{ in, want float64 }{{42.5, 35}, {57.5, 50}, {20, 35}, {72.3, 65}, {100, 95}} {
		assert.Equal(t, tc.want, g.MAP[Nearest(g.MAP, tc.in)], "kpa %v", tc.in)
	}
}

func TestReadTableCSVLayouts(t *testing.T) {
	rpmMajor := "RPM,35,50\r\n1500,'+1.50,-2.25\r\n2000,,nan\r\n"
	tb, err := ReadTableCSV(strings.NewReader(rpmMajor), "a.csv")
	require.NoError(t, err)
	assert.Equal(t, []float64{1500, 2000}, tb.RPM)
	assert.Equal(t, []float64{35, 50}, tb.MAP)
	assert.Equal(t, 1.5, tb.Get(0, 0))
	assert.Equal(t, -2.25, tb.Get(0, 1))
	assert.True(t, math.IsNaN(tb.Get(1, 0)) && math.IsNaN(tb.Get(1, 1)))
	assert.Equal(t, 2, tb.Precision)

	mapMajor := "MAP_kPa\t1500\t2000\n35\t1\t2\n50\t3\t4\n"
	tm, err := ReadTableCSV(strings.NewReader(mapMajor), "b.csv")
	require.NoError(t, err)
	assert.Equal(t, []float64{1500, 2000}, tm.RPM)
	assert.Equal(t, 2.0, tm.Get(1, 0), "transposed on the way in")

	var buf bytes.Buffer
	require.NoError(t, tb.WriteCSV(&buf, CSVFormat{Cell: CellFormat{Decimals: 2}}))
	back, err := ReadTableCSV(&buf, "round-trip")
	require.NoError(t, err)
	assert.True(t, back.Equal(tb), "write/read round trip")
}

func TestReadTableCSVErrors(t *testing.T) {
	cases := map[string]struct{ in, want string }{
		"empty":      {"", "t.csv:1: empty file"},
		"corner":     {"Speed,35\n1500,1\n", "t.csv:1:1: first header cell"},
		"axis":       {"RPM,35,abc\n", "t.csv:1:3: axis value \"abc\""},
		"cell":       {"RPM,35,50\n1500,1,x1\n", "t.csv:2:3: cell \"x1\" is not a number"},
		"ragged":     {"RPM,35,50\n1500,1\n", "t.csv:2: row has 2 cells, header has 3"},
		"no rows":    {"RPM,35,50\n", "no data rows"},
		"decreasing": {"RPM,35,50\n2000,1,1\n1500,1,1\n", "not strictly increasing"},
		"inf":        {"RPM,35\n1500,inf\n", "t.csv:2:2"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ReadTableCSV(strings.NewReader(tc.in), "t.csv")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, errors.Is(err, ErrTable), "errors.Is(err, ErrTable) for %v", err)
		})
	}
}

// TestReadPredecessorTables reads every table the predecessor shipped.
func TestReadPredecessorTables(t *testing.T) {
	dir := shareddata.Dir(t, "dynoai3", "tables")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	read := 0
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".csv") {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		tb, err := ReadTableCSV(f, e.Name())
		f.Close()
		if err != nil {
			assert.ErrorIs(t, err, ErrTable, "%s: refusals must be table errors", e.Name())
			t.Logf("%s refused: %v", e.Name(), err)
			continue
		}
		require.NoError(t, tb.Validate(), e.Name())
		read++
	}
	assert.Positive(t, read)
}

func FuzzReadTableCSV(f *testing.F) {
	f.Add([]byte("RPM,35,50\r\n1500,'+1.50,-2.25\r\n2000,,nan\r\n"))
	f.Add([]byte("MAP_kPa,1500,2000\n35,1,2\n50,3,4\n"))
	f.Add([]byte("\xef\xbb\xbfRPM;35\n1500;1e3\n"))
	f.Add([]byte("RPM,35\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, err := ReadTableCSV(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		if err := tb.Validate(); err != nil {
			t.Fatalf("accepted an invalid table: %v", err)
		}
		var buf bytes.Buffer
		if err := tb.WriteCSV(&buf, CSVFormat{Cell: CellFormat{Decimals: tb.Precision}}); err != nil {
			t.Fatal(err)
		}
		back, err := ReadTableCSV(&buf, "again")
		if err != nil {
			t.Fatalf("cannot read back what was written: %v\n%s", err, buf.String())
		}
		if !back.SameAxes(tb) {
			t.Fatalf("axes changed on round trip: %v/%v vs %v/%v", tb.RPM, tb.MAP, back.RPM, back.MAP)
		}
	})
}

// The analyzer's constant-time axis lookups must agree with the plain ones.
func TestAxisIndexAgrees(t *testing.T) {
	axes := [][]float64{DefaultGrid().RPM, DefaultGrid().MAP, {20, 30, 45, 100}, {7}, {0.1, 0.2, 0.3}}
	rng := rand.New(rand.NewPCG(5, 5))
	for _, a := range axes {
		x := newAxisIndex(a)
		vals := []float64{a[0], a[len(a)-1], a[0] - 1, a[len(a)-1] + 1, math.NaN()}
		for _, v := range a {
			vals = append(vals, v, v+0.5, v-0.5)
		}
		for k := 0; k < 2000; k++ {
			vals = append(vals, a[0]-10+rng.Float64()*(a[len(a)-1]-a[0]+20))
		}
		for _, v := range vals {
			i0, i1, f := bracket(a, v)
			j0, j1, g := x.bracket(v)
			require.Equal(t, []int{i0, i1}, []int{j0, j1}, "axis %v value %v", a, v)
			require.InDelta(t, f, g, 1e-12, "axis %v value %v", a, v)
			if !math.IsNaN(v) {
				require.Equal(t, Nearest(a, v), x.nearest(v), "axis %v value %v", a, v)
			}
		}
	}
}
