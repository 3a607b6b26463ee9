package tune

import (
	"fmt"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/ve"
)

// GridRPM and GridMAP are the virtual ECU's VE grid (jetstream-dyno spec
// §3.10): 1500..6500 rev/min by 500, 20..100 kPa by 10.
var (
	GridRPM = []float64{1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500, 6000, 6500}
	GridMAP = []float64{20, 30, 40, 50, 60, 70, 80, 90, 100}
)

// Scenario is a virtual-tuning case on the simulated M8-114: how wrong the
// ECU's VE tables start, the wideband's delay and the noise.
type Scenario struct {
	Name string `json:"name"`
	// FrontPct and RearPct are the mean errors of the ECU's VE tables
	// (negative: the ECU underestimates the air, the cylinder runs lean);
	// SpreadPct is the cell-to-cell standard deviation of the error.
	FrontPct  float64 `json:"front_pct"`
	RearPct   float64 `json:"rear_pct"`
	SpreadPct float64 `json:"spread_pct"`
	// Delay is the wideband transport delay; SensorLag its time constant.
	Delay     time.Duration `json:"delay_ns"`
	SensorLag time.Duration `json:"sensor_lag_ns"`
	// Quiet turns the sensor noise off (dyno.TypicalNoise otherwise).
	Quiet bool   `json:"quiet"`
	Seed  uint64 `json:"seed"`
}

// Scenarios are the named cases: lean (−10 % ± 5 %), rich (+10 % ± 5 %),
// perfect, per-cylinder random fields (front −8 % ± 6 %, rear +6 % ± 6 %),
// all with typical noise and a 400 ms delay.
func Scenarios() []Scenario {
	d := 400 * time.Millisecond
	return []Scenario{
		{Name: "lean", FrontPct: -10, RearPct: -10, SpreadPct: 5, Delay: d},
		{Name: "rich", FrontPct: 10, RearPct: 10, SpreadPct: 5, Delay: d},
		{Name: "perfect", Delay: d},
		{Name: "random", FrontPct: -8, RearPct: 6, SpreadPct: 6, Delay: d},
	}
}

// ScenarioByName returns the named scenario with seed set.
func ScenarioByName(name string, seed uint64) (Scenario, error) {
	for _, sc := range Scenarios() {
		if sc.Name == name {
			sc.Seed = seed
			return sc, nil
		}
	}
	return Scenario{}, fmt.Errorf("%w: unknown scenario %q", ErrConfig, name)
}

// Plan returns the session's test plan for p: a WOT pull, part-throttle
// sweeps at 30..90 kPa alternately up and down, and a second pull, from
// 1500 rev/min to 300 below the redline. (dyno.DefaultPlan runs to the
// redline itself, where the default true VE falls off a cliff in the last
// few rev/min that no VE grid can follow.)
func Plan(p dyno.EngineProfile) []dyno.SimStep {
	lo, hi := 1500.0, p.RedlineRPM-300
	plan := []dyno.SimStep{dyno.PullStep(lo, hi)}
	up := true
	for m := 30.0; m <= 90; m += 10 {
		if up {
			plan = append(plan, dyno.SweepStep(lo, hi, m, 0))
		} else {
			plan = append(plan, dyno.SweepStep(hi, lo, m, 0))
		}
		up = !up
	}
	return append(plan, dyno.PullStep(lo, hi))
}

// Config returns a session config for the scenario: a SimRig running Plan
// at 50 Hz, initial ECU tables perturbed from the true VE on GridRPM ×
// GridMAP (precision 3), the virtual ECU's targets, and Truth for scoring.
// LearnDelay is left false: set it, or Analyzer.SensorDelay, as the case
// needs.
func (sc Scenario) Config() (Config, error) {
	p := dyno.ProfileM8114
	truth := dyno.DefaultTrueVE(p, 0)
	var initial [2]*ve.Table
	for c, pct := range [2]float64{sc.FrontPct, sc.RearPct} {
		s, err := dyno.PerturbSurface(truth[c], GridRPM, GridMAP, pct, sc.SpreadPct, sc.Seed*7919+uint64(c))
		if err != nil {
			return Config{}, err
		}
		t, err := ve.NewTable(GridRPM, GridMAP, 0)
		if err != nil {
			return Config{}, err
		}
		t.Precision = 3
		for i, rpm := range GridRPM {
			for j, mp := range GridMAP {
				t.Set(i, j, t.Round(s.At(rpm, mp)))
			}
		}
		initial[c] = t
	}
	noise := dyno.TypicalNoise
	if sc.Quiet {
		noise = dyno.SimNoise{}
	}
	targets := dyno.VirtualECUTargets()
	return Config{
		Rig: SimRig{Config: dyno.SimConfig{
			Name: "tune:" + sc.Name, Profile: p, Seed: sc.Seed, DT: 20 * time.Millisecond,
			TrueVE: truth, TargetAFR: targets,
			Delay: dyno.TransportDelay{Fixed: sc.Delay}, SensorLag: sc.SensorLag, Noise: noise,
			Plan: Plan(p),
		}},
		Initial: initial,
		Targets: targets,
		Truth:   truth,
	}, nil
}
