package afr

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynoai/dynoai/dyno"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultTargets(t *testing.T) {
	d := DefaultTargets()
	var _ dyno.Surface = d
	assert.Equal(t, 14.6, d.At(2500, 30))
	assert.Equal(t, 14.6, d.At(1000, 10), "below the grid holds the corner")
	assert.Equal(t, 12.9, d.At(3000, 100))
	assert.Equal(t, 12.8, d.At(6000, 100))
	assert.Equal(t, 12.8, d.At(9000, 140), "above the grid holds the corner")
	assert.InDelta(t, 14.2, d.At(3000, 55), 1e-12, "halfway between 50 and 60 kPa")
	assert.InDelta(t, 12.85, d.At(4750, 100), 1e-12, "halfway between 4500 and 5000 rpm")
	assert.False(t, dyno.Has(d.At(math.NaN(), 50)))
	// Richer (lower AFR) as load rises, at every RPM.
	for _, r := range d.RPM() {
		for m := 20.0; m < 100; m += 2.5 {
			assert.GreaterOrEqual(t, d.At(r, m), d.At(r, m+2.5), "rpm %v map %v", r, m)
		}
	}
}

func TestBilinearCorners(t *testing.T) {
	tb, err := NewTargets([]float64{1000, 2000}, []float64{50, 100}, [][]float64{{14, 13}, {12, 11}}, TargetOptions{})
	require.NoError(t, err)
	for _, tt := range []struct{ r, m, want float64 }{
		{1000, 50, 14}, {1000, 100, 13}, {2000, 50, 12}, {2000, 100, 11},
		{1500, 75, 12.5}, {1250, 50, 13.5}, {1000, 62.5, 13.75}, {1750, 87.5, 11.75},
	} {
		assert.InDelta(t, tt.want, tb.At(tt.r, tt.m), 1e-12, "%v,%v", tt.r, tt.m)
	}
	one, err := NewTargets([]float64{3000}, []float64{50, 100}, [][]float64{{14, 12}}, TargetOptions{})
	require.NoError(t, err)
	assert.InDelta(t, 13, one.At(6000, 75), 1e-12, "one RPM point: constant along RPM")
}

func TestNewTargetsRejects(t *testing.T) {
	ok := [][]float64{{14, 13}, {12, 11}}
	for _, tt := range []struct {
		name    string
		rpm, mp []float64
		v       [][]float64
		opt     TargetOptions
		msg     string
	}{
		{"empty rpm", nil, []float64{50}, nil, TargetOptions{}, "RPM axis is empty"},
		{"decreasing", []float64{2000, 1000}, []float64{50, 100}, ok, TargetOptions{}, "not strictly increasing"},
		{"duplicate map", []float64{1000, 2000}, []float64{50, 50}, ok, TargetOptions{}, "not strictly increasing"},
		{"NaN axis", []float64{1000, math.NaN()}, []float64{50, 100}, ok, TargetOptions{}, "finite positive"},
		{"rows", []float64{1000, 2000, 3000}, []float64{50, 100}, ok, TargetOptions{}, "2 value rows for 3"},
		{"ragged", []float64{1000, 2000}, []float64{50, 100}, [][]float64{{14, 13}, {12}}, TargetOptions{}, "1 values for 2"},
		{"lean", []float64{1000, 2000}, []float64{50, 100}, [][]float64{{14, 19}, {12, 11}}, TargetOptions{}, "outside gasoline"},
		{"NaN value", []float64{1000, 2000}, []float64{50, 100}, [][]float64{{14, math.NaN()}, {12, 11}}, TargetOptions{}, "outside"},
		{"gasoline on E85()", []float64{1000, 2000}, []float64{50, 100}, ok, TargetOptions{Fuel: E85()}, "outside e85"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTargets(tt.rpm, tt.mp, tt.v, tt.opt)
			require.ErrorIs(t, err, ErrInvalidTargets)
			assert.Contains(t, err.Error(), tt.msg)
		})
	}
}

func TestReadTargetsCSV(t *testing.T) {
	in := "# a comment\nRPM\\kPa, 30, 60, 100\n1500,14.6,'14.0,13.0\n\n3000 , 14.5, 13.8, 12.8\n"
	tb, err := ReadTargetsCSV(strings.NewReader(in), TargetOptions{})
	require.NoError(t, err)
	assert.Equal(t, []float64{1500, 3000}, tb.RPM())
	assert.Equal(t, []float64{30, 60, 100}, tb.MAP())
	assert.Equal(t, 14.0, tb.Value(0, 1))
	assert.Equal(t, 12.8, tb.At(3000, 100))

	var buf bytes.Buffer
	require.NoError(t, tb.WriteCSV(&buf))
	assert.Equal(t, "RPM,30,60,100\n1500,14.6,14,13\n3000,14.5,13.8,12.8\n", buf.String())
	back, err := ReadTargetsCSV(&buf, TargetOptions{})
	require.NoError(t, err)
	assert.Equal(t, tb, back)

	lam, err := ReadTargetsCSV(strings.NewReader("RPM,50,100\n2000,1.0,0.85\n"), TargetOptions{Lambda: true, Fuel: E85()})
	require.NoError(t, err)
	assert.InDelta(t, 9.77*0.85, lam.At(2000, 100), 1e-12)
}

