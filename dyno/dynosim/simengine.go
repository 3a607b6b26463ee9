package dynosim

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/dynoai/dynoai/dyno"
)

// The engine model's constants. They shape the default surfaces and the
// manifold; none of them changes the AFR identity the simulator guarantees.
const (
	simStoich = 14.7 // gasoline, the wideband's lambda reference

	// Manifold: MAP = baro × a / (a + q) with a the throttle's effective
	// opening (1 − cos(π/2 · TPS/100) plus an idle-air leak) and q the
	// engine's pumping demand, proportional to rpm. It gives about 35 kPa
	// at idle, 40–60 kPa at light cruise and 98–99 % of baro at WOT.
	simThrottleLeak = 0.002
	simPumpPerKRPM  = 0.004

	// Losses, ft·lbf: friction f0 + f1·rpm/1000 and pumping loss
	// simPumpLoss × (baro − MAP)/baro.
	simFriction0   = 3.0
	simFriction1   = 1.8
	simPumpLoss    = 18.0
	simRefIATK     = 298.15 // 25 °C: the profile's numbers hold at it
	simBestLambda  = 0.87   // best-power mixture
	simLambdaCurve = 1.5    // torque × (1 − 1.5 (λ − 0.87)²)
	simKnockPerDeg = 0.01   // torque lost per degree of knock retard

	// DrumCircumferenceFt is the circumference of the simulated drum, the
	// Dynoware RT-150's drum 1 (jetstream-dyno spec §2.3), in feet.
	DrumCircumferenceFt = 4.673
)

// manifoldPressure returns the steady-state MAP (kPa) at rpm and tps.
func manifoldPressure(baro, rpm, tps float64) float64 {
	a := 1 - math.Cos(math.Pi/2*min(max(tps, 0), 100)/100) + simThrottleLeak
	q := simPumpPerKRPM * max(rpm, 0) / 1000
	return baro * a / (a + q)
}

// throttleFor returns the TPS (%) whose steady-state MAP at rpm is mapKPa,
// clamped to 0..100.
func throttleFor(baro, rpm, mapKPa float64) float64 {
	r := mapKPa / baro
	if r >= 1 {
		return 100
	}
	q := simPumpPerKRPM * max(rpm, 0) / 1000
	a := r*q/(1-r) - simThrottleLeak
	if a <= 0 {
		return 0
	}
	if a >= 1 {
		return 100
	}
	return math.Acos(1-a) * 2 / math.Pi * 100
}

func friction(rpm float64) float64 { return simFriction0 + simFriction1*rpm/1000 }

func pumpingLoss(baro, mapKPa float64) float64 {
	return simPumpLoss * max(baro-mapKPa, 0) / baro
}

// lambdaEfficiency is the share of best-power torque a mixture makes.
func lambdaEfficiency(lambda float64) float64 {
	if math.IsNaN(lambda) {
		return 0.3
	}
	d := lambda - simBestLambda
	return max(1-simLambdaCurve*d*d, 0.3)
}

// loadShape is the default VE's dependence on MAP: residual exhaust dilutes
// the charge at low manifold pressure.
func loadShape(mapKPa float64) float64 { return 0.72 + 0.28*mapKPa/100 }

// trueVEModel is the default true VE: percent, shaped so that WOT torque with
// a perfect tune follows the profile's base torque curve.
type trueVEModel struct {
	p      EngineProfile
	baro   float64
	curve  torqueCurve
	rpmTab []float64 // the rpm shape, tabulated
	lo, st float64
	rear   bool
}

const veShapePoints = 256

// veShapeFloor keeps the default VE plausible at low rpm, where the base
// curve's idle anchor (0.35 × MaxTorque, smoothed down further at idle)
// would imply a VE under 20 %: below the floor WOT torque sits above that
// curve.
const veShapeFloor = 0.6

func newTrueVE(p EngineProfile, baro float64, rear bool) *trueVEModel {
	m := &trueVEModel{p: p, baro: baro, curve: newTorqueCurve(p), rear: rear}
	m.lo = p.IdleRPM
	m.st = (p.RedlineRPM - p.IdleRPM) / (veShapePoints - 1)
	m.rpmTab = make([]float64, veShapePoints)
	// The base torque curve's moving average is zero-padded (spec §3.3),
	// which drags its last few points toward zero; VE has no reason to fall
	// off that cliff, so the shape is held flat over those points.
	flatFrom := p.RedlineRPM - 4*(p.RedlineRPM-p.IdleRPM)/(baseCurvePoints-1)
	for i := range m.rpmTab {
		r := min(m.lo+float64(i)*m.st, flatFrom)
		wot := manifoldPressure(baro, r, 100)
		need := m.curve.at(r) + friction(r) + pumpingLoss(baro, wot)
		m.rpmTab[i] = need / (wot * loadShape(wot))
	}
	peak := slices.Max(m.rpmTab)
	for i := range m.rpmTab {
		m.rpmTab[i] = max(m.rpmTab[i]/peak, veShapeFloor)
	}
	return m
}

