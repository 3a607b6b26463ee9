package dynosim

import (
	"fmt"
	"math"
	"slices"

	"github.com/dynoai/dynoai/dyno"
)

// EngineProfile describes the engine the Simulator runs: the numbers a
// tuner reads off a dyno sheet, plus the rotating inertia the dyno feels.
type EngineProfile struct {
	// Key is a short identifier such as "m8_114".
	Key string
	// Name is a display name such as "M8-114 Stage 2".
	Name string
	// DisplacementCI is the displacement in cubic inches (informational:
	// torque is calibrated from MaxTorque, not computed from it).
	DisplacementCI float64

	IdleRPM, RedlineRPM float64
	// MaxTorque (ft·lbf) at TorquePeakRPM and MaxHP at HPPeakRPM are what
	// the engine makes at wide-open throttle with a perfect tune
	// (lambda 0.87) at 25 °C; the simulated torque curve passes through
	// both.
	MaxTorque, TorquePeakRPM float64
	MaxHP, HPPeakRPM         float64
	// VEPeak is the best volumetric efficiency, as a fraction (0.88). The
	// default true VE surfaces are in percent: 100 × VEPeak at their peak.
	VEPeak float64
	// Inertia is the rotating inertia referred to the crankshaft (engine,
	// driveline, wheel and drum), slug·ft². It sets how fast a WOT pull
	// sweeps: the defaults give pulls of about 8 s, like a 4th-gear pull on
	// an inertia dyno (jetstream-dyno spec §3.8's recommendation, not the
	// predecessor's RT-150 value that made pulls last minutes).
	Inertia float64
	// GearRatio is engine revolutions per drum revolution, for DrumSpeed
	// and DrumForce (3.0: about 4th gear of a touring Harley on a 17.85 in
	// drum).
	GearRatio float64
}

// The profiles of the predecessor's simulator that are V-twins (jetstream-dyno
// spec §3.1), with this package's inertia and gearing. They are functions so
// that no caller can change what another one gets.

// M8114 is the M8-114 Stage 2, the engine the examples and tune use.
func M8114() EngineProfile {
	return EngineProfile{
		Key: "m8_114", Name: "M8-114 Stage 2", DisplacementCI: 114,
		IdleRPM: 900, RedlineRPM: 5800,
		MaxTorque: 122, TorquePeakRPM: 3200, MaxHP: 110, HPPeakRPM: 5000,
		VEPeak: 0.88, Inertia: 2.4, GearRatio: 3.0,
	}
}

// M8131 is the M8-131 big-bore engine.
func M8131() EngineProfile {
	return EngineProfile{
		Key: "m8_131", Name: "M8-131 Big Bore", DisplacementCI: 131,
		IdleRPM: 900, RedlineRPM: 5600,
		MaxTorque: 158, TorquePeakRPM: 3500, MaxHP: 145, HPPeakRPM: 5000,
		VEPeak: 0.90, Inertia: 3.1, GearRatio: 3.0,
	}
}

// TwinCam103 is the Twin Cam 103.
func TwinCam103() EngineProfile {
	return EngineProfile{
		Key: "twin_cam_103", Name: "Twin Cam 103", DisplacementCI: 103,
		IdleRPM: 900, RedlineRPM: 5500,
		MaxTorque: 100, TorquePeakRPM: 3000, MaxHP: 85, HPPeakRPM: 4800,
		VEPeak: 0.85, Inertia: 2.0, GearRatio: 3.0,
	}
}

// Profiles lists the predefined engine profiles.
func Profiles() []EngineProfile {
	return []EngineProfile{M8114(), M8131(), TwinCam103()}
}

// ProfileByKey returns the predefined profile with the given Key.
func ProfileByKey(key string) (EngineProfile, error) {
	for _, p := range Profiles() {
		if p.Key == key {
			return p, nil
		}
	}
	return EngineProfile{}, fmt.Errorf("dynosim: unknown engine profile %q", key)
}

// Validate reports whether p is usable: positive finite numbers with
// idle < torque peak ≤ power peak < redline, the power peak consistent with
// the torque peak (MaxHP × 5252 / HPPeakRPM ≤ MaxTorque) and VEPeak in
// (0, 1.5].
func (p EngineProfile) Validate() error {
	vals := []struct {
		name string
		v    float64
	}{
		{"IdleRPM", p.IdleRPM}, {"RedlineRPM", p.RedlineRPM}, {"MaxTorque", p.MaxTorque},
		{"TorquePeakRPM", p.TorquePeakRPM}, {"MaxHP", p.MaxHP}, {"HPPeakRPM", p.HPPeakRPM},
		{"VEPeak", p.VEPeak}, {"Inertia", p.Inertia}, {"GearRatio", p.GearRatio},
	}
	for _, f := range vals {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) || f.v <= 0 {
			return fmt.Errorf("dynosim: engine profile %q: %s = %v, want a finite positive number", p.Key, f.name, f.v)
		}
	}
	switch {
	case !(p.IdleRPM < p.TorquePeakRPM && p.TorquePeakRPM <= p.HPPeakRPM && p.HPPeakRPM < p.RedlineRPM):
		return fmt.Errorf("dynosim: engine profile %q: want idle < torque peak <= power peak < redline, got %v, %v, %v, %v",
			p.Key, p.IdleRPM, p.TorquePeakRPM, p.HPPeakRPM, p.RedlineRPM)
	case p.MaxHP*dyno.HPTorqueConstant/p.HPPeakRPM > p.MaxTorque:
		return fmt.Errorf("dynosim: engine profile %q: %v hp at %v rpm needs %.1f ft·lbf, more than MaxTorque %v",
			p.Key, p.MaxHP, p.HPPeakRPM, p.MaxHP*dyno.HPTorqueConstant/p.HPPeakRPM, p.MaxTorque)
	case p.VEPeak > 1.5:
		return fmt.Errorf("dynosim: engine profile %q: VEPeak %v is a fraction, want <= 1.5", p.Key, p.VEPeak)
	}
	return nil
}

