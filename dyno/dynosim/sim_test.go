package dynosim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"testing"
	"time"

	"github.com/dynoai/dynoai/dyno"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// simRun collects every sample of a simulator and its status.
func simRun(t testing.TB, cfg Config) ([]dyno.Sample, []Status) {
	t.Helper()
	sim, err := New(cfg)
	require.NoError(t, err)
	var out []dyno.Sample
	var st []Status
	for {
		var s dyno.Sample
		err := sim.Next(context.Background(), &s)
		if err == io.EOF {
			return out, st
		}
		require.NoError(t, err)
		out = append(out, s)
		st = append(st, sim.Status())
		require.Less(t, len(out), 1_000_000, "plan never ends")
	}
}

func TestBaseTorqueVectors(t *testing.T) {
	// jetstream-dyno spec §3.3, M8-114.
	bt := M8114().BaseTorque()
	for _, tt := range []struct{ rpm, want float64 }{
		{900, 23.951}, {2000, 80.764}, {3000, 115.302}, {3200, 122.000},
		{4000, 119.317}, {5000, 115.544}, {5800, 50.310},
	} {
		assert.InDelta(t, tt.want, bt(tt.rpm), 0.0005, "rpm %v", tt.rpm)
	}
	assert.InDelta(t, 110.0, dyno.PowerFromTorque(bt(5000), 5000), 0.0005)
}

func TestSimDeterministic(t *testing.T) {
	cfg := Config{
		Seed: 7, Noise: TypicalNoise(), SensorLag: 50 * time.Millisecond,
		Delay: dyno.TransportDelay{Fixed: 30 * time.Millisecond, PerRPM: 60},
		Plan:  []Step{PullStep(2000, 4000), HoldStep(3000, 60, time.Second)},
	}
	a, _ := simRun(t, cfg)
	b, _ := simRun(t, cfg)
	require.Equal(t, len(a), len(b))
	for i := range a {
		require.Equal(t, fmt.Sprint(a[i]), fmt.Sprint(b[i]), "sample %d", i)
	}
	cfg.Seed = 8
	c, _ := simRun(t, cfg)
	assert.NotEqual(t, fmt.Sprint(a[100]), fmt.Sprint(c[100]), "another seed, other noise")
}

// The mixture each cylinder burns is target × trueVE / ecuVE: with no noise,
// delay or lag the wideband reads exactly that, front and rear independently.
func TestSimAFRIdentity(t *testing.T) {
	def := DefaultTrueVE(M8114(), 0)
	rpmAx := []float64{1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500, 6000}
	mapAx := []float64{20, 30, 40, 50, 60, 70, 80, 90, 100}
	front, err := PerturbSurface(def[dyno.Front], rpmAx, mapAx, -10, 5, 1)
	require.NoError(t, err)
	rear, err := PerturbSurface(def[dyno.Rear], rpmAx, mapAx, 8, 5, 2)
	require.NoError(t, err)
	cfg := Config{ECUVE: [2]dyno.Surface{front, rear}}
	sim, err := New(cfg)
	require.NoError(t, err)
	samples, _ := simRun(t, cfg)
	require.Greater(t, len(samples), 5000)
	var lean, rich int
	for i, s := range samples {
		for c, ecu := range []dyno.Surface{front, rear} {
			want := sim.TargetAFR().At(s.RPM, s.MAP) * sim.TrueVE(c).At(s.RPM, s.MAP) / ecu.At(s.RPM, s.MAP)
			require.InDelta(t, want, s.AFR[c], 1e-9*want, "sample %d cylinder %d", i, c)
			require.InDelta(t, s.AFR[c]/14.7, s.Lambda[c], 1e-12)
		}
		if s.AFR[dyno.Front] > s.AFRCommanded[dyno.Front] {
			lean++
		}
		if s.AFR[dyno.Rear] < s.AFRCommanded[dyno.Rear] {
			rich++
		}
		require.False(t, dyno.Has(s.AFR[2]), "only two cylinders")
	}
	// An ECU VE 10 % low under-fuels the front; 8 % high over-fuels the rear.
	assert.Greater(t, lean, len(samples)*9/10)
	assert.Greater(t, rich, len(samples)*9/10)
}

func TestSimPerfectTune(t *testing.T) {
	samples, _ := simRun(t, Config{Plan: []Step{SweepStep(1500, 5500, 50, 1000)}})
	for _, s := range samples {
		require.InDelta(t, s.AFRCommanded[dyno.Front], s.AFR[dyno.Front], 1e-12)
		require.InDelta(t, s.AFRCommanded[dyno.Rear], s.AFR[dyno.Rear], 1e-12)
	}
}

