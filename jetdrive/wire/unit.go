package wire

import "strconv"

// Unit is the JDUnit byte of a channel description. Every defined unit is
// SI/metric; codes outside the table are kept as they are (see Known).
type Unit uint8

// The JDUnit codes (spec §2.6).
const (
	UnitTime         Unit = 0  // seconds
	UnitDistance     Unit = 1  // metres
	UnitSpeed        Unit = 2  // km/h
	UnitForce        Unit = 3  // newtons
	UnitPower        Unit = 4  // kW
	UnitTorque       Unit = 5  // N·m
	UnitTemperature  Unit = 6  // °C
	UnitPressure     Unit = 7  // kPa
	UnitEngineSpeed  Unit = 8  // rev/min
	UnitGearRatio    Unit = 9  // rpm per km/h
	UnitAcceleration Unit = 10 // km/h per second
	UnitAFR          Unit = 11 // air-fuel ratio
	UnitFlowRate     Unit = 12 // kg/h
	UnitLambda       Unit = 13 // λ
	UnitVolts        Unit = 14 // V
	UnitAmps         Unit = 15 // A
	UnitPercentage   Unit = 16 // %
	UnitExtended     Unit = 254
	UnitNone         Unit = 255 // no unit; look for it in the name
)

var unitInfo = [...]struct{ name, symbol string }{
	{"Time", "s"}, {"Distance", "m"}, {"Speed", "km/h"}, {"Force", "N"}, {"Power", "kW"},
	{"Torque", "N·m"}, {"Temperature", "°C"}, {"Pressure", "kPa"}, {"EngineSpeed", "rpm"},
	{"GearRatio", "rpm/(km/h)"}, {"Acceleration", "km/h/s"}, {"AFR", ":1"}, {"FlowRate", "kg/h"},
	{"Lambda", "λ"}, {"Volts", "V"}, {"Amps", "A"}, {"Percentage", "%"},
}

// Known reports whether u is a code of the JDUnit table (0..16, 254, 255).
func (u Unit) Known() bool { return int(u) < len(unitInfo) || u == UnitExtended || u == UnitNone }

// String returns the unit's name, for example "EngineSpeed", or "Unit(42)".
func (u Unit) String() string {
	switch {
	case int(u) < len(unitInfo):
		return unitInfo[u].name
	case u == UnitExtended:
		return "Extended"
	case u == UnitNone:
		return "NoUnit"
	}
	return "Unit(" + strconv.Itoa(int(u)) + ")"
}

// Symbol returns the unit's symbol, for example "km/h", or "" when it has none.
func (u Unit) Symbol() string {
	if int(u) < len(unitInfo) {
		return unitInfo[u].symbol
	}
	return ""
}

// Conversion factors from JDUnit (SI) to the units of dyno.Sample.
const (
	kmhPerMph     = 1.609344
	newtonsPerLbf = 4.4482216152605
	kwPerHp       = 0.74569987158227022 // mechanical horsepower, 550 ft·lbf/s
	nmPerFtLbf    = 1.3558179483314004
)

// ToLibrary converts v from u to the unit the dyno package uses for the same
// quantity: km/h to mph, N to lbf, kW to hp, N·m to ft·lbf; every other unit
// (°C, kPa, rpm, AFR, λ, %) is already the library's and is returned as is.
func (u Unit) ToLibrary(v float64) float64 {
	switch u {
	case UnitSpeed:
		return v / kmhPerMph
	case UnitForce:
		return v / newtonsPerLbf
	case UnitPower:
		return v / kwPerHp
	case UnitTorque:
		return v / nmPerFtLbf
	}
	return v
}

// FromLibrary is the inverse of ToLibrary: it converts a value in the dyno
// package's unit to u.
func (u Unit) FromLibrary(v float64) float64 {
	switch u {
	case UnitSpeed:
		return v * kmhPerMph
	case UnitForce:
		return v * newtonsPerLbf
	case UnitPower:
		return v * kwPerHp
	case UnitTorque:
		return v * nmPerFtLbf
	}
	return v
}
