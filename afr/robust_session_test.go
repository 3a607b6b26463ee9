package afr_test

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

// This file builds the robustness sessions of issue 10 on the simulator, a
// copy of the session building of ve's robustness harness
// (ve/robustness_session_test.go) kept draw for draw, so that a case here
// is the same log as there: about 30,000 rows at 50 Hz of WOT pulls,
// part-throttle sweeps at five fixed throttle openings up and down, two
// light-load holds and closed-throttle decels with fuel cut (read as
// 18 ± 5 %) between them; RPM noise 0.3 %, MAP noise 2 %, AFR noise 0.05;
// a transport delay of 100-250 ms + up to 150 s·rpm/rpm (at most 400 ms)
// and a first-order sensor lag of 50-150 ms. The harness's coarse-time
// variant (1 s stamps) is left out: the estimator needs time increasing at
// the row rate, which the analysis pipeline rebuilds (dyno.Retime) before
// it learns the delay, and rebuilt it is the exact-time session.

// truthKind is the shape of the per-node error of the ECU's VE table:
// rough draws every node from 1 + U(-10 %, +10 %), smooth is a surface of
// up to about ±9 %.
type truthKind uint8

const (
	roughTruth truthKind = iota
	smoothTruth
)

func (k truthKind) String() string {
	if k == roughTruth {
		return "rough"
	}
	return "smooth"
}

// delayTolerance is how far a delay learned from a session may be from the
// session's effective delay at 3000 rev/min.
const delayTolerance = 40 * time.Millisecond

const (
	sessionRows = 30_000
	sessionDT   = 20 * time.Millisecond
)

// robustCase is one robustness session.
type robustCase struct {
	truth   truthKind
	rpmStep float64
	seed    uint64
	decel   bool
}

func (c robustCase) String() string {
	s := fmt.Sprintf("%s/%.0f/seed%d", c.truth, c.rpmStep, c.seed)
	if c.decel {
		s += "/decel"
	}
	return s
}

// robustSession is a case made concrete: the simulator's config and the
// rows it makes.
type robustSession struct {
	cfg  dynosim.Config
	rows int
}

// trueDelayAt returns the delay a reading at rpm carries in the session:
// the transport delay plus the sensor lag's time constant (a first-order
// lag delays a ramp by its time constant).
func (s *robustSession) trueDelayAt(rpm float64) time.Duration {
	return s.cfg.Delay.At(rpm) + s.cfg.SensorLag
}

func (s *robustSession) source() (dyno.Source, error) { return dynosim.New(s.cfg) }

// newRobustSession builds case c.
func newRobustSession(c robustCase) (*robustSession, error) {
	rng := rand.New(rand.NewPCG(c.seed, uint64(c.truth)<<32|uint64(c.rpmStep)<<1|b2u(c.decel)))
	profiles := dynosim.Profiles()
	prof := profiles[int(c.seed)%len(profiles)]

	var gridRPM, gridMAP []float64
	for r := 1000.0; r <= 6000; r += c.rpmStep {
		gridRPM = append(gridRPM, r)
	}
	for m := 20.0; m <= 100; m += 10 {
		gridMAP = append(gridMAP, m)
	}
	nm := len(gridMAP)

	shift := rng.Float64()*0.4 - 0.2
	tv := make([][]float64, len(gridRPM))
	for i, r := range gridRPM {
		tv[i] = make([]float64, nm)
		for j, m := range gridMAP {
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
	targets, err := afr.NewTargets(gridRPM, gridMAP, tv, afr.TargetOptions{Name: "robustness targets"})
	if err != nil {
		return nil, err
	}

	base := dynosim.DefaultTrueVE(prof, 0)
	var ecu, truth [2]dyno.Surface
	for cyl := range 2 {
		mult := robustNodeTruth(c, rng, gridRPM, gridMAP)
		e, t, err := dynosim.NodeTruth(base[cyl], gridRPM, gridMAP, mult)
		if err != nil {
			return nil, err
		}
		ecu[cyl], truth[cyl] = e, t
	}

	s := &robustSession{}
	s.cfg = dynosim.Config{
		Name: "robustness " + c.String(), Profile: prof, Seed: c.seed*7919 + 17, DT: sessionDT,
		TrueVE: truth, ECUVE: ecu, TargetAFR: targets,
		Delay: dyno.TransportDelay{
			Fixed:  time.Duration(100+rng.IntN(150)) * time.Millisecond,
			PerRPM: 150 * rng.Float64(),
			Max:    400 * time.Millisecond,
		},
		SensorLag: time.Duration(50+rng.IntN(100)) * time.Millisecond,
		Noise:     dynosim.Noise{AFR: 0.05, RPMPct: 0.3, MAPPct: 2, TPS: 0.2, TorquePct: 1},
	}
	plan, holds := robustPlan(c, rng, prof)
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
	if s.rows, err = s.count(); err != nil {
		return nil, err
	}
	return s, nil
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// robustNodeTruth draws one cylinder's per-node VE multipliers.
func robustNodeTruth(c robustCase, rng *rand.Rand, gridRPM, gridMAP []float64) []float64 {
	nm := len(gridMAP)
	out := make([]float64, len(gridRPM)*nm)
	a := 0.04 + 0.03*rng.Float64()
	tr, tm := 0.06*rng.Float64()-0.03, 0.04*rng.Float64()-0.02
	p1, p2 := 2*math.Pi*rng.Float64(), 2*math.Pi*rng.Float64()
	for i, r := range gridRPM {
		for j, m := range gridMAP {
			x, y := (r-1000)/5000, (m-20)/80
			v := 1 + (rng.Float64()*0.2 - 0.1)
			if c.truth == smoothTruth {
				v = 1 + a*math.Sin(2*math.Pi*0.7*x+p1)*math.Cos(math.Pi*0.9*y+p2) + tr*(x-0.5) + tm*(y-0.5)
			}
			if c.decel && (m == 30 || m == 40) {
				v = 1 - (0.02 + 0.04*rng.Float64())
			}
			out[i*nm+j] = v
		}
	}
	return out
}

// robustPlan returns the session's plan and the indexes of its two
// light-load holds (zero long: newRobustSession sizes them).
func robustPlan(c robustCase, rng *rand.Rand, p dynosim.EngineProfile) ([]dynosim.Step, []int) {
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
		rate = jit(220, 10)
	}
	plan := []dynosim.Step{dynosim.PullStep(1500, hi), decel(hi)}
	var holds []int
	for pass := range 2 {
		for i, tps := range levels {
			if pass == 0 {
				plan = append(plan, dynosim.SweepTPSStep(lo, hi, tps, rate), decel(hi))
			} else {
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

// count runs the session once and returns its rows.
func (s *robustSession) count() (int, error) {
	sim, err := dynosim.New(s.cfg)
	if err != nil {
		return 0, err
	}
	var smp dyno.Sample
	n := 0
	for {
		err := sim.Next(context.Background(), &smp)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
		n++
	}
}
