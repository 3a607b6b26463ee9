package tune

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/ve"
)

// Test is one proposed test: a steady-state hold at a cell, or a sweep
// along a MAP row across several weak cells.
type Test struct {
	Kind   string  `json:"kind"` // "hold" or "sweep"
	RPM    float64 `json:"rpm"`
	EndRPM float64 `json:"end_rpm,omitempty"` // sweeps only
	MAPKPa float64 `json:"map_kpa"`
	// Seconds is the time the test takes, settling included.
	Seconds float64 `json:"seconds"`
	// Cells are the cells (as [rpm, map]) the test is for.
	Cells [][2]float64 `json:"cells"`
}

// PlannerOptions tune Planner. The zero value is usable.
type PlannerOptions struct {
	// TargetSamples is the effective samples a cell should have; zero
	// means 50 (ve.ConfidenceHigh's count).
	TargetSamples float64
	// SampleRate is the log's samples per second; zero means 50.
	SampleRate float64
	// SweepRate is a sweep's speed in rev/min/s; zero means
	// dyno.DefaultSweepRate.
	SweepRate float64
	// MinSweepCells: a MAP row with at least this many weak cells gets a
	// sweep instead of holds; zero means 3.
	MinSweepCells int
	// Settle is the time each test needs to settle; zero means 1 s.
	Settle time.Duration
	// Reachable, when set, limits the plan to cells the engine can run
	// (for example MAP under the barometric pressure); nil means all.
	Reachable func(rpm, mapKPa float64) bool
}

// Planner proposes the tests that bring every weak cell of a result (both
// cylinders share the cells: one test feeds both) to TargetSamples in the
// fewest seconds: a sweep along a MAP row where at least MinSweepCells
// cells of the row are weak (a sweep feeds a cell about 500/SweepRate
// seconds per pass and is repeated to reach the target), otherwise a hold
// at each weak cell for the time its shortfall needs. Tests are ordered by
// MAP then RPM in a serpentine so transitions stay short.
func Planner(res *ve.Result, opt PlannerOptions) ([]Test, error) {
	if res == nil || len(res.Cylinders) == 0 {
		return nil, fmt.Errorf("%w: planner needs a result with cylinders", ErrConfig)
	}
	if opt.TargetSamples == 0 {
		opt.TargetSamples = 50
	}
	if opt.SampleRate == 0 {
		opt.SampleRate = 50
	}
	if opt.SweepRate == 0 {
		opt.SweepRate = dyno.DefaultSweepRate
	}
	if opt.MinSweepCells == 0 {
		opt.MinSweepCells = 3
	}
	if opt.Settle == 0 {
		opt.Settle = time.Second
	}
	if !(opt.TargetSamples > 0) || !(opt.SampleRate > 0) || !(opt.SweepRate > 0) || opt.MinSweepCells < 1 || opt.Settle < 0 {
		return nil, fmt.Errorf("%w: planner options must be positive: %+v", ErrConfig, opt)
	}
	g := res.Grid
	// need[i][j]: the shortfall of the weakest cylinder, in samples.
	need := make([]float64, len(g.RPM)*len(g.MAP))
	for ci := range res.Cylinders {
		cr := &res.Cylinders[ci]
		for i := range g.RPM {
			for j := range g.MAP {
				short := opt.TargetSamples - cr.Cell(i, j).EffectiveSamples
				need[i*len(g.MAP)+j] = max(need[i*len(g.MAP)+j], short)
			}
		}
	}
	var tests []Test
	settle := opt.Settle.Seconds()
	for j, mp := range g.MAP {
		var weak []int
		for i, rpm := range g.RPM {
			if need[i*len(g.MAP)+j] > 0 && (opt.Reachable == nil || opt.Reachable(rpm, mp)) {
				weak = append(weak, i)
			}
		}
		if len(weak) == 0 {
			continue
		}
		if len(weak) >= opt.MinSweepCells {
			lo, hi := g.RPM[weak[0]], g.RPM[weak[len(weak)-1]]
			spacing := (hi - lo) / float64(len(weak)-1)
			perPass := spacing / opt.SweepRate * opt.SampleRate // samples a cell gets per pass
			worst := 0.0
			var cells [][2]float64
			for _, i := range weak {
				worst = max(worst, need[i*len(g.MAP)+j])
				cells = append(cells, [2]float64{g.RPM[i], mp})
			}
			passes := math.Ceil(worst / perPass)
			tests = append(tests, Test{Kind: "sweep", RPM: lo, EndRPM: hi, MAPKPa: mp, Cells: cells,
				Seconds: passes * ((hi-lo)/opt.SweepRate + settle)})
			continue
		}
		for _, i := range weak {
			sec := need[i*len(g.MAP)+j]/opt.SampleRate + settle
			tests = append(tests, Test{Kind: "hold", RPM: g.RPM[i], MAPKPa: mp, Seconds: sec,
				Cells: [][2]float64{{g.RPM[i], mp}}})
		}
	}
	// Serpentine: alternate RPM direction from one MAP row to the next.
	rows := map[float64]int{}
	for _, mp := range g.MAP {
		rows[mp] = len(rows)
	}
	slices.SortStableFunc(tests, func(a, b Test) int {
		if a.MAPKPa != b.MAPKPa {
			return cmpFloat(a.MAPKPa, b.MAPKPa)
		}
		if rows[a.MAPKPa]%2 == 1 {
			return cmpFloat(b.RPM, a.RPM)
		}
		return cmpFloat(a.RPM, b.RPM)
	})
	return tests, nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Steps turns tests into a simulator plan (a sweep repeated, alternately
// up and down, as often as its time needs).
func Steps(tests []Test, sweepRate float64) []dyno.SimStep {
	if sweepRate <= 0 {
		sweepRate = dyno.DefaultSweepRate
	}
	var out []dyno.SimStep
	for _, t := range tests {
		switch t.Kind {
		case "sweep":
			pass := (t.EndRPM - t.RPM) / sweepRate
			n := max(1, int(math.Round(t.Seconds/(pass+1))))
			for k := range n {
				if k%2 == 0 {
					out = append(out, dyno.SweepStep(t.RPM, t.EndRPM, t.MAPKPa, sweepRate))
				} else {
					out = append(out, dyno.SweepStep(t.EndRPM, t.RPM, t.MAPKPa, sweepRate))
				}
			}
		default:
			out = append(out, dyno.HoldStep(t.RPM, t.MAPKPa, time.Duration(t.Seconds*float64(time.Second))))
		}
	}
	return out
}

// TotalSeconds is the time a plan of tests takes.
func TotalSeconds(tests []Test) float64 {
	var s float64
	for _, t := range tests {
		s += t.Seconds
	}
	return s
}