// mapStepPlan holds 3000 rpm at 40 kPa, then at 90 kPa: the target AFR
// steps with MAP.
var mapStepPlan = []Step{HoldStep(3000, 40, 2*time.Second), {Kind: StepHold, RPM: 3000, MAP: 90, Duration: 2 * time.Second}}

// crossing returns the first time after from at which v(i) crosses mid.
func crossing(samples []dyno.Sample, from time.Duration, v func(*dyno.Sample) float64, mid float64) time.Duration {
	for i := 1; i < len(samples); i++ {
		if samples[i].Time < from {
			continue
		}
		a, b := v(&samples[i-1]), v(&samples[i])
		if (a-mid)*(b-mid) <= 0 && a != b {
			f := (mid - a) / (b - a)
			return samples[i-1].Time + time.Duration(f*float64(samples[i].Time-samples[i-1].Time))
		}
	}
	return -1
}

func TestSimTransportDelay(t *testing.T) {
	for _, tt := range []struct {
		name  string
		delay dyno.TransportDelay
		want  time.Duration
	}{
		{"fixed 150ms", dyno.TransportDelay{Fixed: 150 * time.Millisecond}, 150 * time.Millisecond},
		{"rpm dependent 300/rpm at 3000", dyno.TransportDelay{PerRPM: 300}, 100 * time.Millisecond},
		{"fixed 45ms, between steps", dyno.TransportDelay{Fixed: 45 * time.Millisecond}, 45 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base, _ := simRun(t, Config{Plan: mapStepPlan})
			del, st := simRun(t, Config{Plan: mapStepPlan, Delay: tt.delay})
			require.Equal(t, len(base), len(del))
			// The MAP step starts with the second step's settling.
			var from time.Duration
			for i := range st {
				if st[i].Step == 1 {
					from = del[i].Time - 100*time.Millisecond
					break
				}
			}
			mapT := crossing(del, from, func(s *dyno.Sample) float64 { return s.MAP }, 65)
			afrMid := (VirtualECUTargets().At(3000, 40) + VirtualECUTargets().At(3000, 90)) / 2
			afrT := crossing(del, from, func(s *dyno.Sample) float64 { return s.AFR[dyno.Front] }, afrMid)
			baseT := crossing(base, from, func(s *dyno.Sample) float64 { return s.AFR[dyno.Front] }, afrMid)
			require.Positive(t, mapT)
			assert.InDelta(t, float64(tt.want), float64(afrT-mapT), float64(DefaultDT), "AFR step lags the MAP step by the delay")
			assert.InDelta(t, float64(tt.want), float64(afrT-baseT), float64(time.Millisecond), "against the undelayed run")
			assert.InDelta(t, float64(mapT), float64(baseT), float64(DefaultDT), "no delay: AFR moves with MAP")
			// Whole-multiple delays shift the series exactly.
			if k := int(tt.want / DefaultDT); time.Duration(k)*DefaultDT == tt.want {
				for i := k; i < len(del); i++ {
					if st[i].RPM != 3000 {
						continue // the RPM-dependent delay differs while settling
					}
					require.InDelta(t, base[i-k].AFR[dyno.Rear], del[i].AFR[dyno.Rear], 1e-12, "sample %d", i)
				}
			}
		})
	}
}

func TestSimSensorLag(t *testing.T) {
	tau := 100 * time.Millisecond
	lag, st := simRun(t, Config{Plan: mapStepPlan, SensorLag: tau, MAPLag: time.Millisecond, ThrottleRate: 10000})
	// After the step the reading approaches the produced mixture with time
	// constant tau: after 3 tau it is within 5 % of the step.
	i0 := -1
	for i := 1; i < len(st); i++ {
		if st[i].Step == 1 && math.Abs(st[i].ProducedAFR[dyno.Front]-st[i-1].ProducedAFR[dyno.Front]) > 1e-3 {
			i0 = i
			break
		}
	}
	require.Positive(t, i0)
	final := st[len(st)-1].ProducedAFR[dyno.Front]
	step := lag[i0-1].AFR[dyno.Front] - final
	// Remaining fraction n steps after the jump: exp(−(n+1)·dt/tau).
	at := func(d time.Duration) float64 {
		return (lag[i0+int(d/DefaultDT)-1].AFR[dyno.Front] - final) / step
	}
	assert.InDelta(t, math.Exp(-1), at(tau), 0.08, "one time constant")
	assert.Less(t, math.Abs(at(3*tau)), 0.06)
}

