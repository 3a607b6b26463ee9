package tune

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/dynoai/dynoai/dyno/dynosim"
	"github.com/dynoai/dynoai/ve"
)

// Test is one proposed test: a steady-state hold at a cell, a sweep along
// a MAP row across a run of weak cells, or a wide-open-throttle pull for
// weak cells at full load.
type Test struct {
	Kind   string  `json:"kind"` // "hold", "sweep" or "pull"
	RPM    float64 `json:"rpm"`
	EndRPM float64 `json:"end_rpm,omitempty"` // sweeps only
	MAPKPa float64 `json:"map_kpa"`
	// TPS, when set, is the throttle a hold runs at instead of a MAP
	// target: 100 for a cell only wide-open throttle reaches.
	TPS float64 `json:"tps,omitempty"`
	// Passes is how often a sweep (alternately up and down) or a pull is
	// run; 1 for holds.
	Passes int `json:"passes"`
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
	// dynosim.DefaultSweepRate.
	SweepRate float64
	// MinSweepCells: a MAP row with at least this many weak cells gets a
	// sweep instead of holds; zero means 3.
	MinSweepCells int
	// Settle is the time each test needs to settle; zero means 1 s.
	Settle time.Duration
	// WOTMAP: cells at or above this MAP (kPa) are only reached at wide
	// open throttle and get pulls; zero means 95.
	WOTMAP float64
	// PullRate is how fast a pull sweeps (rev/min/s) for the time
	// estimate; zero means 600.
	PullRate float64
	// Reachable, when set, limits the plan to cells the engine can run
	// (for example MAP under the barometric pressure); nil means all.
	Reachable func(rpm, mapKPa float64) bool
}

// Planner proposes the tests that bring every weak cell of a result (both
// cylinders share the cells: one test feeds both) to TargetSamples in
// about the fewest seconds: a sweep along a MAP row over each run of at
// least MinSweepCells adjacent weak cells (a pass feeds a cell for
// spacing/SweepRate seconds and is repeated to reach the target), a pull
// over each such run at full load (WOTMAP and up), and a hold at every
// other weak cell for the time its shortfall needs (at wide-open throttle
// for a full-load cell). Tests are ordered by
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
		opt.SweepRate = dynosim.DefaultSweepRate
	}
	if opt.MinSweepCells == 0 {
		opt.MinSweepCells = 3
	}
	if opt.Settle == 0 {
		opt.Settle = time.Second
	}
	if opt.WOTMAP == 0 {
		opt.WOTMAP = 95
	}
	if opt.PullRate == 0 {
		opt.PullRate = 600
	}
	if !(opt.TargetSamples > 0) || !(opt.SampleRate > 0) || !(opt.SweepRate > 0) || !(opt.PullRate > 0) ||
		!(opt.WOTMAP > 0) || opt.MinSweepCells < 1 || opt.Settle < 0 {
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
		// Runs of adjacent weak cells: a run long enough (every run at
		// full load) is swept or pulled, the rest are held.
		for start := 0; start < len(weak); {
			end := start
			for end+1 < len(weak) && weak[end+1] == weak[end]+1 {
				end++
			}
			run := weak[start : end+1]
			start = end + 1
			wot := mp >= opt.WOTMAP
			if len(run) < opt.MinSweepCells {
				for _, i := range run {
					sec := need[i*len(g.MAP)+j]/opt.SampleRate + settle
					ts := Test{Kind: "hold", RPM: g.RPM[i], MAPKPa: mp, Seconds: sec, Passes: 1,
						Cells: [][2]float64{{g.RPM[i], mp}}}
					if wot {
						ts.TPS = 100
					}
					tests = append(tests, ts)
				}
				continue
			}
			// Extend single-cell runs half a cell each way so the pass
			// crosses the cell.
			i0, i1 := run[0], run[len(run)-1]
			lo, hi := g.RPM[i0], g.RPM[i1]
			spacing := axisSpacing(g.RPM, i0, i1)
			if lo == hi {
				lo, hi = lo-spacing/2, hi+spacing/2
			}
			rate, kind := opt.SweepRate, "sweep"
			if wot {
				// A pull opens the throttle first: start it a second of
				// pull below the first weak cell.
				rate, kind = opt.PullRate, "pull"
				lo = max(g.RPM[0], lo-opt.PullRate)
			}
			perPass := spacing / rate * opt.SampleRate
			worst := 0.0
			var cells [][2]float64
			for _, i := range run {
				worst = max(worst, need[i*len(g.MAP)+j])
				cells = append(cells, [2]float64{g.RPM[i], mp})
			}
			passes := math.Ceil(worst / perPass)
			tests = append(tests, Test{Kind: kind, RPM: lo, EndRPM: hi, MAPKPa: mp, Cells: cells,
				Passes: int(passes), Seconds: passes * ((hi-lo)/rate + settle)})
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

// axisSpacing is the mean spacing of the axis around a run of i0..i1.
func axisSpacing(ax []float64, i0, i1 int) float64 {
	switch {
	case i1 > i0:
		return (ax[i1] - ax[i0]) / float64(i1-i0)
	case len(ax) < 2:
		return 500
	case i0+1 < len(ax):
		return ax[i0+1] - ax[i0]
	}
	return ax[i0] - ax[i0-1]
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
// up and down, and a pull repeated, as often as its time needs).
func Steps(tests []Test, sweepRate float64) []dynosim.Step {
	if sweepRate <= 0 {
		sweepRate = dynosim.DefaultSweepRate
	}
	var out []dynosim.Step
	for _, t := range tests {
		switch t.Kind {
		case "pull":
			for range max(1, t.Passes) {
				out = append(out, dynosim.PullStep(t.RPM, t.EndRPM))
			}
		case "sweep":
			for k := range max(1, t.Passes) {
				if k%2 == 0 {
					out = append(out, dynosim.SweepStep(t.RPM, t.EndRPM, t.MAPKPa, sweepRate))
				} else {
					out = append(out, dynosim.SweepStep(t.EndRPM, t.RPM, t.MAPKPa, sweepRate))
				}
			}
		default:
			d := time.Duration(t.Seconds * float64(time.Second))
			if t.TPS > 0 {
				out = append(out, dynosim.HoldTPSStep(t.RPM, t.TPS, d))
			} else {
				out = append(out, dynosim.HoldStep(t.RPM, t.MAPKPa, d))
			}
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
