// Package afr is the air-fuel ratio arithmetic of DynoAI: fuels and their
// stoichiometric ratios, AFR and lambda conversion, sensor validity, target
// AFR tables, the per-sample error and the VE-correction multipliers, wideband
// calibration, and the alignment of wideband readings against the engine
// conditions that produced the exhaust they measure.
//
// Package afr is small and pure: it imports dyno for its types only and keeps
// no global state.
//
// # Conventions
//
// AFR is mass of air over mass of fuel. A measured AFR above the target is
// lean. The VE multiplier a cell needs is measured / target ([V2], the
// default): lean reads above 1, so the cell gets more fuel. The predecessor's
// 7 % per AFR point ([V1]) and its Pipeline A error in percent of the measured
// AFR with the rich side positive ([ErrorPctLegacy]) are kept under those
// names for compatibility only.
package afr