func TestReadTargetsCSVErrors(t *testing.T) {
	for _, tt := range []struct {
		name, in     string
		line, column int
		msg          string
	}{
		{"empty", "", 0, 0, "no header"},
		{"header only", "RPM,30,60\n", 0, 0, "no RPM rows"},
		{"short header", "RPM\n1500\n", 1, 1, "header has 1 cells"},
		{"bad map", "RPM,30,x\n", 1, 8, `MAP axis value "x"`},
		{"map order", "RPM,60,30\n", 1, 1, "not strictly increasing"},
		{"short row", "RPM,30,60\n1500,14\n", 2, 1, "row has 2 cells, want 3"},
		{"bad target", "RPM,30,60\n1500,14,abc\n", 2, 9, `target "abc"`},
		{"empty target", "RPM,30,60\n1500,14,\n", 2, 9, "empty target"},
		{"lean target", "RPM,30,60\n1500,14,25\n", 2, 9, "outside gasoline"},
		{"rpm order", "RPM,30,60\n2000,14,13\n1500,14,13\n", 3, 1, "does not increase"},
		{"rpm zero", "RPM,30,60\n0,14,13\n", 2, 1, "not positive"},
		{"inf", "RPM,30,60\n1500,14,Inf\n", 2, 9, "not a finite number"},
		{"quote", "RPM,30,60\n1500,\"14,13\n", 2, 13, "extraneous or missing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadTargetsCSV(strings.NewReader(tt.in), TargetOptions{Name: "t.csv"})
			require.ErrorIs(t, err, ErrInvalidTargets)
			var te *TargetsError
			require.True(t, errors.As(err, &te))
			assert.Equal(t, tt.line, te.Line, err.Error())
			if tt.line > 0 {
				assert.Equal(t, tt.column, te.Column, err.Error())
			}
			assert.Contains(t, err.Error(), tt.msg)
			assert.Contains(t, err.Error(), "t.csv")
		})
	}
}

func TestLoadTargetsCSV(t *testing.T) {
	p := filepath.Join(t.TempDir(), "targets.csv")
	var buf bytes.Buffer
	require.NoError(t, DefaultTargets().WriteCSV(&buf))
	require.NoError(t, os.WriteFile(p, buf.Bytes(), 0o600))
	tb, err := LoadTargetsCSV(p, TargetOptions{})
	require.NoError(t, err)
	want := DefaultTargets()
	assert.Equal(t, want.v, tb.v)
	assert.Equal(t, want.rpm, tb.rpm)
	assert.Equal(t, want.mapKPa, tb.mapKPa)
	assert.Equal(t, "target table "+p, tb.String(), "a loaded table is named by its file")
	_, err = LoadTargetsCSV(filepath.Join(t.TempDir(), "nope.csv"), TargetOptions{})
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func FuzzReadTargetsCSV(f *testing.F) {
	f.Add("RPM,30,60,100\n1500,14.6,14.0,13.0\n3000,14.5,13.8,12.8\n")
	f.Add("RPM,50\n2000,'13\n")
	f.Add("x,1,2\n1,9,18\n")
	f.Add("RPM,\"30\",60\n1500,14,13\n")
	f.Fuzz(func(t *testing.T, in string) {
		tb, err := ReadTargetsCSV(strings.NewReader(in), TargetOptions{})
		if err != nil {
			if !errors.Is(err, ErrInvalidTargets) {
				t.Fatalf("error does not wrap ErrInvalidTargets: %v", err)
			}
			return
		}
		for _, r := range []float64{0, 1000, 3000, 1e9} {
			for _, m := range []float64{0, 50, 1e9} {
				v := tb.At(r, m)
				if !(v >= Gasoline().MinAFR && v <= Gasoline().MaxAFR) {
					t.Fatalf("At(%v,%v) = %v outside the validated range", r, m, v)
				}
			}
		}
		var buf bytes.Buffer
		if err := tb.WriteCSV(&buf); err != nil {
			t.Fatal(err)
		}
		back, err := ReadTargetsCSV(&buf, TargetOptions{})
		if err != nil {
			t.Fatalf("written table does not read back: %v\n%s", err, buf.String())
		}
		assert.Equal(t, tb, back)
	})
}
