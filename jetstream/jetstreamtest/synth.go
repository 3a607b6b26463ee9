package jetstreamtest

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/dynoai/dynoai/jetstream"
)

// Dialect is a column naming and unit convention of a Jetstream raw CSV.
// Real exports differ; the converter must read them all.
type Dialect int

// The dialects PullCSV writes.
const (
	// DialectKPa: Time, Engine_RPM, MAP_kPa, Torque (ft·lb), AFR_Front,
	// AFR_Rear, AFR_Cmd_F, AFR_Cmd_R, Spark_F, Spark_R, TPS, IAT (°F), VBatt.
	DialectKPa Dialect = iota
	// DialectMetric: RPM, MAP_psi, Torque_Nm, AFR_F, AFR_R, TPS, IAT_C.
	DialectMetric
	// DialectLambda: Timestamp, Rpm, Manifold_Pressure (kPa), Torque_ftlb,
	// Lambda_Front, Lambda_Rear, Throttle_Position, Intake_Air_Temp (°F).
	DialectLambda
	// DialectInHg: Time, RPM, MAP_inHg, Engine_Torque, AFR_Front, AFR_Rear,
	// Ignition_Front, Ignition_Rear, TPS, ECT.
	DialectInHg
	// DialectNoMAP lacks a MAP channel: the converter must refuse it.
	DialectNoMAP
	numDialects
)

// Pull describes a synthetic wide-open-throttle dyno pull.
type Pull struct {
	PeakHP, PeakTorque float64 // the curve's peaks, HP and ft·lb
	StartRPM, EndRPM   float64 // 0 means 1800 and 5800
	Points             int     // rows; 0 means 600
	Duration           float64 // seconds; 0 means 10
	AFRTarget          float64 // commanded AFR; 0 means 12.8
	AFRBias            [2]float64
	Seed               uint64
	Dialect            Dialect
}

// TorqueAt returns the pull's torque (ft·lb) at rpm: it rises linearly to
// PeakTorque at 3000 rpm, then falls linearly at the slope that makes the
// power peak exactly PeakHP.
func (p Pull) TorqueAt(rpm float64) float64 { return p.withDefaults().curve()(rpm) }

// curve returns the torque curve with its slope solved once.
func (p Pull) curve() func(rpm float64) float64 {
	const rt = 3000.0
	k := p.slope()
	return func(rpm float64) float64 {
		if rpm <= rt {
			return p.PeakTorque * (0.72 + 0.28*math.Max(0, rpm-p.StartRPM)/(rt-p.StartRPM))
		}
		return p.PeakTorque * math.Max(0, 1-k*(rpm-rt))
	}
}

func (p Pull) withDefaults() Pull {
	if p.StartRPM <= 0 {
		p.StartRPM = 1800
	}
	if p.EndRPM <= p.StartRPM {
		p.EndRPM = 5800
	}
	if p.Points <= 1 {
		p.Points = 600
	}
	if p.Duration <= 0 {
		p.Duration = 10
	}
	if p.AFRTarget <= 0 {
		p.AFRTarget = 12.8
	}
	return p
}

