package dynosim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/dynoai/dynoai/dyno"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A decel closes the throttle and brakes the engine down at its rate; the
// ECU cuts fuel once the throttle is shut, the engine drags, and the
// widebands read the fuel-cut AFR with its relative noise after the
// transport delay, while the commanded AFR stays the target table's.
func TestSimDecelFuelCut(t *testing.T) {
	const delay = 200 * time.Millisecond
	plan := []Step{HoldStep(5000, 80, time.Second), DecelStep(5000, 1500, 35, 400)}
	samples, st := simRun(t, Config{Seed: 4, Plan: plan, Delay: dyno.TransportDelay{Fixed: delay}})
	var cutFrom, cutTo = -1, -1
	var n, sum, sq float64
	for i, s := range samples {
		if st[i].Kind != StepDecel {
			require.False(t, st[i].FuelCut, "sample %d: only decels cut fuel", i)
			continue
		}
		if st[i].FuelCut {
			if cutFrom < 0 {
				cutFrom = i
			}
			cutTo = i
			require.LessOrEqual(t, st[i].TPS, 1.0)
			require.Negative(t, st[i].Torque, "a fuel-cut engine drags")
			require.Equal(t, DefaultFuelCutAFR, st[i].ProducedAFR[dyno.Front])
		}
		require.GreaterOrEqual(t, st[i].MAP, 34.0, "the idle-air valve holds 35 kPa")
		require.InDelta(t, VirtualECUTargets().At(s.RPM, s.MAP), s.AFRCommanded[dyno.Rear], 1e-12, "the ECU still commands its target")
		// Well after the exhaust reaches the sensors: 18 ± 5 %.
		if cutFrom >= 0 && i-cutFrom > int(delay/DefaultDT)+2 && st[i].FuelCut {
			for c := range 2 {
				e := s.AFR[c]/DefaultFuelCutAFR - 1
				sum += e
				sq += e * e
				n++
			}
		}
	}
	require.Positive(t, cutFrom)
	require.Equal(t, len(samples)-1, cutTo, "fuel stays cut to the end of the decel")
	// The reading changes delay after the cut starts, not before.
	k := int(delay / DefaultDT)
	assert.Less(t, samples[cutFrom+k-1].AFR[dyno.Front], 14.0, "exhaust still in the pipe")
	assert.Equal(t, DefaultFuelCutAFR, st[cutFrom].ProducedAFR[dyno.Front])
	assert.Greater(t, samples[cutFrom+k+1].AFR[dyno.Front], 16.0)
	require.Greater(t, n, 500.0)
	mean := sum / n
	sd := math.Sqrt(sq/n - mean*mean)
	assert.InDelta(t, 0, mean, 0.005)
	assert.InDelta(t, 0.05, sd, 0.004, "fuel-cut noise is 5 %% relative")
	var below int
	for i := cutFrom + k + 2; i <= cutTo; i++ {
		if samples[i].AFR[dyno.Front] <= 18 {
			below++
		}
	}
	assert.Greater(t, below, (cutTo-cutFrom-k)/3, "about half the fuel-cut rows read at most 18")
	// The absorber brakes at the step's rate: 3500 rpm at 400 rpm/s.
	var run []int
	for i := range st {
		if st[i].Kind == StepDecel && !st[i].Settling {
			run = append(run, i)
		}
	}
	dur := samples[run[len(run)-1]].Time - samples[run[0]].Time
	assert.InDelta(t, 8.75, dur.Seconds(), 0.05)
	assert.Equal(t, 1500.0, st[run[len(run)-1]].RPM)
	assert.Equal(t, 0.0, samples[run[len(run)-1]].TPS)
}

func TestSimFuelCutOptions(t *testing.T) {
	plan := []Step{DecelStep(4000, 2000, 0, 0)}
	samples, st := simRun(t, Config{Plan: plan, FuelCutAFR: 25.5, FuelCutNoisePct: -1})
	var cut int
	for i, s := range samples {
		if st[i].FuelCut {
			require.Equal(t, 25.5, s.AFR[dyno.Front], "a pegged sensor, noise off")
			if !st[i].Settling {
				cut++
			}
		}
		if !st[i].Settling {
			require.Less(t, st[i].MAP, 30.0, "closed throttle, no idle-air floor")
		}
	}
	// DefaultDecelRate: 2000 rpm at 500 rpm/s, 4 s at 100 Hz.
	assert.InDelta(t, 400, cut, 2)
}

