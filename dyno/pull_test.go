package dyno_test

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynolog"
	"github.com/dynoai/dynoai/internal/shareddata"
)

func TestFindPeaksSpecVector(t *testing.T) {
	// jetstream-dyno spec §5.2.
	mk := func(rpm, hp, tq float64) dyno.Sample {
		s := dyno.NewSample()
		s.RPM, s.Power, s.Torque = rpm, hp, tq
		return s
	}
	p := dyno.FindPeaks([]dyno.Sample{mk(2000, 50, 120), mk(3000, 75, 110), mk(4000, 72, 105)})
	assert.Equal(t, 75.0, p.Power)
	assert.Equal(t, 3000.0, p.PowerRPM)
	assert.Equal(t, 120.0, p.Torque)
	assert.Equal(t, 2000.0, p.TorqueRPM)
	// Ties: the first wins. Missing values are ignored.
	p = dyno.FindPeaks([]dyno.Sample{mk(3000, 60, dyno.Missing), mk(4000, 70, 92), mk(4500, 70, 105), mk(5000, dyno.Missing, 105)})
	assert.Equal(t, 4000.0, p.PowerRPM)
	assert.Equal(t, 4500.0, p.TorqueRPM)
	p = dyno.FindPeaks(nil)
	assert.False(t, dyno.Has(p.Power))
	assert.False(t, dyno.Has(p.TorqueRPM))
}

// synthLog builds a 50 Hz log: idle, pull 1 (2000→6000 rpm), decel, pull 2
// with a 0.1 s throttle dropout, decel, a 1 s WOT blip (too short), decel,
// pull 3 to the redline. Torque peaks at 4000 rpm.
func synthLog(noise float64, seed uint64) (dyno.Layout, []dyno.Sample) {
	rng := rand.New(rand.NewPCG(seed, 7))
	const dt = 20 * time.Millisecond
	var out []dyno.Sample
	t := time.Duration(0)
	rpm := 1000.0
	add := func(tps float64) {
		s := dyno.NewSample()
		s.Time = t
		s.RPM = rpm + rng.NormFloat64()*noise
		s.TPS = tps
		s.MAP = 30 + tps*0.7
		s.Torque = 100 - 5*math.Pow((rpm-4000)/1000, 2)
		s.Power = s.Torque * rpm / 5252
		out = append(out, s)
		t += dt
	}
	hold := func(d time.Duration, tps float64) {
		for end := t + d; t < end; {
			add(tps)
		}
	}
	ramp := func(to, rate, tps float64, dropoutAt float64) {
		dropped := false
		for (rate > 0 && rpm < to) || (rate < 0 && rpm > to) {
			p := tps
			if dropoutAt > 0 && rpm >= dropoutAt && !dropped {
				for i := 0; i < 5; i++ { // 0.1 s at 40 %
					add(40)
					rpm += rate * dt.Seconds()
				}
				dropped = true
				continue
			}
			add(p)
			rpm += rate * dt.Seconds()
		}
	}
	hold(2*time.Second, 2)
	rpm = 2000
	ramp(6000, 800, 100, 0) // pull 1: 5 s
	ramp(1800, -1500, 0, 0)
	ramp(6000, 800, 100, 4000) // pull 2 with a dropout at 4000 rpm
	ramp(1800, -1500, 0, 0)
	ramp(2600, 800, 100, 0) // blip: 1 s
	ramp(1800, -1500, 0, 0)
	ramp(7000, 800, 100, 0) // pull 3: ends at 0.98 × 6500
	hold(time.Second, 0)
	return dyno.Layout{Name: "synth", Channels: dyno.NewChannelSet(dyno.ChanTime, dyno.ChanRPM, dyno.ChanTPS,
		dyno.ChanMAP, dyno.ChanTorque, dyno.ChanPower)}, out
}

func TestDetectPullsSynthetic(t *testing.T) {
	for _, noise := range []float64{0, 15} {
		layout, samples := synthLog(noise, 1)
		pulls, err := dyno.DetectPulls(context.Background(), dyno.NewSliceSource(layout, samples), dyno.PullOptions{Redline: 6500})
		require.NoError(t, err)
		require.Len(t, pulls, 3, "noise %v", noise)
		for i, p := range pulls {
			assert.Equal(t, i+1, p.Number)
			assert.Equal(t, p.Samples, int(p.LastIndex-p.FirstIndex+1))
			seg := dyno.PullSamples(samples, p)
			require.Len(t, seg, p.Samples)
			assert.Equal(t, p.Start, seg[0].Time)
			assert.Equal(t, p.End, seg[len(seg)-1].Time)
			for _, s := range seg {
				assert.GreaterOrEqual(t, s.RPM, p.MinRPM)
				assert.LessOrEqual(t, s.RPM, p.MaxRPM)
			}
			// Torque peaks at 4000 rpm (within the sweep's 16 rpm step and the noise).
			assert.InDelta(t, 100, p.Peaks.Torque, 0.01)
			assert.InDelta(t, 4000, p.Peaks.TorqueRPM, 20+4*noise)
			assert.Equal(t, dyno.FindPeaks(seg), p.Peaks)
		}
		// Pull 1 starts 2 s in, trimmed by 0.5 s: 2000 + 0.5 × 800 rpm.
		assert.Equal(t, 2500*time.Millisecond, pulls[0].Start)
		assert.InDelta(t, 2400, pulls[0].StartRPM, 1+4*noise)
		assert.InDelta(t, 6000, pulls[0].MaxRPM, 20+4*noise)
		// Pull 2 bridges its dropout: it still reaches 6000.
		assert.InDelta(t, 6000, pulls[1].MaxRPM, 20+4*noise)
		// Pull 3 ends at the redline rule.
		assert.GreaterOrEqual(t, pulls[2].EndRPM, 0.98*6500)
		assert.Less(t, pulls[2].MaxRPM, 6500+4*noise)
	}
}