// At returns the VE in percent. The rear cylinder breathes 3 % less at idle,
// the gap closing linearly to none at redline (a hotter rear cylinder, as on
// real V-twins), so front and rear differ.
func (m *trueVEModel) At(rpm, mapKPa float64) float64 {
	if math.IsNaN(rpm) || math.IsNaN(mapKPa) {
		return dyno.Missing
	}
	x := (rpm - m.lo) / m.st
	var shape float64
	switch {
	case !(x > 0):
		shape = m.rpmTab[0]
	case x >= veShapePoints-1:
		shape = m.rpmTab[veShapePoints-1]
	default:
		i := int(x)
		fr := x - float64(i)
		shape = m.rpmTab[i]*(1-fr) + m.rpmTab[i+1]*fr
	}
	v := 100 * m.p.VEPeak * shape * loadShape(min(max(mapKPa, 10), 110))
	if m.rear {
		pos := min(max((rpm-m.p.IdleRPM)/(m.p.RedlineRPM-m.p.IdleRPM), 0), 1)
		v *= 0.97 + 0.03*pos
	}
	return v
}

// DefaultTrueVE returns the true VE surfaces (percent; front, rear) the
// Simulator uses for p at barometric pressure baroKPa when Config.TrueVE
// is nil: shaped so that WOT torque with a perfect tune follows the
// profile's torque curve (BaseTorque) wherever that implies at least 60 %
// of the peak VE, lower at light load (× 0.72 + 0.28·MAP/100), the rear
// cylinder up to 3 % below the front.
func DefaultTrueVE(p EngineProfile, baroKPa float64) [2]dyno.Surface {
	if baroKPa == 0 {
		baroKPa = simDefaultBaro
	}
	return [2]dyno.Surface{newTrueVE(p, baroKPa, false), newTrueVE(p, baroKPa, true)}
}

// VirtualECUTargets returns the predecessor's virtual-ECU target table
// (jetstream-dyno spec §3.10): 14.0 at 20 kPa falling linearly to 12.5 at
// 100 kPa, the same at every rpm. It is the Simulator's target AFR when
// Config.TargetAFR is nil; afr.DefaultTargets is a richer alternative.
func VirtualECUTargets() dyno.Surface {
	return dyno.SurfaceFunc(func(rpm, mapKPa float64) float64 {
		if math.IsNaN(rpm) || math.IsNaN(mapKPa) {
			return dyno.Missing
		}
		return 14.0 + (12.5-14.0)*min(max((mapKPa-20)/80, 0), 1)
	})
}

// DefaultSpark returns the Simulator's spark advance (degrees BTDC) when
// Config.Spark is nil: 14° at 1000 rpm rising to 36° at 4000 rpm and up,
// less 9° from 40 to 100 kPa of load; the rear cylinder 1° less.
func DefaultSpark() [2]dyno.Surface {
	f := func(offset float64) dyno.Surface {
		return dyno.SurfaceFunc(func(rpm, mapKPa float64) float64 {
			r := min(max((rpm-1000)/3000, 0), 1)
			l := min(max((mapKPa-40)/60, 0), 1)
			return 14 + 22*r - 9*l - offset
		})
	}
	return [2]dyno.Surface{f(0), f(1)}
}

// gridSurface is a bilinear table, clamped at its edges.
type gridSurface struct {
	rpm, mp []float64
	v       []float64
}

func (g *gridSurface) At(rpm, mapKPa float64) float64 {
	if math.IsNaN(rpm) || math.IsNaN(mapKPa) {
		return dyno.Missing
	}
	i0, i1, fr := simBracket(g.rpm, rpm)
	j0, j1, fm := simBracket(g.mp, mapKPa)
	n := len(g.mp)
	a := g.v[i0*n+j0]*(1-fm) + g.v[i0*n+j1]*fm
	b := g.v[i1*n+j0]*(1-fm) + g.v[i1*n+j1]*fm
	return a*(1-fr) + b*fr
}

// GridSurface returns the bilinear surface through values on the grid
// rpm × mapKPa, holding the edge values outside the grid, as an ECU
// interpolates its VE table. values is row-major by rpm:
// values[i*len(mapKPa)+j] is the value at rpm[i], mapKPa[j]. The axes must
// be finite and strictly increasing and the values finite; all are copied.
func GridSurface(rpm, mapKPa, values []float64) (dyno.Surface, error) {
	if err := checkSimAxis("rpm", rpm); err != nil {
		return nil, err
	}
	if err := checkSimAxis("map", mapKPa); err != nil {
		return nil, err
	}
	if len(values) != len(rpm)*len(mapKPa) {
		return nil, simErr("values", "%d values for a %d × %d grid", len(values), len(rpm), len(mapKPa))
	}
	for k, v := range values {
		if !finite(v) {
			return nil, simErr("values", "value %d (rpm %v, map %v) is %v", k, rpm[k/len(mapKPa)], mapKPa[k%len(mapKPa)], v)
		}
	}
	return &gridSurface{rpm: slices.Clone(rpm), mp: slices.Clone(mapKPa), v: slices.Clone(values)}, nil
}