// Relative noise scales with the value; absolute and relative noise add
// in variance.
func TestSimRelativeNoise(t *testing.T) {
	for _, tt := range []struct {
		name  string
		noise Noise
		want  func(rpm, mp float64) (sdRPM, sdMAP float64)
	}{
		{"relative", Noise{RPMPct: 0.3, MAPPct: 2}, func(r, m float64) (float64, float64) { return 0.003 * r, 0.02 * m }},
		{"both", Noise{RPM: 10, RPMPct: 0.3, MAP: 1, MAPPct: 2}, func(r, m float64) (float64, float64) {
			return math.Hypot(10, 0.003*r), math.Hypot(1, 0.02*m)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, hold := range []Step{HoldStep(2000, 40, 30*time.Second), HoldStep(5000, 90, 30*time.Second)} {
				samples, st := simRun(t, Config{Seed: 9, Noise: tt.noise, Plan: []Step{hold}})
				var n, sr, sm float64
				for i, s := range samples {
					if st[i].Settling {
						continue
					}
					dr, dm := s.RPM-st[i].RPM, s.MAP-st[i].MAP
					sr += dr * dr
					sm += dm * dm
					n++
				}
				wr, wm := tt.want(hold.RPM, hold.MAP)
				assert.InDelta(t, wr, math.Sqrt(sr/n), 0.04*wr, "rpm at %v", hold.RPM)
				assert.InDelta(t, wm, math.Sqrt(sm/n), 0.04*wm, "map at %v", hold.RPM)
			}
		})
	}
	// Relative AFR noise.
	samples, st := simRun(t, Config{Seed: 2, Noise: Noise{AFRPct: 1}, Plan: []Step{HoldStep(3000, 60, 30*time.Second)}})
	var n, sq float64
	for i, s := range samples {
		if !st[i].Settling {
			e := s.AFR[dyno.Rear]/st[i].ProducedAFR[dyno.Rear] - 1
			sq += e * e
			n++
		}
	}
	assert.InDelta(t, 0.01, math.Sqrt(sq/n), 0.0005)
}

// With zero relative noise the noise stream is the one the absolute
// options always gave, draw for draw.
func TestSimRelativeNoiseOffKeepsStream(t *testing.T) {
	plan := []Step{PullStep(2000, 4000), HoldStep(3000, 60, time.Second)}
	a, _ := simRun(t, Config{Seed: 7, Noise: TypicalNoise(), Plan: plan})
	b, _ := simRun(t, Config{Seed: 7, Noise: TypicalNoise(), Plan: plan, FuelCutAFR: 20, FuelCutNoisePct: 3})
	require.Equal(t, len(a), len(b))
	for i := range a {
		require.Equal(t, fmt.Sprint(a[i]), fmt.Sprint(b[i]), "no decel: the fuel-cut options change nothing (sample %d)", i)
	}
}

// A sweep at a fixed throttle holds TPS while MAP follows the engine: it
// falls as the rpm rises.
func TestSimSweepTPS(t *testing.T) {
	samples, st := simRun(t, Config{Plan: []Step{SweepTPSStep(1500, 5500, 8, 250)}})
	var first, last dyno.Sample
	seen := false
	for i, s := range samples {
		if st[i].Settling {
			continue
		}
		require.InDelta(t, 8, s.TPS, 1e-9)
		if !seen {
			first, seen = s, true
		}
		last = s
	}
	require.True(t, seen)
	assert.Equal(t, 5500.0, last.RPM)
	assert.Greater(t, first.MAP, 55.0)
	assert.Less(t, last.MAP, 40.0)
	assert.InDelta(t, 16, (last.Time - first.Time).Seconds(), 0.05)
}

func TestSimTimeResolution(t *testing.T) {
	plan := []Step{HoldStep(3000, 60, 5*time.Second)}
	exact, _ := simRun(t, Config{Seed: 1, Plan: plan, Noise: TypicalNoise(), DT: 20 * time.Millisecond})
	coarse, _ := simRun(t, Config{Seed: 1, Plan: plan, Noise: TypicalNoise(), DT: 20 * time.Millisecond, TimeResolution: time.Second})
	require.Equal(t, len(exact), len(coarse))
	same := 0
	for i := range coarse {
		require.Equal(t, exact[i].Time.Truncate(time.Second), coarse[i].Time)
		e := exact[i]
		e.Time = coarse[i].Time
		require.Equal(t, fmt.Sprint(e), fmt.Sprint(coarse[i]), "only the time column changes")
		if i > 0 && coarse[i].Time == coarse[i-1].Time {
			same++
		}
	}
	assert.Greater(t, same, len(coarse)*9/10, "50 rows a second share a stamp")
}

// The status tells a transient (the throttle opening at the start of a
// pull) from the steady part of a step.
func TestSimStatusTransient(t *testing.T) {
	samples, st := simRun(t, Config{Plan: []Step{HoldStep(3000, 50, 2*time.Second), PullStep(3000, 4500)}})
	var pullStart int
	for i := range st {
		if st[i].Kind == StepPull && !st[i].Settling {
			pullStart = i
			break
		}
	}
	require.Positive(t, pullStart)
	assert.True(t, st[pullStart+5].Transient, "throttle opening")
	assert.False(t, st[len(st)-1].Transient, "WOT, manifold full")
	steady := 0
	for i := range st {
		if st[i].Kind == StepHold && !st[i].Settling && !st[i].Transient {
			steady++
		}
	}
	assert.InDelta(t, 200, steady, 2)
	_ = samples
}