func TestSimNoiseStatistics(t *testing.T) {
	const sigma = 0.1
	samples, st := simRun(t, Config{
		Seed: 3, Noise: Noise{AFR: sigma, RPM: 10, MAP: 1, TorquePct: 2},
		Plan: []Step{HoldStep(3500, 70, 60*time.Second)},
	})
	var n, sum, sq, sumR, sqR float64
	for i, s := range samples {
		if st[i].Settling {
			continue
		}
		for c := range 2 {
			e := s.AFR[c] - st[i].ProducedAFR[c]
			sum += e
			sq += e * e
			n++
		}
		e := s.RPM - st[i].RPM
		sumR += e
		sqR += e * e
	}
	require.Greater(t, n, 10000.0)
	mean := sum / n
	sd := math.Sqrt(sq/n - mean*mean)
	assert.InDelta(t, 0, mean, 4*sigma/math.Sqrt(n), "AFR noise is unbiased")
	assert.InDelta(t, sigma, sd, 0.03*sigma, "AFR noise sigma")
	m := n / 2
	assert.InDelta(t, 10, math.Sqrt(sqR/m-(sumR/m)*(sumR/m)), 0.5, "RPM noise sigma")
}

func TestSimPullSweepsRange(t *testing.T) {
	for _, p := range Profiles() {
		t.Run(p.Key, func(t *testing.T) {
			from, to := 2000.0, p.RedlineRPM-200
			samples, st := simRun(t, Config{Profile: p, Plan: []Step{PullStep(from, to)}})
			var run []int
			for i := range st {
				if !st[i].Settling {
					run = append(run, i)
				}
			}
			require.NotEmpty(t, run)
			first, last := samples[run[0]], samples[run[len(run)-1]]
			assert.InDelta(t, from, first.RPM, 50)
			assert.Equal(t, to, last.RPM)
			dur := last.Time - first.Time
			assert.True(t, dur > 5*time.Second && dur < 12*time.Second, "pull lasts %v", dur)
			var peakTQ, peakHP float64
			for k, i := range run {
				if k > 0 {
					require.GreaterOrEqual(t, samples[i].RPM, samples[run[k-1]].RPM, "a pull only accelerates")
				}
				peakTQ = max(peakTQ, samples[i].Torque)
				peakHP = max(peakHP, samples[i].Power)
				require.True(t, dyno.Has(samples[i].AFR[dyno.Front]) && dyno.Has(samples[i].AFR[dyno.Rear]) && finite(samples[i].Torque), "sample %d", i)
			}
			assert.InDelta(t, p.MaxTorque, peakTQ, 0.02*p.MaxTorque)
			assert.InDelta(t, p.MaxHP, peakHP, 0.03*p.MaxHP)
			assert.Equal(t, 100.0, last.TPS)
			assert.Greater(t, last.MAP, 95.0)
		})
	}
}

func TestSimDefaultPlanCoversGrid(t *testing.T) {
	samples, st := simRun(t, Config{})
	dur := samples[len(samples)-1].Time
	assert.True(t, dur > time.Minute && dur < 5*time.Minute, "default plan lasts %v", dur)
	hit := map[[2]int]int{}
	for i, s := range samples {
		if st[i].Settling {
			continue
		}
		r := int(math.Round(s.RPM/500)) * 500
		m := int(math.Round(s.MAP/10)) * 10
		hit[[2]int{r, m}]++
	}
	for r := 1500; r <= 5500; r += 500 {
		for m := 30; m <= 100; m += 10 {
			assert.Positive(t, hit[[2]int{r, m}], "cell %d rpm %d kPa", r, m)
		}
	}
}

func TestSimGridPlanHolds(t *testing.T) {
	rpm := []float64{2000, 4000}
	mp := []float64{35, 65, 95}
	plan := GridPlan(rpm, mp, time.Second)
	require.Len(t, plan, 6)
	assert.Equal(t, 95.0, plan[3].MAP, "serpentine")
	samples, st := simRun(t, Config{Plan: plan})
	seen := 0
	for i, s := range samples {
		if st[i].Settling {
			continue
		}
		p := plan[st[i].Step]
		require.Equal(t, p.RPM, s.RPM)
		require.InDelta(t, p.MAP, s.MAP, 0.5, "step %d at %v", st[i].Step, s.Time)
		seen++
	}
	assert.InDelta(t, 6*100, seen, 12)
}

