// Package tune is DynoAI's virtual tuning: a closed loop that runs test
// plans on a dyno (the physics simulator, or any Rig), analyzes the log with
// the ve Analyzer against one AFR target source (the ECU's own target
// table), applies per-cylinder corrections within authority limits with
// ve.Apply, and repeats until the AFR error is gone, the loop oscillates, or
// it runs out of iterations. It is the project's accuracy proof: each
// Iteration records the AFR error over the cells the plan covered and, when
// the caller gives the engine's true VE (Config.Truth, read only to score,
// never to decide), how far the ECU's tables are from it.
//
// The wideband transport delay is either given (Config.SensorDelay) or
// learned from each iteration's log (Config.LearnDelay, with afr.AutoAlign).
//
// Planner turns per-cell evidence into the next tests (steady-state holds
// and sweeps with RPM and load targets) that cover the weakest cells in the
// fewest minutes, as plain data a UI or an HTTP API can serve.
package tune
