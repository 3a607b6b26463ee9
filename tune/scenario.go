package tune

import (
	"fmt"
	"math"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynosim"
	"github.com/dynoai/dynoai/ve"
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
	// Quiet turns the sensor noise off; otherwise it is dynosim.TypicalNoise()
	// times NoiseScale (zero means 1).
	Quiet      bool    `json:"quiet"`
	NoiseScale float64 `json:"noise_scale,omitempty"`
	Seed       uint64  `json:"seed"`
	// RPMStep is the spacing of the ECU grid's RPM axis over the range of
	// ve.DefaultGrid; zero means DefaultRPMStep, 500 is ve.DefaultGrid's.
	RPMStep float64 `json:"rpm_step"`
	// Repeat runs the test plan this many times in one log (0 means once).
	Repeat int `json:"repeat,omitempty"`
	// DT is the sample interval; zero means 20 ms (50 Hz, a typical log).
	DT time.Duration `json:"dt_ns,omitempty"`
}

// DefaultRPMStep is the RPM spacing of a scenario's ECU grid: 250 rev/min,
// as Harley VE tables have in the working range. The default true VE bends
// too much for 500 rev/min steps: a table holding the true VE at every
// node of a 500 rev/min axis still misses the target by up to 0.47 AFR between them
// (1500–2000 and 3000–3500 rev/min), and the loop can only trade that for
// VE error at the nodes.
const DefaultRPMStep = 250.0

// Grid returns the scenario's ECU grid: ve.DefaultGrid with its RPM axis
// spaced by RPMStep over the same range.
func (sc Scenario) Grid() (rpm, mapKPa []float64, err error) {
	step := sc.RPMStep
	if step == 0 {
		step = DefaultRPMStep
	}
	if !(step >= 50 && step <= 2500) {
		return nil, nil, fmt.Errorf("%w: RPMStep %v outside [50, 2500]", ErrConfig, step)
	}
	g := ve.DefaultGrid()
	lo, hi := g.RPM[0], g.RPM[len(g.RPM)-1]
	for k := 0; lo+float64(k)*step <= hi+1e-9; k++ {
		rpm = append(rpm, lo+float64(k)*step)
	}
	return rpm, g.MAP, nil
}

// Scenarios are the named cases: lean (−10 % ± 5 %), rich (+10 % ± 5 %),
// perfect, per-cylinder random fields (front −8 % ± 6 %, rear +6 % ± 6 %),
// all with typical noise and a 400 ms delay; and demo, the session the
// examples analyze when they have no log (front 6 % lean, rear 4 % rich,
// 2 % cell to cell, no delay).
func Scenarios() []Scenario {
	d := 400 * time.Millisecond
	return []Scenario{
		{Name: "demo", FrontPct: -6, RearPct: 4, SpreadPct: 2},
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
// 1500 rev/min to 300 below the redline, as a tuner's pulls stop short of
// the rev limiter.
func Plan(p dynosim.EngineProfile) []dynosim.Step {
	lo, hi := 1500.0, p.RedlineRPM-300
	plan := []dynosim.Step{dynosim.PullStep(lo, hi)}
	up := true
	for m := 30.0; m <= 90; m += 10 {
		if up {
			plan = append(plan, dynosim.SweepStep(lo, hi, m, 0))
		} else {
			plan = append(plan, dynosim.SweepStep(hi, lo, m, 0))
		}
		up = !up
	}
	return append(plan, dynosim.PullStep(lo, hi))
}

// Config returns a session config for the scenario: a SimRig running Plan
// at 50 Hz, initial ECU tables perturbed from the true VE on the scenario's
// Grid (precision 3), the virtual ECU's targets, and Truth for scoring.
// LearnDelay is left false: set it, or Analyzer.SensorDelay, as the case
// needs.
func (sc Scenario) Config() (Config, error) {
	p := dynosim.M8114()
	truth := dynosim.DefaultTrueVE(p, 0)
	if sc.Repeat < 0 || sc.Repeat > 10_000 {
		return Config{}, fmt.Errorf("%w: Repeat %d outside [0, 10000]", ErrConfig, sc.Repeat)
	}
	dt := sc.DT
	if dt == 0 {
		dt = 20 * time.Millisecond
	}
	var plan []dynosim.Step
	for range max(1, sc.Repeat) {
		plan = append(plan, Plan(p)...)
	}
	gr, gm, err := sc.Grid()
	if err != nil {
		return Config{}, err
	}
	var initial [2]*ve.Table
	for c, pct := range [2]float64{sc.FrontPct, sc.RearPct} {
		s, err := dynosim.PerturbSurface(truth[c], gr, gm, pct, sc.SpreadPct, sc.Seed*7919+uint64(c))
		if err != nil {
			return Config{}, err
		}
		t, err := ve.NewTable(gr, gm, 0)
		if err != nil {
			return Config{}, err
		}
		t.Precision = 3
		for i, rpm := range gr {
			for j, mp := range gm {
				t.Set(i, j, t.Round(s.At(rpm, mp)))
			}
		}
		initial[c] = t
	}
	noise := dynosim.TypicalNoise()
	switch k := sc.NoiseScale; {
	case sc.Quiet:
		noise = dynosim.Noise{}
	case k < 0 || math.IsNaN(k) || k > 100:
		return Config{}, fmt.Errorf("%w: NoiseScale %v outside [0, 100]", ErrConfig, k)
	case k > 0:
		noise = dynosim.Noise{AFR: noise.AFR * k, RPM: noise.RPM * k, MAP: noise.MAP * k, TPS: noise.TPS * k, TorquePct: noise.TorquePct * k}
	}
	targets := dynosim.VirtualECUTargets()
	return Config{
		Rig: SimRig{Config: dynosim.Config{
			Name: "tune:" + sc.Name, Profile: p, Seed: sc.Seed, DT: dt,
			TrueVE: truth, TargetAFR: targets,
			Delay: dyno.TransportDelay{Fixed: sc.Delay}, SensorLag: sc.SensorLag, Noise: noise,
			Plan: plan,
		}},
		Initial: initial,
		Targets: targets,
		Truth:   truth,
	}, nil
}

// Simulator returns the scenario's first test: the simulated engine running
// the plan with the initial (wrong) ECU tables. It is what examples analyze
// when they have no log.
func (sc Scenario) Simulator() (*dynosim.Simulator, error) {
	cfg, err := sc.Config()
	if err != nil {
		return nil, err
	}
	rig := cfg.Rig.(SimRig)
	sim := rig.Config
	sim.ECUVE = [2]dyno.Surface{cfg.Initial[0], cfg.Initial[1]}
	if sc.Name != "" {
		sim.Name = "simulated M8-114 (" + sc.Name + ")"
	}
	return dynosim.New(sim)
}