// slope solves max over [3000, EndRPM] of r·(1 − k(r − 3000)) = PeakHP·5252/PeakTorque
// for k by bisection.
func (p Pull) slope() float64 {
	const rt = 3000.0
	want := p.PeakHP * 5252 / p.PeakTorque
	peak := func(k float64) float64 {
		best := 0.0
		for r := rt; r <= p.EndRPM; r += 5 {
			best = math.Max(best, r*(1-k*(r-rt)))
		}
		return best
	}
	lo, hi := 0.0, 1/rt
	if want >= peak(0) {
		return 0
	}
	for range 60 {
		mid := (lo + hi) / 2
		if peak(mid) > want {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// CSV renders the pull as a Jetstream raw CSV in its dialect. Noise is
// deterministic in Seed; torque carries none, so the peaks are exact at the
// sampled RPMs.
func (p Pull) CSV() []byte {
	p = p.withDefaults()
	p.EndRPM = math.Max(p.EndRPM, p.StartRPM+1)
	torqueAt := p.curve()
	rng := rand.New(rand.NewPCG(p.Seed, 42))
	noise := func(sd float64) float64 { return rng.NormFloat64() * sd }
	var b bytes.Buffer
	f := func(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }
	switch p.Dialect {
	case DialectMetric:
		b.WriteString("RPM,MAP_psi,Torque_Nm,AFR_F,AFR_R,TPS,IAT_C\n")
	case DialectLambda:
		b.WriteString("Timestamp,Rpm,Manifold_Pressure,Torque_ftlb,Lambda_Front,Lambda_Rear,Throttle_Position,Intake_Air_Temp\n")
	case DialectInHg:
		b.WriteString("Time,RPM,MAP_inHg,Engine_Torque,AFR_Front,AFR_Rear,Ignition_Front,Ignition_Rear,TPS,ECT\n")
	case DialectNoMAP:
		b.WriteString("Time,Engine_RPM,Torque,AFR_Front,AFR_Rear,TPS\n")
	default:
		b.WriteString("Time,Engine_RPM,MAP_kPa,Torque,AFR_Front,AFR_Rear,AFR_Cmd_F,AFR_Cmd_R,Spark_F,Spark_R,TPS,IAT,VBatt\n")
	}
	for i := range p.Points {
		x := float64(i) / float64(p.Points-1)
		t := x * p.Duration
		rpm := p.StartRPM + x*(p.EndRPM-p.StartRPM)
		tq := torqueAt(rpm)
		mapKPa := math.Min(100.5, 88+10*x+noise(0.4))
		afrF := p.AFRTarget + p.AFRBias[0] + 0.3*math.Sin(rpm/700) + noise(0.08)
		afrR := p.AFRTarget + p.AFRBias[1] + 0.3*math.Cos(rpm/650) + noise(0.08)
		tps := math.Min(100, 96+4*x)
		iatF := 95 + 12*x + noise(0.3)
		spark := 24 + 8*x
		switch p.Dialect {
		case DialectMetric:
			fmt.Fprintf(&b, "%s,%s,%s,%s,%s,%s,%s\n", f(rpm, 1), f(mapKPa/6.894757293168361, 4),
				f(tq*1.3558179483314004, 5), f(afrF, 2), f(afrR, 2), f(tps, 1), f((iatF-32)*5/9, 2))
		case DialectLambda:
			fmt.Fprintf(&b, "%s,%s,%s,%s,%s,%s,%s,%s\n", f(t, 3), f(rpm, 1), f(mapKPa, 2), f(tq, 3),
				f(afrF/14.7, 4), f(afrR/14.7, 4), f(tps, 1), f(iatF, 1))
		case DialectInHg:
			fmt.Fprintf(&b, "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", f(t, 3), f(rpm, 1), f(mapKPa/3.386389, 4),
				f(tq, 3), f(afrF, 2), f(afrR, 2), f(spark, 1), f(spark-1.5, 1), f(tps, 1), f(205+5*x, 1))
		case DialectNoMAP:
			fmt.Fprintf(&b, "%s,%s,%s,%s,%s,%s\n", f(t, 3), f(rpm, 1), f(tq, 3), f(afrF, 2), f(afrR, 2), f(tps, 1))
		default:
			fmt.Fprintf(&b, "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", f(t, 3), f(rpm, 1), f(mapKPa, 2), f(tq, 3),
				f(afrF, 2), f(afrR, 2), f(p.AFRTarget, 2), f(p.AFRTarget, 2), f(spark, 1), f(spark-1.5, 1),
				f(tps, 1), f(iatF, 1), f(13.8+noise(0.05), 2))
		}
	}
	return b.Bytes()
}

// SampledPeakHP returns the highest power (HP) at the pull's sampled RPMs, which is
// what a consumer of CSV computes from torque × rpm / 5252.
func (p Pull) SampledPeakHP() float64 {
	p = p.withDefaults()
	torqueAt := p.curve()
	best := 0.0
	for i := range p.Points {
		x := float64(i) / float64(p.Points-1)
		rpm := p.StartRPM + x*(p.EndRPM-p.StartRPM)
		best = math.Max(best, torqueAt(rpm)*rpm/5252)
	}
	return best
}

// GenerateRuns returns n realistic runs, one every spacing starting at
// start, cycling through the dialects that the converter accepts, with
// peaks and ambient conditions drawn from seed. Their ids are
// "JS-<seed>-<index>", zero-padded.
func GenerateRuns(n int, start time.Time, spacing time.Duration, seed uint64) []Run {
	rng := rand.New(rand.NewPCG(seed, 7))
	vehicles := []string{"2021 Harley-Davidson FXLRST", "2022 Road Glide CVO", "2023 Street Glide ST",
		"2020 Softail Slim", "2019 Fat Boy 114", "2019 Road Glide Special"}
	engines := []string{"Milwaukee-Eight 117", "Milwaukee-Eight 121", "Milwaukee-Eight 114", "Milwaukee-Eight 107"}
	dynos := []string{"Dynojet 250i", "Dynojet 224xLC", "Dynojet 200"}
	out := make([]Run, n)
	for i := range n {
		tq := 95 + rng.Float64()*40
		hp := tq * (0.85 + rng.Float64()*0.12)
		pull := Pull{PeakHP: hp, PeakTorque: tq, Points: 300 + rng.IntN(600), Duration: 10 + rng.Float64()*6,
			AFRBias: [2]float64{rng.Float64() - 0.5, rng.Float64() - 0.5}, Seed: seed*1000 + uint64(i),
			Dialect: Dialect(i % int(DialectNoMAP))}
		m := jetstream.RunMetadata{
			Run: jetstream.Run{ID: fmt.Sprintf("JS-%d-%04d", seed, i), Timestamp: start.Add(time.Duration(i) * spacing).UTC(),
				Vehicle: vehicles[rng.IntN(len(vehicles))], DynoType: dynos[rng.IntN(len(dynos))],
				DurationSeconds: int(pull.Duration), DataPoints: pull.Points},
			EngineType:   engines[rng.IntN(len(engines))],
			AmbientTempF: 60 + rng.Float64()*25, AmbientPressureInHg: 29.1 + rng.Float64()*0.8,
			HumidityPercent: 30 + rng.Float64()*30,
			PeakHP:          round1(pull.SampledPeakHP()), PeakTorque: round1(tq),
		}
		out[i] = Run{RunMetadata: m, Data: pull.CSV()}
	}
	return out
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// String names the dialect.
func (d Dialect) String() string {
	switch d {
	case DialectKPa:
		return "kpa"
	case DialectMetric:
		return "metric"
	case DialectLambda:
		return "lambda"
	case DialectInHg:
		return "inhg"
	case DialectNoMAP:
		return "no-map"
	}
	return "dialect(" + strconv.Itoa(int(d)) + ")"
}