func TestDetectPullsOptions(t *testing.T) {
	layout, samples := synthLog(0, 1)
	// A long dropout limit of 0 bridges nothing shorter than the default; a
	// minimum duration above every pull keeps none.
	pulls, err := dyno.DetectPulls(context.Background(), dyno.NewSliceSource(layout, samples),
		dyno.PullOptions{MinDuration: time.Minute})
	require.NoError(t, err)
	assert.Empty(t, pulls)
	// Without the trim and with a short minimum, the blip counts too.
	pulls, err = dyno.DetectPulls(context.Background(), dyno.NewSliceSource(layout, samples),
		dyno.PullOptions{MinDuration: 500 * time.Millisecond, MinRPMSpan: 500, Trim: -1})
	require.NoError(t, err)
	require.Len(t, pulls, 4)
	assert.Equal(t, 2*time.Second, pulls[0].Start)
	// A shorter dropout limit splits pull 2 at its dropout (the halves are
	// each long enough).
	pulls, err = dyno.DetectPulls(context.Background(), dyno.NewSliceSource(layout, samples),
		dyno.PullOptions{MaxDropout: 50 * time.Millisecond, MinDuration: time.Second})
	require.NoError(t, err)
	assert.Len(t, pulls, 4)
}

func TestDetectPullsNoTime(t *testing.T) {
	layout, samples := synthLog(0, 1)
	layout.Channels = dyno.NewChannelSet(dyno.ChanRPM, dyno.ChanTPS)
	pulls, err := dyno.DetectPulls(context.Background(), dyno.NewSliceSource(layout, samples),
		dyno.PullOptions{Period: 20 * time.Millisecond})
	require.NoError(t, err)
	assert.Len(t, pulls, 3)
}

func TestDetectPullsRealLogs(t *testing.T) {
	dir := shareddata.Dir(t, "reallogs")
	// The DynoAI bike's best 4th-gear pull: 95.16 hp at 5348 rpm per the
	// repository's report.
	r, err := dynolog.Open(filepath.Join(dir, "winpep8__rob9206__DynoAI_3__PV_Logfile_5.csv_33.txt"), dynolog.ReadOptions{})
	require.NoError(t, err)
	defer r.Close()
	pulls, err := dyno.DetectPulls(context.Background(), r, dyno.PullOptions{})
	require.NoError(t, err)
	require.Len(t, pulls, 1)
	p := pulls[0]
	assert.Equal(t, 95.159, p.Peaks.Power)
	assert.Equal(t, 5348.0, p.Peaks.PowerRPM)
	assert.Equal(t, 2500*time.Millisecond, p.Peaks.PowerTime)
	assert.Equal(t, 6038.0, p.MaxRPM)
	assert.GreaterOrEqual(t, p.Duration(), 2*time.Second)

	// The 6th-gear log's WOT burst lasts 0.65 s: no pull.
	r2, err := dynolog.Open(filepath.Join(dir, "winpep8__rob9206__DynoAI_3__6th_gear_load_then_wot_10.txt"), dynolog.ReadOptions{})
	require.NoError(t, err)
	defer r2.Close()
	pulls, err = dyno.DetectPulls(context.Background(), r2, dyno.PullOptions{})
	require.NoError(t, err)
	assert.Empty(t, pulls)

	// The race car's dyno-only run has no TPS or MAP: WOT from power.
	r3, err := dynolog.Open(filepath.Join(dir, "winpep8__bgriggs__wrl-dyno-check__134power.csv"),
		dynolog.ReadOptions{Required: []dyno.Channel{dyno.ChanRPM}})
	require.NoError(t, err)
	defer r3.Close()
	pulls, err = dyno.DetectPulls(context.Background(), r3, dyno.PullOptions{
		IsWOT: func(s *dyno.Sample) bool { return s.Power > 20 }})
	require.NoError(t, err)
	require.Len(t, pulls, 1)
	assert.Greater(t, pulls[0].Peaks.Power, 270.0)
}
