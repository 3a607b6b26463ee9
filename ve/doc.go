// Package ve turns dyno samples into volumetric-efficiency (VE) corrections.
//
// The physics: AFR is air mass over fuel mass, so a cell whose measured AFR
// is above its target (lean) needs more fuel, and the multiplier it needs is
// AFR_measured / AFR_target. An Analyzer streams samples from a dyno.Source,
// rejects the ones no tuner would trust (out-of-range sensors, transients,
// decel and fuel cut, a cold engine), attributes each remaining sample to the
// RPM x MAP cells around it, and accumulates per-cell evidence: hits,
// effective weight, mean and standard error of the multiplier. The Result
// holds a correction Table per cylinder plus that evidence, with cells that
// lack evidence left at 1.0 and marked.
//
// Corrections are made safe before they touch a calibration: optional
// smoothing (the predecessor's K1 and K2 kernels), a clamp to +/- N percent,
// and authority limits against a stored baseline (Limits). Apply and Rollback
// are exact inverses and record SHA-256 provenance in a Manifest; Rollback
// refuses to run when any hash does not match.
//
// Memory depends on the grid, never on the length of the log.
//
// DynoAI3Compat reproduces the Python predecessor's offline toolkit (DynoAI_3,
// "Pipeline A") file for file, sign convention included; it exists for shops
// that must compare against old outputs and is never the default.
package ve
