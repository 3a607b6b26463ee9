package ve_test

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
	"github.com/dynoai/dynoai/ve"
)

// This file builds the robustness sessions of issue 10 on the simulator:
// about 30,000 rows at 50 Hz of WOT pulls, part-throttle sweeps at five
// fixed throttle openings, two light-load holds and closed-throttle decels
// with fuel cut between them, with a per-node truth on the ECU's grid.

// truthKind is the shape of the per-node error of the ECU's VE table.
type truthKind uint8

const (
	// roughTruth draws every node's multiplier from 1 + U(-10 %, +10 %).
	roughTruth truthKind = iota
	// smoothTruth is a smooth surface of up to about ±9 %.
	smoothTruth
)

func (k truthKind) String() string {
	if k == roughTruth {
		return "rough"
	}
	return "smooth"
}

// Session constants.
const (
	sessionRows   = 30_000
	sessionDT     = 20 * time.Millisecond // 50 Hz
	sessionMinRow = 20                    // steady samples that make a node well sampled
)

// robustCase is one robustness session.
type robustCase struct {
	truth   truthKind
	rpmStep float64 // the ECU grid's RPM spacing: 250 or 500
	seed    uint64
	coarse  bool // the time column in whole seconds
	// decel makes the decel-heavy session: more and slower decels at
	// 30-40 kPa, and a truth of -2 to -6 % at the 30 and 40 kPa nodes.
	decel bool
}

func (c robustCase) String() string {
	s := fmt.Sprintf("%s/%.0f/seed%d", c.truth, c.rpmStep, c.seed)
	if c.coarse {
		s += "/1s"
	}
	if c.decel {
		s += "/decel"
	}
	return s
}

// session is a robustness case made concrete: the simulator config, the
// ECU's grid and target table (what the analysis is given) and the truth.
type session struct {
	cfg     dynosim.Config
	grid    ve.Grid
	targets dyno.Surface
	// mult[c][k] is the correction cylinder c's ECU VE needs at node k
	// (row-major by RPM): the true VE is the ECU's times mult.
	mult [2][]float64
	// steady[k] counts the samples whose true (rpm, MAP) is nearest to
	// node k while the engine is steady: past settling, not in a
	// transient, not decelerating, no fuel cut.
	steady []int
	rows   int
}

