package afr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/dynoai/dynoai/dyno"
)

// Defaults of AutoAlignOptions. The prefix is long because the delay
// shows where the log passes through the same cells in different ways (a
// sweep down a row an up sweep went through, a hold), which a dyno session
// does minutes apart: the first two minutes of one, a pull and the first
// sweeps up, say nothing about the delay. MaxSamples bounds the memory,
// at 416 bytes a sample about 14 MB.
const (
	DefaultAutoPrefix        = 10 * time.Minute
	DefaultAutoMaxSamples    = 1 << 15
	DefaultAutoMinConfidence = 0.3
)

// errNotStarted is what AutoAligner.Estimate returns before the first Next.
var errNotStarted = fmt.Errorf("%w: no estimate before the first Next", ErrEstimate)

// AutoAlignOptions configure an AutoAligner. The zero value is usable.
type AutoAlignOptions struct {
	// Estimate configures the estimator.
	Estimate EstimateOptions
	// Prefix is how much of the log (by time) the estimate reads before
	// the aligned stream starts; zero means DefaultAutoPrefix.
	Prefix time.Duration
	// MaxSamples bounds the samples held for the estimate, whatever the
	// Prefix; zero means DefaultAutoMaxSamples.
	MaxSamples int
	// MinConfidence is the confidence an estimate needs to be used; zero
	// means DefaultAutoMinConfidence. Below it (or when the log holds no
	// signal) Fallback is used.
	MinConfidence float64
	// Fallback is the delay used when the estimate is not good enough; the
	// zero value means no shift.
	Fallback Delay
	// Align configures the Aligner that undoes the delay.
	Align AlignOptions
	// Lag is the part of a learned delay that is the sensor's first-order
	// lag, undone elsewhere (a lag delays a ramp by its time constant, so
	// the estimate includes it): the Aligner undoes the estimate minus
	// Lag. It does not apply to Fallback. Zero means none.
	Lag time.Duration
}

// AutoAligner is a dyno.Source that learns the wideband delay from the log
// itself and undoes it: on the first Next it reads a bounded prefix of its
// source into memory, estimates the delay from it with a DelayEstimator,
// then streams the prefix and the rest of the source through Align with
// that delay. Memory is the prefix (at most MaxSamples samples, 416
// bytes each) plus the estimator's cells and the Aligner's window.
type AutoAligner struct {
	src dyno.Source
	opt AutoAlignOptions
	// buf holds the prefix in chunks of prefixChunk samples, so that it
	// grows without copying and is released chunk by chunk as it is
	// replayed; n is the samples in it, pos the next one to replay.
	buf    [][]dyno.Sample
	n, pos int
	srcEOF bool

	started bool
	est     DelayEstimate
	estErr  error
	used    Delay
	inner   *Aligner
	err     error
}

// AutoAlign returns src with its wideband channels moved back by the delay
// estimated from src's first samples. See AutoAligner.
func AutoAlign(src dyno.Source, opt AutoAlignOptions) *AutoAligner {
	if opt.Prefix <= 0 {
		opt.Prefix = DefaultAutoPrefix
	}
	if opt.MaxSamples <= 0 {
		opt.MaxSamples = DefaultAutoMaxSamples
	}
	if opt.MinConfidence == 0 {
		opt.MinConfidence = DefaultAutoMinConfidence
	}
	return &AutoAligner{src: src, opt: opt, estErr: errNotStarted}
}

// Layout returns the source's layout.
func (a *AutoAligner) Layout() dyno.Layout { return a.src.Layout() }

// Estimate returns the estimate the AutoAligner made and the error that
// kept it from making one (wrapping ErrNoDelaySignal when the prefix held
// no signal). Before the first Next it returns an error wrapping
// ErrEstimate.
func (a *AutoAligner) Estimate() (DelayEstimate, error) { return a.est, a.estErr }

// Delay returns the delay being undone: the estimate, or Fallback when the
// estimate failed or was below MinConfidence. It is Fallback before the
// first Next.
func (a *AutoAligner) Delay() Delay {
	if !a.started {
		return a.opt.Fallback
	}
	return a.used
}

// Next fills s with the next aligned sample.
func (a *AutoAligner) Next(ctx context.Context, s *dyno.Sample) error {
	if a.err != nil {
		return a.err
	}
	if !a.started {
		if err := a.start(ctx); err != nil {
			a.err = err
			return err
		}
	}
	return a.inner.Next(ctx, s)
}

func (a *AutoAligner) start(ctx context.Context) error {
	a.started = true
	est, err := NewDelayEstimator(a.opt.Estimate)
	if err != nil {
		a.estErr = err
		return err
	}
	s := dyno.NewSample()
	var t0 time.Duration
	for a.n < a.opt.MaxSamples {
		err := a.src.Next(ctx, &s)
		if errors.Is(err, io.EOF) {
			a.srcEOF = true
			break
		}
		if err != nil {
			return err
		}
		if a.n == 0 {
			t0 = s.Time
		}
		if err := est.Add(&s); err != nil {
			return err
		}
		if a.n%prefixChunk == 0 {
			a.buf = append(a.buf, make([]dyno.Sample, 0, min(prefixChunk, a.opt.MaxSamples-a.n)))
		}
		a.buf[len(a.buf)-1] = append(a.buf[len(a.buf)-1], s)
		a.n++
		if s.Time-t0 >= a.opt.Prefix {
			break
		}
	}
	a.used = a.opt.Fallback
	a.est, a.estErr = est.Estimate()
	if a.estErr == nil && a.est.Confidence >= a.opt.MinConfidence {
		a.used = a.est.Delay
		if a.opt.Lag > 0 {
			a.used.Fixed = max(0, a.used.Fixed-a.opt.Lag)
			if a.used.Max > 0 {
				a.used.Max = max(a.used.Fixed, a.used.Max-a.opt.Lag)
			}
		}
	}
	a.inner = AlignWith(replay{a}, a.used, a.opt.Align)
	return nil
}

// prefixChunk is the number of prefix samples an AutoAligner allocates at
// once (416 KB).
const prefixChunk = 1024

// replay serves the buffered prefix, then the rest of the source.
type replay struct{ a *AutoAligner }

func (r replay) Layout() dyno.Layout { return r.a.src.Layout() }

func (r replay) Next(ctx context.Context, s *dyno.Sample) error {
	a := r.a
	if a.pos < a.n {
		c := a.pos / prefixChunk
		*s = a.buf[c][a.pos%prefixChunk]
		a.pos++
		if a.pos%prefixChunk == 0 || a.pos == a.n {
			a.buf[c] = nil // release the chunk replayed
		}
		if a.pos == a.n {
			a.buf, a.n, a.pos = nil, 0, 0
		}
		return nil
	}
	if a.srcEOF {
		return io.EOF
	}
	return a.src.Next(ctx, s)
}
