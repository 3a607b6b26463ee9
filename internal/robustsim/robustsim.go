// Package robustsim builds the robustness sessions of issue 10 on the
// project's simulator, for the tests of the packages that must hold up on
// them (ve's analyzer, afr's delay learning): about 30,000 rows at 50 Hz of
// WOT pulls, part-throttle sweeps at five fixed throttle openings up and
// down, two light-load holds and closed-throttle decels with fuel cut
// (read as 18 ± 5 %) between them; RPM noise 0.3 %, MAP noise 2 %, AFR
// noise 0.05; a transport delay of 100-250 ms + up to 150 s·rpm/rpm (at
// most 400 ms) and a first-order sensor lag of 50-150 ms; a per-node truth
// on the ECU's grid, rough or smooth. A case is the same log wherever it is
// built, draw for draw.
package robustsim

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	"github.com/dynoai/dynoai/afr"
	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynosim"
)

// Truth is the shape of the per-node error of the ECU's VE table.
type Truth uint8

const (
	// Rough draws every node's multiplier from 1 + U(-10 %, +10 %).
	Rough Truth = iota
	// Smooth is a smooth surface of up to about ±9 %.
	Smooth
)

func (k Truth) String() string {
	if k == Rough {
		return "rough"
	}
	return "smooth"
}

// Session constants.
const (
	Rows = 30_000
	DT   = 20 * time.Millisecond // 50 Hz
	// MinSteady is the steady samples that make a node well sampled.
	MinSteady = 20
)

// Case is one robustness session.
type Case struct {
	Truth   Truth
	RPMStep float64 // the ECU grid's RPM spacing: 250 or 500
	Seed    uint64
	Coarse  bool // the time column in whole seconds
	// Decel makes the decel-heavy session: more and slower decels at
	// 30-40 kPa, and a truth of -2 to -6 % at the 30 and 40 kPa nodes.
	Decel bool
}

func (c Case) String() string {
	s := fmt.Sprintf("%s/%.0f/seed%d", c.Truth, c.RPMStep, c.Seed)
	if c.Coarse {
		s += "/1s"
	}
	if c.Decel {
		s += "/decel"
	}
	return s
}

// Session is a case made concrete: the simulator config, the ECU's grid and
// target table (what an analysis is given) and the truth.
type Session struct {
	Config   dynosim.Config
	RPM, MAP []float64 // the ECU grid's axes
	Targets  dyno.Surface
	// Mult[c][k] is the correction cylinder c's ECU VE needs at node k
	// (row-major by RPM): the true VE is the ECU's times Mult.
	Mult [2][]float64
	// Steady[k] counts the samples whose true (rpm, MAP) is nearest to node
	// k while the engine is steady: past settling, not in a transient, not
	// decelerating, no fuel cut.
	Steady []int
	Rows   int
}

// Source returns a fresh simulator running the session.
func (s *Session) Source() (dyno.Source, error) { return dynosim.New(s.Config) }

// EffectiveDelayAt returns the delay a reading at rpm carries: the
// transport delay plus the sensor lag's time constant (a first-order lag
// delays a ramp by its time constant).
func (s *Session) EffectiveDelayAt(rpm float64) time.Duration {
	return s.Config.Delay.At(rpm) + s.Config.SensorLag
}