func TestSimChannels(t *testing.T) {
	knock := dyno.SurfaceFunc(func(rpm, m float64) float64 {
		if m > 80 {
			return 2
		}
		return 0
	})
	sim, err := New(Config{Knock: [2]dyno.Surface{nil, knock}, IATC: 40, ECTC: 100, BaroKPa: 95, Plan: []Step{HoldStep(3000, 90, time.Second)}})
	require.NoError(t, err)
	l := sim.Layout()
	assert.Equal(t, "simulator", l.Format)
	assert.Equal(t, "simulator:m8_114", l.Name)
	assert.Equal(t, 2, l.Cylinders)
	for _, c := range dyno.Channels() {
		assert.Equal(t, c != dyno.ChanLoad, l.Channels.Has(c), c.String())
	}
	samples, err := dyno.Collect(context.Background(), sim)
	require.NoError(t, err)
	s := samples[len(samples)-1]
	assert.Equal(t, 40.0, s.IAT)
	assert.Equal(t, 100.0, s.ECT)
	assert.Equal(t, 95.0, s.Baro)
	assert.Equal(t, 0.0, s.Knock[dyno.Front])
	assert.Equal(t, 2.0, s.Knock[dyno.Rear])
	sp := DefaultSpark()
	assert.InDelta(t, sp[dyno.Front].At(3000, s.MAP), s.Spark[dyno.Front], 1e-12)
	assert.InDelta(t, sp[dyno.Rear].At(3000, s.MAP)-2, s.Spark[dyno.Rear], 1e-12)
	assert.InDelta(t, dyno.PowerFromTorque(s.Torque, s.RPM), s.Power, 1e-9)
	assert.InDelta(t, 1000*4.673*60/5280, s.DrumSpeed, 1e-9)
	// Drum power equals engine power: F·C·rpm_drum/33000 = T·rpm/5252.
	assert.InDelta(t, s.Power, s.DrumForce*DrumCircumferenceFt*1000/33000, 0.01*s.Power)
	assert.Equal(t, StepHold, sim.Status().Kind)
	assert.Equal(t, 0, sim.Status().Step)
	assert.Len(t, sim.Plan(), 1)
	assert.Equal(t, DefaultDT, sim.DT())
	assert.Equal(t, "m8_114", sim.Profile().Key)
	_ = sim.ECUVE(dyno.Front)
}

func TestSimConfigErrors(t *testing.T) {
	pct := DefaultTrueVE(M8114(), 0)
	frac := dyno.SurfaceFunc(func(r, m float64) float64 { return pct[dyno.Front].At(r, m) / 100 })
	for _, tt := range []struct {
		name  string
		cfg   Config
		field string
	}{
		{"dt", Config{DT: time.Microsecond}, "DT"},
		{"baro", Config{BaroKPa: 20}, "BaroKPa"},
		{"iat", Config{IATC: math.NaN()}, "IATC"},
		{"profile", Config{Profile: EngineProfile{Key: "x", IdleRPM: 900}}, "Profile"},
		{"noise", Config{Noise: Noise{AFR: -1}}, "Noise.AFR"},
		{"delay", Config{Delay: dyno.TransportDelay{Fixed: -time.Second}}, "Delay"},
		{"lag", Config{SensorLag: -time.Second}, "SensorLag"},
		{"units", Config{ECUVE: [2]dyno.Surface{frac, nil}}, "ECUVE[front]"},
		{"nan ve", Config{TrueVE: [2]dyno.Surface{nil, dyno.SurfaceFunc(func(r, m float64) float64 { return math.NaN() })}}, "TrueVE[rear]"},
		{"target", Config{TargetAFR: dyno.SurfaceFunc(func(r, m float64) float64 { return 30 })}, "TargetAFR"},
		{"knock", Config{Knock: [2]dyno.Surface{dyno.SurfaceFunc(func(r, m float64) float64 { return -1 }), nil}}, "Knock[front]"},
		{"empty plan", Config{Plan: []Step{}}, "Plan"},
		{"rpm", Config{Plan: []Step{HoldStep(9000, 50, time.Second)}}, "Plan[0].RPM"},
		{"map", Config{Plan: []Step{PullStep(2000, 5000), HoldStep(3000, 120, time.Second)}}, "Plan[1].MAP"},
		{"tps", Config{Plan: []Step{HoldTPSStep(3000, 101, time.Second)}}, "Plan[0].TPS"},
		{"pull down", Config{Plan: []Step{PullStep(5000, 2000)}}, "Plan[0].EndRPM"},
		{"flat sweep", Config{Plan: []Step{SweepStep(3000, 3000, 50, 0)}}, "Plan[0].EndRPM"},
		{"kind", Config{Plan: []Step{{Kind: 9, RPM: 2000, EndRPM: 3000}}}, "Plan[0].Kind"},
		{"duration", Config{Plan: []Step{HoldStep(3000, 50, -time.Second)}}, "Plan[0].Duration"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			require.ErrorIs(t, err, ErrConfig)
			var se *ConfigError
			require.True(t, errors.As(err, &se))
			assert.Equal(t, tt.field, se.Field, err.Error())
		})
	}
	_, err := PerturbSurface(pct[dyno.Front], []float64{2, 1}, []float64{50}, 0, 1, 1)
	assert.ErrorIs(t, err, ErrConfig)
	_, err = ProfileByKey("sportbike_600")
	assert.Error(t, err)
	p, err := ProfileByKey("m8_131")
	require.NoError(t, err)
	assert.Equal(t, M8131(), p)
}