// baseCurvePoints is the resolution of the base torque curve.
const baseCurvePoints = 1000

// torqueCurve is a profile's wide-open-throttle torque curve: the
// predecessor's base curve (jetstream-dyno spec §3.3), computed exactly as it
// did, smoothing quirk at the ends included, so its published values hold.
type torqueCurve struct {
	lo, step float64
	v        []float64
}

func newTorqueCurve(p EngineProfile) torqueCurve {
	n := baseCurvePoints
	lo, hi := p.IdleRPM, p.RedlineRPM
	step := (hi - lo) / float64(n-1)
	rpm := make([]float64, n)
	for i := range rpm {
		rpm[i] = lo + float64(i)*step
	}
	rpm[n-1] = hi
	tqHP := p.MaxHP * dyno.HPTorqueConstant / p.HPPeakRPM
	tqHP = min(max(tqHP, 0), p.MaxTorque)
	type pt struct{ x, y float64 }
	anchors := []pt{
		{p.IdleRPM, 0.35 * p.MaxTorque}, {p.TorquePeakRPM, p.MaxTorque},
		{p.HPPeakRPM, tqHP}, {p.RedlineRPM, 0.78 * tqHP},
	}
	slices.SortStableFunc(anchors, func(a, b pt) int {
		switch {
		case a.x < b.x:
			return -1
		case a.x > b.x:
			return 1
		}
		return 0
	})
	ax, ay := make([]float64, len(anchors)), make([]float64, len(anchors))
	for i, a := range anchors {
		ax[i], ay[i] = a.x, a.y
	}
	raw := make([]float64, n)
	for i, r := range rpm {
		raw[i] = interp1(ax, ay, r)
	}
	// 9-point moving average with zero padding, same length.
	v := make([]float64, n)
	for i := range v {
		var s float64
		for k := i - 4; k <= i+4; k++ {
			if k >= 0 && k < n {
				s += raw[k]
			}
		}
		v[i] = s / 9
	}
	c := torqueCurve{lo: lo, step: step, v: v}
	scale := p.MaxTorque / c.at(p.TorquePeakRPM)
	for i := range v {
		v[i] *= scale
	}
	f := tqHP / c.at(p.HPPeakRPM)
	den := p.HPPeakRPM - p.TorquePeakRPM
	if den <= 0 {
		den = 1
	}
	for i, r := range rpm {
		x := min(max((r-p.TorquePeakRPM)/den, 0), 1)
		w := x * x * (3 - 2*x)
		v[i] = max(v[i]*(1+(f-1)*w), 0)
	}
	return c
}

// at returns the curve at rpm, linearly interpolated, clamped at the ends.
func (c torqueCurve) at(rpm float64) float64 {
	x := (rpm - c.lo) / c.step
	if !(x > 0) {
		return c.v[0]
	}
	i := int(x)
	if i >= len(c.v)-1 {
		return c.v[len(c.v)-1]
	}
	fr := x - float64(i)
	return c.v[i]*(1-fr) + c.v[i+1]*fr
}

// interp1 is numpy.interp: linear inside, the end values outside.
func interp1(xs, ys []float64, x float64) float64 {
	n := len(xs)
	if x <= xs[0] {
		return ys[0]
	}
	if x >= xs[n-1] {
		return ys[n-1]
	}
	for i := 1; i < n; i++ {
		if x <= xs[i] {
			if xs[i] == xs[i-1] {
				return ys[i]
			}
			return ys[i-1] + (ys[i]-ys[i-1])*(x-xs[i-1])/(xs[i]-xs[i-1])
		}
	}
	return ys[n-1]
}

// BaseTorque returns the profile's wide-open-throttle torque curve
// (ft·lbf) as the predecessor computed it (jetstream-dyno spec §3.3; for
// the M8-114, 122.000 at 3200 rpm and 115.544 at 5000). With the default
// true VE and a perfect tune the simulator's WOT torque follows it.
func (p EngineProfile) BaseTorque() func(rpm float64) float64 {
	c := newTorqueCurve(p)
	return c.at
}