func TestNodeTruth(t *testing.T) {
	base := DefaultTrueVE(M8131(), 0)[dyno.Front]
	rpm := []float64{1000, 1500, 2000, 3000, 4000, 5000, 6000}
	mp := []float64{20, 40, 60, 80, 100}
	mult := make([]float64, len(rpm)*len(mp))
	for k := range mult {
		mult[k] = 0.9 + 0.2*float64(k)/float64(len(mult)-1)
	}
	ecu, truth, err := NodeTruth(base, rpm, mp, mult)
	require.NoError(t, err)
	for i, r := range rpm {
		for j, m := range mp {
			require.InDelta(t, mult[i*len(mp)+j], truth.At(r, m)/ecu.At(r, m), 1e-12)
			require.InDelta(t, base.At(r, m), ecu.At(r, m), 1e-12)
		}
	}
	// Bilinear between nodes, held outside.
	mid := (ecu.At(2000, 40) + ecu.At(3000, 40) + ecu.At(2000, 60) + ecu.At(3000, 60)) / 4
	assert.InDelta(t, mid, ecu.At(2500, 50), 1e-12)
	assert.Equal(t, truth.At(6000, 100), truth.At(7000, 130))

	// At a node the engine burns target × mult.
	k := 3*len(mp) + 2 // 3000 rpm, 60 kPa
	sim, err := New(Config{TrueVE: [2]dyno.Surface{truth, truth}, ECUVE: [2]dyno.Surface{ecu, ecu}, Profile: M8131(),
		Plan: []Step{HoldStep(3000, 60, time.Second)}})
	require.NoError(t, err)
	var s dyno.Sample
	for sim.Next(context.Background(), &s) == nil {
	}
	assert.InDelta(t, mult[k]*s.AFRCommanded[dyno.Front], s.AFR[dyno.Front], 1e-9)

	for _, bad := range [][]float64{mult[:3], append(append([]float64{}, mult[1:]...), math.NaN()), append(append([]float64{}, mult[1:]...), 4)} {
		_, _, err := NodeTruth(base, rpm, mp, bad)
		require.ErrorIs(t, err, ErrConfig)
	}
	_, err = GridSurface(rpm, mp, make([]float64, 3))
	require.ErrorIs(t, err, ErrConfig)
	_, err = GridSurface([]float64{1, 1}, mp, make([]float64, 10))
	require.ErrorIs(t, err, ErrConfig)
}

func TestSimSessionConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cfg   Config
		field string
	}{
		{"rpm pct", Config{Noise: Noise{RPMPct: -1}}, "Noise.RPMPct"},
		{"map pct", Config{Noise: Noise{MAPPct: 60}}, "Noise.MAPPct"},
		{"afr pct", Config{Noise: Noise{AFRPct: math.Inf(1)}}, "Noise.AFRPct"},
		{"cut afr", Config{FuelCutAFR: 5}, "FuelCutAFR"},
		{"cut noise", Config{FuelCutNoisePct: math.NaN()}, "FuelCutNoisePct"},
		{"time resolution", Config{TimeResolution: -time.Second}, "TimeResolution"},
		{"decel up", Config{Plan: []Step{DecelStep(2000, 4000, 0, 0)}}, "Plan[0].EndRPM"},
		{"decel map", Config{Plan: []Step{DecelStep(4000, 2000, 105, 0)}}, "Plan[0].MAP"},
		{"decel tps", Config{Plan: []Step{{Kind: StepDecel, RPM: 4000, EndRPM: 2000, TPS: 5}}}, "Plan[0].TPS"},
		{"decel rate", Config{Plan: []Step{DecelStep(4000, 2000, 0, -1)}}, "Plan[0].Rate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			var se *ConfigError
			require.True(t, errors.As(err, &se), "%v", err)
			assert.Equal(t, tt.field, se.Field, err.Error())
		})
	}
	assert.Equal(t, "decel", StepDecel.String())
}

// sessionConfig has every feature a robustness session uses on.
func sessionConfig() Config {
	return Config{
		Seed: 1, DT: 20 * time.Millisecond, TimeResolution: time.Second,
		Noise:     Noise{AFR: 0.05, RPMPct: 0.3, MAPPct: 2, TPS: 0.2, TorquePct: 1},
		SensorLag: 80 * time.Millisecond,
		Delay:     dyno.TransportDelay{Fixed: 150 * time.Millisecond, PerRPM: 100},
		Plan: []Step{
			PullStep(1500, 5500), DecelStep(5500, 1500, 35, 400),
			SweepTPSStep(1500, 5500, 8, 200), DecelStep(5500, 2000, 30, 0),
			HoldTPSStep(2500, 4, 10*time.Second),
		},
	}
}

func TestSimSessionAllocs(t *testing.T) {
	sim, err := New(sessionConfig())
	require.NoError(t, err)
	ctx := context.Background()
	var s dyno.Sample
	allocs := testing.AllocsPerRun(2000, func() {
		if err := sim.Next(ctx, &s); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}

// BenchmarkSimulatorSession runs a robustness session's features: relative
// noise, decels with fuel cut, a fixed-TPS sweep, coarse time.
func BenchmarkSimulatorSession(b *testing.B) {
	cfg := sessionConfig()
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
