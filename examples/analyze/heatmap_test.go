package main

import (
	"bytes"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot/vg"

	"github.com/dynoai/dynoai/ve"
)

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	return img
}

// pixelOf returns the PNG pixel at canvas point p (points from the bottom
// left).
func pixelOf(p vg.Point, height int) image.Point {
	return image.Point{X: int(p.X.Dots(heatmapDPI)), Y: height - 1 - int(p.Y.Dots(heatmapDPI))}
}

// A picture decodes as a PNG of the size the grid calls for, and its cells'
// colours order as their values do: on the diverging scale red minus blue
// rises with the value, on the sequential scale the channels' sum falls.
func TestHeatmapPNG(t *testing.T) {
	tab := ve.MustTable([]float64{1500, 2000, 2500, 3000, 3500, 4000}, []float64{30, 50, 70, 90}, 0)
	for i := range tab.Values {
		tab.Values[i] = float64(i%7)*2.3 - 6.5 + float64(i)/10 // -6.5 .. +9.6, not monotone in position
	}
	tab.Values[5] = math.NaN()
	for _, diverging := range []bool{true, false} {
		h := &heatmap{title: "test", t: tab.Clone(), diverging: diverging, limit: 10, loadLabel: "MAP (kPa)",
			format: func(v float64) string { return "x" }}
		if !diverging {
			h.limit = 20
			for i, v := range h.t.Values {
				h.t.Values[i] = v + 7 // sequential values are positive, within the maximum
			}
		}
		dir := t.TempDir()
		names, err := h.write(dir, "pic")
		require.NoError(t, err)
		require.Equal(t, []string{"pic.png", "pic.svg"}, names)
		svg, err := os.ReadFile(filepath.Join(dir, "pic.svg"))
		require.NoError(t, err)
		require.True(t, bytes.Contains(svg, []byte("<svg")), "not an SVG")

		img := decodePNG(t, filepath.Join(dir, "pic.png"))
		w, ht := h.size()
		require.Equal(t, image.Pt(int(math.Ceil(w.Dots(heatmapDPI))), int(math.Ceil(ht.Dots(heatmapDPI)))), img.Bounds().Size())
		require.Len(t, h.cells, len(tab.Values))

		key := func(i int) float64 {
			r := h.cells[i]
			// A pixel inside the cell, away from its value's text and edges.
			p := pixelOf(vg.Point{X: r.Min.X + (r.Max.X-r.Min.X)/8, Y: r.Min.Y + (r.Max.Y-r.Min.Y)/6}, img.Bounds().Dy())
			cr, cg, cb, _ := img.At(p.X, p.Y).RGBA()
			if diverging {
				return float64(cr>>8) - float64(cb>>8)
			}
			return -float64(cr>>8 + cg>>8 + cb>>8)
		}
		missing := key(5)
		for i, vi := range h.t.Values {
			if math.IsNaN(vi) {
				continue
			}
			require.NotEqual(t, missing, key(i), "cell %d coloured as missing", i)
			for j, vj := range h.t.Values {
				if math.IsNaN(vj) || vi-vj < 0.3 {
					continue
				}
				require.Greater(t, key(i), key(j), "cell %d (%.2f) against cell %d (%.2f), diverging %v", i, vi, j, vj, diverging)
			}
		}
	}
}

// The command draws three pictures per cylinder next to the CSVs, and none
// with -no-images.
func TestAnalyzeWritesImages(t *testing.T) {
	for _, noImages := range []bool{false, true} {
		c := defaults()
		c.out, c.noImages, c.quiet = t.TempDir(), noImages, true
		var stdout, stderr bytes.Buffer
		require.NoError(t, run(t.Context(), c, []string{"../../testdata/sample_pulls.csv"}, &stdout, &stderr))
		entries, err := os.ReadDir(c.out)
		require.NoError(t, err)
		var pics []string
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".png") || strings.HasSuffix(e.Name(), ".svg") {
				pics = append(pics, e.Name())
			}
		}
		if noImages {
			require.Empty(t, pics)
			continue
		}
		require.Len(t, pics, 12, "%v", pics)
		for _, base := range []string{"VE_Correction_Front", "AFR_Error_Map_Rear", "Coverage_Front"} {
			require.FileExists(t, filepath.Join(c.out, base+".csv"))
			img := decodePNG(t, filepath.Join(c.out, base+".png"))
			require.Greater(t, img.Bounds().Dx(), 400)
		}
	}
}

// BenchmarkHeatmaps measures drawing one cylinder's three pictures (PNG and
// SVG) of the shipped sample's 11x9 grid.
func BenchmarkHeatmaps(b *testing.B) {
	tab := ve.MustTable([]float64{1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500, 6000, 6500}, []float64{20, 30, 40, 50, 60, 70, 80, 90, 100}, 0)
	for i := range tab.Values {
		tab.Values[i] = float64(i%13) - 6
	}
	dir := b.TempDir()
	b.ReportAllocs()
	for b.Loop() {
		for k := 0; k < 3; k++ {
			h := &heatmap{title: "bench", t: tab, diverging: k < 2, limit: 10, loadLabel: "MAP (kPa)",
				format: func(v float64) string { return "1.0" }}
			if _, err := h.write(dir, "pic"); err != nil {
				b.Fatal(err)
			}
		}
	}
}
