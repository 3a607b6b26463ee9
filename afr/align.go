package afr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/dynoai/dynoai/dyno"
)

// Delay is the wideband transport delay: Fixed + PerRPM/rpm seconds, capped
// by Max. It is dyno.TransportDelay, so the simulator's delay can be undone
// with the same value.
type Delay = dyno.TransportDelay

// DefaultMaxBuffer is the number of samples an Aligner holds at most when
// AlignOptions.MaxBuffer is zero: 2^16, a 10 s delay at 6.5 kHz.
const DefaultMaxBuffer = 1 << 16

// ErrAlign is wrapped by the errors an Aligner adds to its source's: time
// going backwards, or a delay window longer than MaxBuffer samples.
var ErrAlign = errors.New("afr: align")

// AlignOptions tune an Aligner. The zero value is usable.
type AlignOptions struct {
	// MaxBuffer bounds the samples held while waiting for the exhaust of
	// the oldest one to reach the sensor; zero means DefaultMaxBuffer.
	// Memory is about Delay × sample rate samples, whatever the log's
	// length.
	MaxBuffer int
}

// Aligner is a dyno.Source that moves each wideband reading (the AFR and
// Lambda channels of every cylinder) back to the sample whose combustion it
// measured. Every other channel, AFRCommanded included, stays where it was.
//
// A reading logged at time t with engine speed rpm measured the exhaust made
// at p = t − delay.At(rpm). For the sample at time s the Aligner finds the
// two consecutive readings whose p bracket s and interpolates linearly in p
// between them, per cylinder and channel; when one of the two is Missing or
// the Sentinel it takes the nearer one in p as it is. This handles irregular
// sample times. The last samples of a log, whose exhaust the log ended
// before measuring, get Missing AFR and Lambda: the stream keeps its length.
//
// An Aligner holds a ring of the samples between s and s + the largest
// delay; Next allocates nothing once the ring has grown to that window.
type Aligner struct {
	src   dyno.Source
	delay Delay
	max   int

	ring []dyno.Sample
	prod []time.Duration // production time p of ring[k]
	head int             // ring index of the oldest unemitted sample
	n    int             // samples in the ring
	eof  bool
	err  error

	// prev is the reading just before head (already emitted), the lower
	// bracket when head's own reading is past s.
	prev     dyno.Sample
	prevProd time.Duration
	havePrev bool
	lastTime time.Duration
	count    int
}

// Align returns src with its wideband channels moved back by delay. See
// Aligner.
func Align(src dyno.Source, delay Delay) *Aligner {
	return AlignWith(src, delay, AlignOptions{})
}

// AlignWith is Align with options.
func AlignWith(src dyno.Source, delay Delay, opt AlignOptions) *Aligner {
	a := &Aligner{src: src, delay: delay, max: opt.MaxBuffer}
	if a.max <= 0 {
		a.max = DefaultMaxBuffer
	}
	if err := delay.Validate(); err != nil {
		a.err = fmt.Errorf("%w: %w", ErrAlign, err)
	}
	return a
}

// Layout returns the source's layout.
func (a *Aligner) Layout() dyno.Layout { return a.src.Layout() }

// Next fills s with the next sample, its AFR and Lambda taken from the
// readings its exhaust produced.
func (a *Aligner) Next(ctx context.Context, s *dyno.Sample) error {
	if a.err != nil {
		return a.err
	}
	for {
		if a.n > 0 {
			if ok, j := a.ready(); ok {
				a.emit(s, j)
				return nil
			}
		}
		if a.eof {
			if a.n == 0 {
				return io.EOF
			}
			a.emit(s, -1)
			return nil
		}
		if err := a.read(ctx); err != nil {
			a.err = err
			return err
		}
	}
}

// ready reports whether the head sample can be emitted, and the offset from
// head of the first reading whose production time is at or after it (-1
// when no buffered reading is).
func (a *Aligner) ready() (bool, int) {
	h := &a.ring[a.head]
	for k := 0; k < a.n; k++ {
		if a.prod[(a.head+k)%len(a.ring)] >= h.Time {
			return true, k
		}
	}
	// Production times lag reading times by at most the delay's bound, so
	// once the newest reading is that far past s nothing later can bracket.
	last := a.ring[(a.head+a.n-1)%len(a.ring)].Time
	if last-h.Time > a.delay.Bound() {
		return true, -1
	}
	return false, -1
}