func TestSimContext(t *testing.T) {
	sim, err := New(Config{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var s dyno.Sample
	assert.ErrorIs(t, sim.Next(ctx, &s), context.Canceled)
}

func TestPerturbSurface(t *testing.T) {
	base := dyno.SurfaceFunc(func(r, m float64) float64 { return 80 })
	rpm := []float64{1000, 2000, 3000, 4000, 5000, 6000}
	mp := []float64{20, 40, 60, 80, 100}
	s1, err := PerturbSurface(base, rpm, mp, -10, 5, 42)
	require.NoError(t, err)
	s2, _ := PerturbSurface(base, rpm, mp, -10, 5, 42)
	var sum float64
	for _, r := range rpm {
		for _, m := range mp {
			v := s1.At(r, m)
			assert.Equal(t, v, s2.At(r, m), "same seed, same table")
			sum += v/80 - 1
		}
	}
	mean := sum / float64(len(rpm)*len(mp)) * 100
	assert.InDelta(t, -10, mean, 3*5/math.Sqrt(30), "mean error %v%%", mean)
	flat, _ := PerturbSurface(base, rpm, mp, 5, 0, 1)
	assert.InDelta(t, 84, flat.At(2500, 50), 1e-12, "interpolates between cells")
	assert.InDelta(t, 84, flat.At(9000, 200), 1e-12, "clamped outside")
}

func BenchmarkSimulator(b *testing.B) {
	cfg := Config{Seed: 1, Noise: TypicalNoise(), SensorLag: 50 * time.Millisecond,
		Delay: dyno.TransportDelay{Fixed: 40 * time.Millisecond, PerRPM: 60}}
	ctx := context.Background()
	var s dyno.Sample
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		sim, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		for sim.Next(ctx, &s) == nil {
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "samples/s")
}

func BenchmarkSimulatorNext(b *testing.B) {
	sim, err := New(Config{Seed: 1, Noise: TypicalNoise(), SensorLag: 50 * time.Millisecond,
		Delay: dyno.TransportDelay{Fixed: 40 * time.Millisecond}, Plan: []Step{HoldStep(3000, 60, 1000*time.Hour)}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var s dyno.Sample
	b.ReportAllocs()
	for b.Loop() {
		if err := sim.Next(ctx, &s); err != nil {
			b.Fatal(err)
		}
	}
}

// The default VE has no cliff at the redline: the base torque curve's
// zero-padded smoothing must not leak into the engine's breathing.
func TestDefaultTrueVENoRedlineCliff(t *testing.T) {
	for _, p := range Profiles() {
		ve := DefaultTrueVE(p, 0)
		for c := range ve {
			prev := ve[c].At(p.RedlineRPM-300, 100)
			for r := p.RedlineRPM - 295; r <= p.RedlineRPM; r += 5 {
				v := ve[c].At(r, 100)
				if math.Abs(v/prev-1) > 0.01 {
					t.Fatalf("%s cyl %d: VE jumps from %.2f to %.2f at %.0f rpm", p.Key, c, prev, v, r)
				}
				prev = v
			}
		}
	}
}