// NodeTruth returns an ECU VE table and the engine's true VE on the grid
// rpm × mapKPa such that the correction the ECU's table needs is mult[k]
// at node k and bilinear between nodes: ecu is base sampled at every node
// (bilinear between them, held at the edges, as an ECU interpolates its
// table), and truth is ecu times the bilinear interpolation of mult, so
// that everywhere the simulated engine burns exactly target × the
// interpolated multiplier. Each multiplier must be finite and within
// 1/3..3.
func NodeTruth(base dyno.Surface, rpm, mapKPa, mult []float64) (ecu, truth dyno.Surface, err error) {
	if err := checkSimAxis("rpm", rpm); err != nil {
		return nil, nil, err
	}
	if err := checkSimAxis("map", mapKPa); err != nil {
		return nil, nil, err
	}
	n := len(rpm) * len(mapKPa)
	if len(mult) != n {
		return nil, nil, simErr("mult", "%d multipliers for a %d × %d grid", len(mult), len(rpm), len(mapKPa))
	}
	ev := make([]float64, n)
	for i, r := range rpm {
		for j, m := range mapKPa {
			k := i*len(mapKPa) + j
			if c := mult[k]; !finite(c) || c < 1.0/3 || c > 3 {
				return nil, nil, simErr("mult", "multiplier %d (rpm %v, map %v) is %v, want 1/3..3", k, r, m, c)
			}
			ev[k] = base.At(r, m)
		}
	}
	e, err := GridSurface(rpm, mapKPa, ev)
	if err != nil {
		return nil, nil, err
	}
	c, err := GridSurface(rpm, mapKPa, mult)
	if err != nil {
		return nil, nil, err
	}
	return e, productSurface{e, c}, nil
}

// productSurface is the product of two surfaces.
type productSurface struct{ a, b dyno.Surface }

func (p productSurface) At(rpm, mapKPa float64) float64 {
	return p.a.At(rpm, mapKPa) * p.b.At(rpm, mapKPa)
}

func simBracket(ax []float64, x float64) (int, int, float64) {
	n := len(ax)
	if n == 1 || x <= ax[0] {
		return 0, 0, 0
	}
	if x >= ax[n-1] {
		return n - 1, n - 1, 0
	}
	hi, _ := slices.BinarySearch(ax, x)
	return hi - 1, hi, (x - ax[hi-1]) / (ax[hi] - ax[hi-1])
}

// PerturbSurface samples base on the grid rpm × mapKPa, multiplies every
// cell by 1 + N(meanPct, stdPct)/100 drawn from a PCG seeded with seed, and
// returns the result as a bilinear surface clamped at the grid's edges: an
// ECU VE table that is wrong by about meanPct percent, the predecessor's
// "lean" (−10, 5) and "rich" (+10, 5) scenarios (jetstream-dyno spec
// §3.10-3.11), reproducible in Go. The axes must be strictly increasing.
func PerturbSurface(base dyno.Surface, rpm, mapKPa []float64, meanPct, stdPct float64, seed uint64) (dyno.Surface, error) {
	if err := checkSimAxis("rpm", rpm); err != nil {
		return nil, err
	}
	if err := checkSimAxis("map", mapKPa); err != nil {
		return nil, err
	}
	if math.IsNaN(meanPct) || math.IsNaN(stdPct) || stdPct < 0 || math.IsInf(meanPct, 0) || math.IsInf(stdPct, 0) {
		return nil, simErr("perturb", "mean %v and std %v must be finite, std >= 0", meanPct, stdPct)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	g := &gridSurface{rpm: slices.Clone(rpm), mp: slices.Clone(mapKPa), v: make([]float64, 0, len(rpm)*len(mapKPa))}
	for _, r := range rpm {
		for _, m := range mapKPa {
			g.v = append(g.v, base.At(r, m)*(1+(meanPct+stdPct*rng.NormFloat64())/100))
		}
	}
	return g, nil
}

func checkSimAxis(name string, ax []float64) error {
	if len(ax) == 0 {
		return simErr(name, "axis is empty")
	}
	for i, v := range ax {
		if math.IsNaN(v) || math.IsInf(v, 0) || (i > 0 && v <= ax[i-1]) {
			return simErr(name, "axis must be finite and strictly increasing (point %d is %v)", i, v)
		}
	}
	return nil
}