func (a *Aligner) read(ctx context.Context) error {
	if a.n == len(a.ring) {
		if a.n >= a.max {
			return fmt.Errorf("%w: more than %d samples within one delay window at sample %d (time %v); is time advancing?",
				ErrAlign, a.max, a.count, a.lastTime)
		}
		a.grow()
	}
	k := (a.head + a.n) % len(a.ring)
	err := a.src.Next(ctx, &a.ring[k])
	if err == io.EOF {
		a.eof = true
		return nil
	}
	if err != nil {
		return err
	}
	t := a.ring[k].Time
	if a.count > 0 && t < a.lastTime {
		return fmt.Errorf("%w: sample %d: time %v is before the previous sample's %v", ErrAlign, a.count, t, a.lastTime)
	}
	a.lastTime = t
	a.count++
	a.prod[k] = t - a.delay.At(a.ring[k].RPM)
	a.n++
	return nil
}

func (a *Aligner) grow() {
	size := max(16, 2*len(a.ring))
	size = min(size, a.max)
	ring := make([]dyno.Sample, size)
	prod := make([]time.Duration, size)
	for k := 0; k < a.n; k++ {
		ring[k] = a.ring[(a.head+k)%len(a.ring)]
		prod[k] = a.prod[(a.head+k)%len(a.ring)]
	}
	a.ring, a.prod, a.head = ring, prod, 0
}

// emit writes the head sample to s with its wideband channels taken from
// the readings around offset j (j < 0: none, Missing), then pops it.
func (a *Aligner) emit(s *dyno.Sample, j int) {
	h := a.head
	*s = a.ring[h]
	switch {
	case j < 0:
		s.AFR = dyno.MissingPerCylinder()
		s.Lambda = dyno.MissingPerCylinder()
	default:
		hiK := (h + j) % len(a.ring)
		hi, pHi := &a.ring[hiK], a.prod[hiK]
		var lo *dyno.Sample
		var pLo time.Duration
		if j > 0 {
			loK := (h + j - 1) % len(a.ring)
			lo, pLo = &a.ring[loK], a.prod[loK]
		} else if a.havePrev {
			lo, pLo = &a.prev, a.prevProd
		}
		if lo == nil || pHi == s.Time || pHi <= pLo {
			s.AFR, s.Lambda = hi.AFR, hi.Lambda
		} else {
			w := float64(s.Time-pLo) / float64(pHi-pLo)
			s.AFR = mix(&lo.AFR, &hi.AFR, w)
			s.Lambda = mix(&lo.Lambda, &hi.Lambda, w)
		}
	}
	a.prev, a.prevProd, a.havePrev = a.ring[h], a.prod[h], true
	a.head = (h + 1) % len(a.ring)
	a.n--
}

// mix interpolates lo and hi at weight w in [0, 1] per slot, taking the
// nearer value as it is when either is Missing or the Sentinel.
func mix(lo, hi *dyno.PerCylinder, w float64) dyno.PerCylinder {
	var out dyno.PerCylinder
	for c := range out {
		a, b := lo[c], hi[c]
		switch {
		case dyno.Has(a) && dyno.Has(b) && !IsSentinel(a) && !IsSentinel(b):
			out[c] = a + (b-a)*w
		case w < 0.5:
			out[c] = a
		default:
			out[c] = b
		}
	}
	return out
}

// AlignSamples returns a copy of samples with their wideband channels moved
// back by delay, as Align does for a stream.
func AlignSamples(samples []dyno.Sample, delay Delay) ([]dyno.Sample, error) {
	a := AlignWith(dyno.NewSliceSource(dyno.Layout{}, samples), delay, AlignOptions{MaxBuffer: len(samples) + 1})
	out := make([]dyno.Sample, 0, len(samples))
	for {
		var s dyno.Sample
		err := a.Next(context.Background(), &s)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
}