// newSession builds case c.
func newSession(c robustCase) (*session, error) {
	rng := rand.New(rand.NewPCG(c.seed, uint64(c.truth)<<32|uint64(c.rpmStep)<<1|b2u(c.decel)))
	profiles := dynosim.Profiles()
	prof := profiles[int(c.seed)%len(profiles)]

	var s session
	for r := 1000.0; r <= 6000; r += c.rpmStep {
		s.grid.RPM = append(s.grid.RPM, r)
	}
	for m := 20.0; m <= 100; m += 10 {
		s.grid.MAP = append(s.grid.MAP, m)
	}
	nr, nm := len(s.grid.RPM), len(s.grid.MAP)

	// The ECU's target table, on its own grid: lean cruise, rich WOT,
	// a little richer at high rpm, shifted per seed.
	shift := rng.Float64()*0.4 - 0.2
	tv := make([][]float64, nr)
	for i, r := range s.grid.RPM {
		tv[i] = make([]float64, nm)
		for j, m := range s.grid.MAP {
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
	targets, err := afr.NewTargets(s.grid.RPM, s.grid.MAP, tv, afr.TargetOptions{Name: "robustness targets"})
	if err != nil {
		return nil, err
	}
	s.targets = targets

	// The truth per node, then ECU and true VE on the grid.
	base := dynosim.DefaultTrueVE(prof, 0)
	var ecu, truth [2]dyno.Surface
	for cyl := range 2 {
		s.mult[cyl] = nodeTruth(c, rng, s.grid)
		e, t, err := dynosim.NodeTruth(base[cyl], s.grid.RPM, s.grid.MAP, s.mult[cyl])
		if err != nil {
			return nil, err
		}
		ecu[cyl], truth[cyl] = e, t
	}

	var res time.Duration
	if c.coarse {
		res = time.Second
	}
	s.cfg = dynosim.Config{
		Name: "robustness " + c.String(), Profile: prof, Seed: c.seed*7919 + 17, DT: sessionDT,
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

	// The plan, its two light-load holds sized so that the session is
	// sessionRows long.
	plan, holds := sessionPlan(c, rng, prof)
	s.cfg.Plan = plan
	rows, err := s.count()
	if err != nil {
		return nil, err
	}
	if extra := sessionRows - rows; extra > 0 {
		per := time.Duration(extra/len(holds)) * sessionDT
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
func nodeTruth(c robustCase, rng *rand.Rand, g ve.Grid) []float64 {
	nm := len(g.MAP)
	out := make([]float64, len(g.RPM)*nm)
	// A smooth surface: one slow wave plus tilts, at most about ±9 %.
	a := 0.04 + 0.03*rng.Float64()
	tr, tm := 0.06*rng.Float64()-0.03, 0.04*rng.Float64()-0.02
	p1, p2 := 2*math.Pi*rng.Float64(), 2*math.Pi*rng.Float64()
	for i, r := range g.RPM {
		for j, m := range g.MAP {
			x, y := (r-1000)/5000, (m-20)/80
			v := 1 + (rng.Float64()*0.2 - 0.1)
			if c.truth == smoothTruth {
				v = 1 + a*math.Sin(2*math.Pi*0.7*x+p1)*math.Cos(math.Pi*0.9*y+p2) + tr*(x-0.5) + tm*(y-0.5)
			}
			if c.decel && (m == 30 || m == 40) {
				// The cells the issue saw pushed +7 % by decel rows.
				v = 1 - (0.02 + 0.04*rng.Float64())
			}
			out[i*nm+j] = v
		}
	}
	return out
}

// sessionPlan returns the session's plan and the indexes of its two
// light-load holds (zero long: newSession sizes them).
func sessionPlan(c robustCase, rng *rand.Rand, p dynosim.EngineProfile) ([]dynosim.Step, []int) {
	lo, hi := p.IdleRPM+300, p.RedlineRPM-300
	jit := func(v, pct float64) float64 { return v * (1 + pct/100*(2*rng.Float64()-1)) }
	decel := func(from float64) dynosim.Step {
		if c.decel {
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
	if c.decel {
		rate = jit(220, 10) // fewer rows on sweeps, more on decels
	}
	plan := []dynosim.Step{dynosim.PullStep(1500, hi), decel(hi)}
	var holds []int
	for pass := range 2 {
		for i, tps := range levels {
			if pass == 0 {
				plan = append(plan, dynosim.SweepTPSStep(lo, hi, tps, rate), decel(hi))
			} else {
				// Down sweeps (the dyno lets the engine up at the
				// throttle, then sweeps it down), with a pull and a
				// decel between some of them.
				plan = append(plan, dynosim.SweepTPSStep(hi, lo, tps, rate))
				if c.decel || i%2 == 1 {
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

// count runs the session once with the simulator's own knowledge: the
// rows it makes and the steady samples nearest to each node.
func (s *session) count() (int, error) {
	sim, err := dynosim.New(s.cfg)
	if err != nil {
		return 0, err
	}
	nm := len(s.grid.MAP)
	s.steady = make([]int, len(s.grid.RPM)*nm)
	s.rows = 0
	var smp dyno.Sample
	ctx := context.Background()
	for {
		err := sim.Next(ctx, &smp)
		if err == io.EOF {
			return s.rows, nil
		}
		if err != nil {
			return 0, err
		}
		s.rows++
		st := sim.Status()
		if st.Settling || st.Transient || st.FuelCut || st.Kind == dynosim.StepDecel {
			continue
		}
		s.steady[nearest(s.grid.RPM, st.RPM)*nm+nearest(s.grid.MAP, st.MAP)]++
	}
}

// nearest returns the index of the axis value nearest to x.
func nearest(axis []float64, x float64) int {
	best := 0
	for i, v := range axis {
		if math.Abs(v-x) < math.Abs(axis[best]-x) {
			best = i
		}
	}
	return best
}

// source returns a fresh simulator running the session.
func (s *session) source() (dyno.Source, error) { return dynosim.New(s.cfg) }
