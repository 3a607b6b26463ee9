// Package dynosim is a physics-based dyno simulator that is itself a
// dyno.Source: a V-twin (or any EngineProfile) on an inertia dyno whose
// ECU believes one VE table while the engine breathes another, so the
// measured AFR is the target times trueVE / ecuVE, exactly. It runs a test
// plan (WOT pulls, part-throttle sweeps at a fixed MAP or a fixed throttle,
// holds, closed-throttle decels with fuel cut), adds seeded sensor noise
// (absolute and relative), the wideband's transport delay and lag, and can
// coarsen its time column like a cheap logger. It is the accuracy proof of
// the analysis: its truth is known, and NodeTruth makes it a per-node
// multiplier on a VE table's grid.
package dynosim
