// Package dyno is the shared vocabulary of DynoAI: one instant of a dyno log
// (Sample), the channels and units it is measured in, the Source interface
// that anything yielding samples implements, the wideband's transport delay,
// power and correction-factor math, and pull detection. Every other package
// speaks it; it depends on the standard library only.
//
// Log readers and the writer live in [github.com/dynoai/dynoai/dyno/dynolog],
// the physics simulator in [github.com/dynoai/dynoai/dyno/dynosim].
//
// # Units
//
// Every Sample field carries one fixed unit, whatever the log used; readers
// convert on the way in:
//
//	RPM          rev/min (engine)
//	MAP, Baro    kPa absolute
//	TPS          percent, 0..100
//	AFR          air-fuel ratio (mass of air / mass of fuel), ":1"
//	Lambda       dimensionless (AFR / stoichiometric AFR)
//	Torque       ft·lbf
//	Power        horsepower (550 ft·lbf/s)
//	Spark        degrees before top dead centre
//	Knock        degrees of spark retard (0 = none)
//	IAT, ECT     degrees Celsius
//	DrumSpeed    mph
//	DrumForce    lbf
//
// # Missing values
//
// A channel a log does not have, or a cell that is empty, is NaN, never zero:
// use [Missing] to write one and [Has] to test for one. A zero is a real zero.
package dyno
