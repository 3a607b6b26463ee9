// Package demo builds the simulated dyno session the examples share: an
// M8-114 whose ECU VE tables are off (front lean, rear rich) on a healthy
// dyno cell, so every example shows real corrections without a log file.
package demo

import (
	"time"

	"github.com/dynoai/dynoai/dyno"
)

// Grid is the VE grid the ECU error is drawn on.
var (
	GridRPM = []float64{1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500, 6000, 6500}
	GridMAP = []float64{20, 30, 40, 50, 60, 70, 80, 90, 100, 110}
)

// Scenario describes the session.
type Scenario struct {
	Seed uint64
	// FrontPct and RearPct are the mean errors of the ECU's VE per cylinder
	// (negative: the ECU thinks the cylinder breathes less, so it runs lean),
	// SpreadPct the cell-to-cell standard deviation.
	FrontPct, RearPct, SpreadPct float64
	// Repeat runs the default test plan this many times (0 means once).
	Repeat int
	// Delay is the wideband transport delay.
	Delay time.Duration
	// DT is the sample interval; zero means 20 ms (50 Hz, a typical log).
	DT time.Duration
}

// DefaultScenario is the session the README shows: front VE 6 % low, rear
// 4 % high, 2 % cell-to-cell spread, typical sensor noise, no delay.
func DefaultScenario(seed uint64) Scenario {
	return Scenario{Seed: seed, FrontPct: -6, RearPct: 4, SpreadPct: 2}
}

// Session returns a simulator running sc.
func Session(sc Scenario) (*dyno.Simulator, error) {
	truth := dyno.DefaultTrueVE(dyno.ProfileM8114, 0)
	var ecu [2]dyno.Surface
	for c, pct := range [2]float64{sc.FrontPct, sc.RearPct} {
		s, err := dyno.PerturbSurface(truth[c], GridRPM, GridMAP, pct, sc.SpreadPct, sc.Seed+uint64(c)*7919)
		if err != nil {
			return nil, err
		}
		ecu[c] = s
	}
	dt := sc.DT
	if dt == 0 {
		dt = 20 * time.Millisecond
	}
	var plan []dyno.SimStep
	for range max(1, sc.Repeat) {
		plan = append(plan, dyno.DefaultPlan(dyno.ProfileM8114)...)
	}
	return dyno.NewSimulator(dyno.SimConfig{
		Name:  "simulated M8-114",
		Seed:  sc.Seed,
		DT:    dt,
		ECUVE: ecu,
		Delay: dyno.TransportDelay{Fixed: sc.Delay},
		Noise: dyno.TypicalNoise,
		Plan:  plan,
	})
}