// New builds case c.
func New(c Case) (*Session, error) {
	rng := rand.New(rand.NewPCG(c.Seed, uint64(c.Truth)<<32|uint64(c.RPMStep)<<1|b2u(c.Decel)))
	profiles := dynosim.Profiles()
	prof := profiles[int(c.Seed)%len(profiles)]

	var s Session
	for r := 1000.0; r <= 6000; r += c.RPMStep {
		s.RPM = append(s.RPM, r)
	}
	for m := 20.0; m <= 100; m += 10 {
		s.MAP = append(s.MAP, m)
	}
	nr, nm := len(s.RPM), len(s.MAP)

	// The ECU's target table, on its own grid: lean cruise, rich WOT, a
	// little richer at high rpm, shifted per seed.
	shift := rng.Float64()*0.4 - 0.2
	tv := make([][]float64, nr)
	for i, r := range s.RPM {
		tv[i] = make([]float64, nm)
		for j, m := range s.MAP {
			v := 14.6
			switch {
			case m >= 90:
				v = 12.6 + 0.4*(100-m)/10
			case m > 40:
				v = 14.6 - 1.6*(m-40)/50
			}
			if r > 4500 {
				v -= 0.2
			}
			tv[i][j] = v + shift
		}
	}
	targets, err := afr.NewTargets(s.RPM, s.MAP, tv, afr.TargetOptions{Name: "robustness targets"})
	if err != nil {
		return nil, err
	}
	s.Targets = targets

	// The truth per node, then ECU and true VE on the grid.
	base := dynosim.DefaultTrueVE(prof, 0)
	var ecu, truth [2]dyno.Surface
	for cyl := range 2 {
		s.Mult[cyl] = nodeTruth(c, rng, s.RPM, s.MAP)
		e, t, err := dynosim.NodeTruth(base[cyl], s.RPM, s.MAP, s.Mult[cyl])
		if err != nil {
			return nil, err
		}
		ecu[cyl], truth[cyl] = e, t
	}

	var res time.Duration
	if c.Coarse {
		res = time.Second
	}
	s.Config = dynosim.Config{
		Name: "robustness " + c.String(), Profile: prof, Seed: c.Seed*7919 + 17, DT: DT,
		TrueVE: truth, ECUVE: ecu, TargetAFR: targets,
		Delay: dyno.TransportDelay{
			Fixed:  time.Duration(100+rng.IntN(150)) * time.Millisecond,
			PerRPM: 150 * rng.Float64(),
			Max:    400 * time.Millisecond,
		},
		SensorLag:      time.Duration(50+rng.IntN(100)) * time.Millisecond,
		Noise:          dynosim.Noise{AFR: 0.05, RPMPct: 0.3, MAPPct: 2, TPS: 0.2, TorquePct: 1},
		TimeResolution: res,
	}

	// The plan, its two light-load holds sized so that the session is Rows
	// long.
	plan, holds := sessionPlan(c, rng, prof)
	s.Config.Plan = plan
	rows, err := s.count()
	if err != nil {
		return nil, err
	}
	if extra := Rows - rows; extra > 0 {
		per := time.Duration(extra/len(holds)) * DT
		for _, h := range holds {
			plan[h].Duration += per
		}
	}
	if _, err := s.count(); err != nil {
		return nil, err
	}
	return &s, nil
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// nodeTruth draws one cylinder's per-node multipliers.
func nodeTruth(c Case, rng *rand.Rand, gridRPM, gridMAP []float64) []float64 {
	nm := len(gridMAP)
	out := make([]float64, len(gridRPM)*nm)
	// A smooth surface: one slow wave plus tilts, at most about ±9 %.
	a := 0.04 + 0.03*rng.Float64()
	tr, tm := 0.06*rng.Float64()-0.03, 0.04*rng.Float64()-0.02
	p1, p2 := 2*math.Pi*rng.Float64(), 2*math.Pi*rng.Float64()
	for i, r := range gridRPM {
		for j, m := range gridMAP {
			x, y := (r-1000)/5000, (m-20)/80
			v := 1 + (rng.Float64()*0.2 - 0.1)
			if c.Truth == Smooth {
				v = 1 + a*math.Sin(2*math.Pi*0.7*x+p1)*math.Cos(math.Pi*0.9*y+p2) + tr*(x-0.5) + tm*(y-0.5)
			}
			if c.Decel && (m == 30 || m == 40) {
				// The cells the issue saw pushed +7 % by decel rows.
				v = 1 - (0.02 + 0.04*rng.Float64())
			}
			out[i*nm+j] = v
		}
	}
	return out
}

// sessionPlan returns the session's plan and the indexes of its two
// light-load holds (zero long: New sizes them).
func sessionPlan(c Case, rng *rand.Rand, p dynosim.EngineProfile) ([]dynosim.Step, []int) {
	lo, hi := p.IdleRPM+300, p.RedlineRPM-300
	jit := func(v, pct float64) float64 { return v * (1 + pct/100*(2*rng.Float64()-1)) }
	decel := func(from float64) dynosim.Step {
		if c.Decel {
			return dynosim.DecelStep(from, lo, jit(35, 15), jit(300, 20))
		}
		return dynosim.DecelStep(from, lo, jit(32, 20), jit(550, 30))
	}
	levels := []float64{5, 8, 12, 17, 25}
	rng.Shuffle(len(levels), func(i, j int) { levels[i], levels[j] = levels[j], levels[i] })
	for i := range levels {
		levels[i] = jit(levels[i], 10)
	}
	rate := jit(150, 15)
	if c.Decel {
		rate = jit(220, 10) // fewer rows on sweeps, more on decels
	}
	plan := []dynosim.Step{dynosim.PullStep(1500, hi), decel(hi)}
	var holds []int
	for pass := range 2 {
		for i, tps := range levels {
			if pass == 0 {
				plan = append(plan, dynosim.SweepTPSStep(lo, hi, tps, rate), decel(hi))
			} else {
				// Down sweeps (the dyno lets the engine up at the throttle,
				// then sweeps it down), with a pull and a decel between some
				// of them.
				plan = append(plan, dynosim.SweepTPSStep(hi, lo, tps, rate))
				if c.Decel || i%2 == 1 {
					plan = append(plan, dynosim.PullStep(1500, hi), decel(hi))
				}
			}
			if pass == 0 && (i == 1 || i == 3) {
				r := 2200.0
				tpsHold := 4.0
				if i == 3 {
					r, tpsHold = 3200, 6
				}
				holds = append(holds, len(plan))
				plan = append(plan, dynosim.HoldTPSStep(jit(r, 5), jit(tpsHold, 10), 0))
			}
		}
		plan = append(plan, dynosim.PullStep(1500, hi), decel(hi))
	}
	return plan, holds
}

// count runs the session once with the simulator's own knowledge: the rows
// it makes and the steady samples nearest to each node.
func (s *Session) count() (int, error) {
	sim, err := dynosim.New(s.Config)
	if err != nil {
		return 0, err
	}
	nm := len(s.MAP)
	s.Steady = make([]int, len(s.RPM)*nm)
	s.Rows = 0
	var smp dyno.Sample
	ctx := context.Background()
	for {
		err := sim.Next(ctx, &smp)
		if err == io.EOF {
			return s.Rows, nil
		}
		if err != nil {
			return 0, err
		}
		s.Rows++
		st := sim.Status()
		if st.Settling || st.Transient || st.FuelCut || st.Kind == dynosim.StepDecel {
			continue
		}
		s.Steady[Nearest(s.RPM, st.RPM)*nm+Nearest(s.MAP, st.MAP)]++
	}
}

// Nearest returns the index of the axis value nearest to x.
func Nearest(axis []float64, x float64) int {
	best := 0
	for i, v := range axis {
		if math.Abs(v-x) < math.Abs(axis[best]-x) {
			best = i
		}
	}
	return best
}
