package main

import (
	"bufio"
	"fmt"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/dynoai/dynoai/internal/colorscale"
	"github.com/dynoai/dynoai/ve"
)

// heatmapDPI is the resolution of the PNG pictures (gonum/plot's default).
const heatmapDPI = 96

// heatmap is one picture of a grid: a cell per node on the RPM (across)
// by load (up) axes, coloured by the shared scale (internal/colorscale)
// with its value written in it.
type heatmap struct {
	title     string
	t         *ve.Table
	diverging bool    // diverging around zero; else sequential from zero
	limit     float64 // the scale's limit (diverging) or maximum (sequential)
	format    func(float64) string
	loadLabel string

	// cells records, when drawn, each node's rectangle on the canvas
	// (points from the bottom left), row-major like t.Values.
	cells []vg.Rectangle
}

// heatmapsOf returns the pictures of a cylinder: the correction in
// percent, the AFR error and the coverage.
func heatmapsOf(cr *ve.CylinderResult, load string) []*heatmap {
	n := cr.Name()
	pct := cr.Percent()
	afrErr := cr.AFRError()
	cov := cr.Coverage()
	maxHits := 0.0
	for _, v := range cov.Values {
		if v > maxHits {
			maxHits = v
		}
	}
	for i, v := range cov.Values {
		if v == 0 {
			cov.Values[i] = math.NaN() // no sample: drawn as missing
		}
	}
	limPct := colorscale.Limit(pct.Values, 2)
	limAFR := colorscale.Limit(afrErr.Values, 0.5)
	return []*heatmap{
		{title: fmt.Sprintf("VE correction %s (%%, scale ±%g)", n, limPct), t: pct, diverging: true, limit: limPct,
			format: func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }, loadLabel: load},
		{title: fmt.Sprintf("AFR error %s (measured − target, scale ±%g)", n, limAFR), t: afrErr, diverging: true, limit: limAFR,
			format: func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }, loadLabel: load},
		{title: fmt.Sprintf("Coverage %s (hits, max %g)", n, maxHits), t: cov, limit: math.Max(1, maxHits),
			format: func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }, loadLabel: load},
	}
}

// color returns a value's colour on the picture's scale.
func (h *heatmap) color(v float64) color.RGBA {
	if h.diverging {
		return colorscale.DivergingColor(v, h.limit)
	}
	return colorscale.SequentialColor(v, h.limit)
}

// size returns the picture's size: room for each cell's value.
func (h *heatmap) size() (w, ht vg.Length) {
	return vg.Length(len(h.t.RPM))*0.55*vg.Inch + 1.2*vg.Inch, vg.Length(len(h.t.MAP))*0.3*vg.Inch + 1.1*vg.Inch
}

// plot builds the gonum/plot figure.
func (h *heatmap) plot() *plot.Plot {
	p := plot.New()
	p.Title.Text = h.title
	p.X.Label.Text = "RPM"
	p.Y.Label.Text = h.loadLabel
	ticks := func(a []float64) plot.ConstantTicks {
		out := make(plot.ConstantTicks, len(a))
		for i, v := range a {
			out[i] = plot.Tick{Value: float64(i), Label: strconv.FormatFloat(v, 'f', -1, 64)}
		}
		return out
	}
	p.X.Tick.Marker, p.Y.Tick.Marker = ticks(h.t.RPM), ticks(h.t.MAP)
	p.X.Min, p.X.Max = -0.5, float64(len(h.t.RPM))-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(len(h.t.MAP))-0.5
	p.Add(h)
	return p
}

// Plot draws the cells; it makes heatmap a plot.Plotter.
func (h *heatmap) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	rows, cols := len(h.t.RPM), len(h.t.MAP)
	h.cells = make([]vg.Rectangle, rows*cols)
	sty := p.X.Tick.Label
	sty.XAlign, sty.YAlign = draw.XCenter, draw.YCenter
	sty.Font.Size = vg.Points(7)
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			v := h.t.Get(i, j)
			r := vg.Rectangle{
				Min: vg.Point{X: trX(float64(i) - 0.5), Y: trY(float64(j) - 0.5)},
				Max: vg.Point{X: trX(float64(i) + 0.5), Y: trY(float64(j) + 0.5)},
			}
			h.cells[i*cols+j] = r
			clr := h.color(v)
			c.FillPolygon(clr, []vg.Point{r.Min, {X: r.Max.X, Y: r.Min.Y}, r.Max, {X: r.Min.X, Y: r.Max.Y}})
			if math.IsNaN(v) {
				continue
			}
			sty.Color = color.Black
			if int(clr.R)+int(clr.G)+int(clr.B) < 3*110 {
				sty.Color = color.White
			}
			c.FillText(sty, vg.Point{X: (r.Min.X + r.Max.X) / 2, Y: (r.Min.Y + r.Max.Y) / 2}, h.format(v))
		}
	}
}

// write saves the picture as base.png and base.svg in dir and returns the
// names written. The PNG is encoded at zlib's fastest level: it is a few
// flat colours, which the fastest level packs nearly as well, in a third
// of the time.
func (h *heatmap) write(dir, base string) ([]string, error) {
	w, ht := h.size()
	p := h.plot()
	img := vgimg.NewWith(vgimg.UseWH(w, ht), vgimg.UseDPI(heatmapDPI))
	p.Draw(draw.New(img))
	name := base + ".png"
	if err := writeAtomic(filepath.Join(dir, name), func(f io.Writer) error {
		enc := png.Encoder{CompressionLevel: png.BestSpeed}
		return enc.Encode(f, img.Image())
	}); err != nil {
		return nil, err
	}
	names := []string{name}
	svg := vgsvg.New(w, ht)
	p.Draw(draw.New(svg))
	name = base + ".svg"
	if err := writeAtomic(filepath.Join(dir, name), func(f io.Writer) error {
		_, err := svg.WriteTo(f)
		return err
	}); err != nil {
		return names, err
	}
	return append(names, name), nil
}

// writeImages writes every cylinder's pictures into dir and returns their
// names. The pictures are drawn in parallel, one per core.
func writeImages(res *ve.Result, dir string) ([]string, error) {
	load := "MAP (kPa)"
	switch res.Load {
	case ve.LoadTPS:
		load = "throttle (%)"
	case ve.LoadECU:
		load = "load"
	}
	type job struct {
		h     *heatmap
		base  string
		names []string
		err   error
	}
	var jobs []*job
	for ci := range res.Cylinders {
		cr := &res.Cylinders[ci]
		for k, h := range heatmapsOf(cr, load) {
			jobs = append(jobs, &job{h: h, base: [...]string{"VE_Correction_", "AFR_Error_Map_", "Coverage_"}[k] + cr.Name()})
		}
	}
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			j.names, j.err = j.h.write(dir, j.base)
		}()
	}
	wg.Wait()
	var names []string
	for _, j := range jobs {
		names = append(names, j.names...)
		if j.err != nil {
			return names, j.err
		}
	}
	return names, nil
}

// writeAtomic writes a file through a temporary file renamed into place,
// so a picture is whole or absent.
func writeAtomic(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	bw := bufio.NewWriterSize(f, 64<<10)
	if err := write(bw); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
