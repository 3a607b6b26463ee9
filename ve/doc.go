// Package ve turns dyno samples into volumetric-efficiency (VE) corrections.
//
// The physics: AFR is air mass over fuel mass, so a cell whose measured AFR
// is above its target (lean) needs more fuel, and the multiplier it needs is
// AFR_measured / AFR_target.
//
// An Analyzer first decides whether the log can be corrected from at all: a
// log without a live wideband, an AFR target or a load axis is refused with
// a RefusalError that names what is missing and what would help
// (errors.Is(err, ErrRefused)). It then streams the samples: it rebuilds a
// coarse or repeating time base, learns and undoes the wideband's transport
// delay (afr.AutoAlign), rejects what no tuner would trust (out-of-range
// sensors, transients, decel and fuel cut told from the throttle, the
// smoothed slope of engine speed, manifold vacuum and the fuel-cut AFR
// signature together, a cold engine), places each sample by speed and load
// smoothed with a window that adapts to how straight their path is, and
// accumulates the samples' bilinear weights on the RPM x load grid.
//
// The default estimator, NodeFit, fits the table's node values (what the ECU
// stores and interpolates) to the samples by weighted least squares with a
// smoothness prior whose weight is chosen from the log (restricted maximum
// likelihood), solved with gonum's band Cholesky; each node gets a standard
// error and a resolution from the fit, and only nodes whose standard error
// is small are corrected. CellMean, the predecessor's per-cell means, stays
// available. The grid is the ECU's when one is given, or the default grid
// extended to where the data is, and the load axis is MAP, TPS (alpha-N) or
// the ECU's load, chosen from the log and stated. The Result holds a
// correction Table per cylinder (one combined correction for a collector
// wideband) with its evidence, the channel report and what to do next when
// nothing could be corrected (Advice, ExitNoCorrections).
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
