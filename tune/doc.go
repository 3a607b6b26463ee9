// Package tune is DynoAI's virtual tuning: a closed loop (Session) that runs
// a test plan on a dyno (the physics simulator through SimRig, or any Rig),
// analyzes the log with the ve Analyzer against one AFR target source (the
// ECU's own target table), applies per-cylinder corrections within
// authority limits with ve.Apply, and repeats until the AFR error is gone,
// the loop oscillates, or it runs out of iterations. It is the project's
// accuracy proof: each Iteration records the AFR error over the cells the
// plan covered, the cells corrected and converged, the peak power and, when
// the caller gives the engine's true VE (Config.Truth, read only to score,
// never to decide), how far the ECU's tables are from it.
//
// Two things make the loop converge in two corrections rather than drift:
//
//   - The wideband transport delay is undone, given (Analyzer.SensorDelay)
//     or learned from the logs themselves (Config.LearnDelay, with
//     afr.AutoAlign). Left in, a 400 ms delay moves every reading 120
//     rev/min along a sweep and the loop oscillates.
//   - The analyzer fits the table's node values (ve.NodeFit): a cell mean
//     under bilinear attribution blends its neighbours' ratios, while the
//     fit solves for the nodes the ECU interpolates between, and corrects
//     only the nodes the log resolves.
//
// Scenarios are the cases on the simulated M8-114 (lean, rich,
// perfect, per-cylinder random fields; delays, noise, sensor lag).
//
// Planner turns per-cell evidence into the next tests (steady-state holds,
// sweeps and pulls with RPM and load targets) that cover the weakest cells
// in about the fewest seconds, as plain data with JSON tags that a UI or
// an HTTP API can serve; Steps turns them into a simulator plan.
package tune
