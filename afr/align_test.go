package afr

import (
	"context"
	"errors"
	"io"
	"math"
	"testing"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stepLog is a synthetic log: TPS steps from 10 to 90 % at stepAt and the
// mixture the engine makes steps from 14.5 to 12.5 with it, but the
// wideband sees it lag seconds later. Sample times are irregular when
// jitter is set.
func stepLog(n int, dt, stepAt, lag time.Duration, jitter bool) []dyno.Sample {
	out := make([]dyno.Sample, n)
	var t time.Duration
	for i := range out {
		s := dyno.NewSample()
		s.Time = t
		s.RPM = 3000
		s.TPS = 10
		if t >= stepAt {
			s.TPS = 90
		}
		s.AFR[dyno.Front] = 14.5
		s.AFR[dyno.Rear] = 14.6
		s.Lambda[dyno.Front] = 14.5 / 14.7
		if t >= stepAt+lag {
			s.AFR[dyno.Front] = 12.5
			s.AFR[dyno.Rear] = 12.6
			s.Lambda[dyno.Front] = 12.5 / 14.7
		}
		s.AFRCommanded[dyno.Front] = 13
		out[i] = s
		step := dt
		if jitter && i%3 == 1 {
			step = dt + dt/2
		}
		t += step
	}
	return out
}

func TestAlignStep(t *testing.T) {
	const dt = 10 * time.Millisecond
	lag := 120 * time.Millisecond
	in := stepLog(200, dt, 500*time.Millisecond, lag, false)
	out, err := AlignSamples(in, Delay{Fixed: lag})
	require.NoError(t, err)
	require.Len(t, out, len(in))
	for i, s := range out {
		assert.Equal(t, in[i].Time, s.Time)
		assert.Equal(t, in[i].TPS, s.TPS, "engine channels stay")
		assert.Equal(t, 13.0, s.AFRCommanded[dyno.Front], "commanded AFR is the ECU's, not shifted")
		if s.Time+lag > in[len(in)-1].Time {
			assert.False(t, dyno.Has(s.AFR[dyno.Front]), "tail past the log has no reading: %v", s.Time)
			continue
		}
		want, wantR := 14.5, 14.6
		if s.TPS == 90 {
			want, wantR = 12.5, 12.6
		}
		assert.InDelta(t, want, s.AFR[dyno.Front], 1e-12, "t=%v", s.Time)
		assert.InDelta(t, wantR, s.AFR[dyno.Rear], 1e-12, "t=%v", s.Time)
		assert.InDelta(t, want/14.7, s.Lambda[dyno.Front], 1e-12, "t=%v", s.Time)
	}
}

func TestAlignIrregularInterpolates(t *testing.T) {
	lag := 100 * time.Millisecond
	in := stepLog(120, 10*time.Millisecond, 400*time.Millisecond, lag, true)
	// A ramp instead of a step shows the interpolation: AFR = 10 + t/s at
	// the sensor, so the aligned value at s is 10 + (s + lag)/s.
	for i := range in {
		in[i].AFR[dyno.Front] = 10 + in[i].Time.Seconds()
	}
	out, err := AlignSamples(in, Delay{Fixed: lag})
	require.NoError(t, err)
	last := in[len(in)-1].Time
	for _, s := range out {
		if s.Time+lag > last {
			continue
		}
		assert.InDelta(t, 10+(s.Time+lag).Seconds(), s.AFR[dyno.Front], 1e-9, "t=%v", s.Time)
	}
}

func TestAlignRPMDependent(t *testing.T) {
	d := Delay{Fixed: 20 * time.Millisecond, PerRPM: 120} // 80 ms at 2000, 40 ms at 6000
	assert.Equal(t, 80*time.Millisecond, d.At(2000))
	assert.Equal(t, 40*time.Millisecond, d.At(6000))
	assert.Equal(t, 420*time.Millisecond, d.At(math.NaN()), "missing rpm uses the 300 rpm floor")
	assert.Equal(t, 50*time.Millisecond, Delay{Fixed: 20 * time.Millisecond, PerRPM: 120, Max: 50 * time.Millisecond}.At(1000))
	for _, rpm := range []float64{2000, 6000} {
		in := stepLog(100, 5*time.Millisecond, 200*time.Millisecond, d.At(rpm), false)
		for i := range in {
			in[i].RPM = rpm
		}
		out, err := AlignSamples(in, d)
		require.NoError(t, err)
		for _, s := range out[:60] {
			want := 14.5
			if s.TPS == 90 {
				want = 12.5
			}
			assert.InDelta(t, want, s.AFR[dyno.Front], 1e-12, "rpm %v t=%v", rpm, s.Time)
		}
	}
}

func TestAlignZeroDelayIsIdentity(t *testing.T) {
	in := stepLog(50, 10*time.Millisecond, 200*time.Millisecond, 0, true)
	out, err := AlignSamples(in, Delay{})
	require.NoError(t, err)
	for i := range in {
		assert.Equal(t, in[i].AFR[dyno.Front], out[i].AFR[dyno.Front])
	}
}

func TestAlignMissingAndSentinel(t *testing.T) {
	lag := 15 * time.Millisecond // half-way between two 10 ms readings
	in := stepLog(10, 10*time.Millisecond, time.Hour, 0, false)
	in[3].AFR[dyno.Front] = Sentinel
	in[6].AFR[dyno.Front] = dyno.Missing
	in[2].AFR[dyno.Front] = 14.0
	out, err := AlignSamples(in, Delay{Fixed: lag})
	require.NoError(t, err)
	// Sample 1 (10 ms) reads at 25 ms, between 14.0 at 20 ms and the
	// sentinel at 30: no interpolation, the later (w = 0.5) is taken.
	assert.True(t, IsSentinel(out[1].AFR[dyno.Front]))
	assert.InDelta(t, 14.5, out[3].AFR[dyno.Front], 1e-12, "between 40 and 50 ms: both 14.5")
	assert.False(t, dyno.Has(out[4].AFR[dyno.Front]), "between 50 and a Missing 60 ms: nearer-or-later is Missing")
	assert.InDelta(t, 14.25, out[0].AFR[dyno.Front], 1e-12, "15 ms: between 14.5 at 10 and 14.0 at 20")
}

type errSource struct {
	*dyno.SliceSource
	after int
	err   error
}

func (e *errSource) Next(ctx context.Context, s *dyno.Sample) error {
	if e.after == 0 {
		return e.err
	}
	e.after--
	return e.SliceSource.Next(ctx, s)
}

func TestAlignErrors(t *testing.T) {
	in := stepLog(10, 10*time.Millisecond, time.Hour, 0, false)
	in[5].Time = 0
	_, err := AlignSamples(in, Delay{Fixed: 5 * time.Millisecond})
	require.ErrorIs(t, err, ErrAlign)
	assert.Contains(t, err.Error(), "sample 5")

	stuck := stepLog(100, 0, time.Hour, 0, false) // time never advances
	a := AlignWith(dyno.NewSliceSource(dyno.Layout{}, stuck), Delay{Fixed: time.Second}, AlignOptions{MaxBuffer: 32})
	var s dyno.Sample
	for i := 0; i < 32; i++ {
		if err = a.Next(context.Background(), &s); err != nil {
			break
		}
	}
	require.ErrorIs(t, err, ErrAlign)
	assert.Contains(t, err.Error(), "more than 32 samples")

	boom := errors.New("boom")
	src := &errSource{SliceSource: dyno.NewSliceSource(dyno.Layout{}, stepLog(10, 10*time.Millisecond, time.Hour, 0, false)), after: 3, err: boom}
	_, err = dyno.Collect(context.Background(), Align(src, Delay{Fixed: 50 * time.Millisecond}))
	assert.ErrorIs(t, err, boom)

	_, err = AlignSamples(in, Delay{Fixed: -time.Second})
	assert.ErrorIs(t, err, ErrAlign)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = Align(dyno.NewSliceSource(dyno.Layout{}, in), Delay{}).Next(ctx, &s)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestAlignStreamsWithBoundedMemory(t *testing.T) {
	const n = 20000
	in := stepLog(n, 10*time.Millisecond, time.Hour, 0, false)
	a := Align(dyno.NewSliceSource(dyno.Layout{Name: "x"}, in), Delay{Fixed: 200 * time.Millisecond})
	assert.Equal(t, "x", a.Layout().Name)
	var s dyno.Sample
	count := 0
	for {
		err := a.Next(context.Background(), &s)
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		count++
	}
	assert.Equal(t, n, count)
	assert.LessOrEqual(t, len(a.ring), 64, "ring holds the delay window (21 samples), not the log")
}

func BenchmarkAlign(b *testing.B) {
	in := stepLog(10000, 10*time.Millisecond, time.Hour, 0, false)
	b.ReportAllocs()
	var s dyno.Sample
	ctx := context.Background()
	for b.Loop() {
		a := Align(dyno.NewSliceSource(dyno.Layout{}, in), Delay{Fixed: 100 * time.Millisecond, PerRPM: 30})
		for a.Next(ctx, &s) == nil {
		}
	}
	b.ReportMetric(float64(len(in)*b.N)/b.Elapsed().Seconds(), "samples/s")
}

// FuzzAlign feeds irregular, possibly backwards, time steps, odd AFR values
// and delays: Align must never panic, keep the stream's length when time
// advances, and report backwards time as ErrAlign.
func FuzzAlign(f *testing.F) {
	f.Add([]byte{10, 10, 15, 5, 0, 30}, uint16(100), uint16(30), uint16(2000))
	f.Add([]byte{1, 2, 3}, uint16(0), uint16(0), uint16(0))
	f.Add([]byte{0, 0, 0, 0}, uint16(5), uint16(500), uint16(65535))
	f.Fuzz(func(t *testing.T, steps []byte, fixedMS, perRPM, rpm uint16) {
		if len(steps) > 2000 {
			return
		}
		in := make([]dyno.Sample, len(steps))
		var tm time.Duration
		backwards := false
		for i, b := range steps {
			s := dyno.NewSample()
			if b == 255 && i > 0 {
				tm -= time.Millisecond
				backwards = true
			} else {
				tm += time.Duration(b) * time.Millisecond
			}
			s.Time = tm
			s.RPM = float64(rpm)
			switch b % 4 {
			case 0:
				s.AFR[0] = Sentinel
			case 1:
				s.AFR[0] = float64(b) / 10
			}
			in[i] = s
		}
		d := Delay{Fixed: time.Duration(fixedMS) * time.Millisecond, PerRPM: float64(perRPM)}
		if d.Validate() != nil {
			return
		}
		out, err := AlignSamples(in, d)
		if backwards {
			if err != nil && !errors.Is(err, ErrAlign) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("monotonic input failed: %v", err)
		}
		if len(out) != len(in) {
			t.Fatalf("%d samples in, %d out", len(in), len(out))
		}
		for i := range out {
			if out[i].Time != in[i].Time || out[i].RPM != in[i].RPM {
				t.Fatalf("sample %d: engine channels changed", i)
			}
		}
	})
}
