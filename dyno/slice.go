package dyno

import (
	"context"
	"io"
)

// SliceSource is a Source over samples already in memory: for tests, for
// small logs a caller built itself, and as the in-memory fake of Source.
type SliceSource struct {
	layout  Layout
	samples []Sample
	next    int
}

// NewSliceSource returns a Source that yields samples in order, then io.EOF.
func NewSliceSource(layout Layout, samples []Sample) *SliceSource {
	return &SliceSource{layout: layout, samples: samples}
}

// Layout returns the layout given to NewSliceSource.
func (s *SliceSource) Layout() Layout { return s.layout }

// Next copies the next sample into dst.
func (s *SliceSource) Next(ctx context.Context, dst *Sample) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.next >= len(s.samples) {
		return io.EOF
	}
	*dst = s.samples[s.next]
	s.next++
	return nil
}

// Collect reads src to its end and returns every sample. It is for tests and
// small logs only: it holds the whole stream in memory, which the library's
// own pipeline never does.
func Collect(ctx context.Context, src Source) ([]Sample, error) {
	var out []Sample
	for {
		s := NewSample()
		err := src.Next(ctx, &s)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, s)
	}
}

// Surface is a function of engine speed and load, such as a VE or target-AFR
// table. ve.Table implements it; the simulator takes the engine's true VE and
// the ECU's VE as Surfaces so that dyno does not depend on ve.
type Surface interface {
	// At returns the value at rpm (rev/min) and map (kPa).
	At(rpm, mapKPa float64) float64
}

// SurfaceFunc adapts a plain function to Surface.
type SurfaceFunc func(rpm, mapKPa float64) float64

// At calls f.
func (f SurfaceFunc) At(rpm, mapKPa float64) float64 { return f(rpm, mapKPa) }
