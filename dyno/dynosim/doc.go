// Package dynosim is a physics-based dyno simulator that is itself a
// dyno.Source: a V-twin (or any EngineProfile) on an inertia dyno whose
// ECU believes one VE table while the engine breathes another, so the
// measured AFR is the target times trueVE / ecuVE, exactly. It runs a test
// plan (WOT pulls, part-throttle sweeps, holds), adds seeded sensor noise,
// the wideband's transport delay and lag, and is the accuracy proof of the
// analysis: its truth is known.
package dynosim
