package dyno

import "strings"

// Unit is the unit a log column is recorded in. Readers convert every value to
// the fixed unit of its Sample field (see the package doc); a Unit says what
// they convert from.
type Unit uint8

// The units readers understand. UnitAuto means "not stated": the header text,
// then the format's default, then the channel's own unit decide.
const (
	UnitAuto Unit = iota
	UnitRPM
	UnitKRPM // thousands of rev/min, as WinPEP8 exports engine speed
	UnitKPa
	UnitPSI  // pounds per square inch, absolute
	UnitInHg // inches of mercury
	UnitBar
	UnitMbar // millibar, the same as hectopascal
	UnitCelsius
	UnitFahrenheit
	UnitKelvin
	UnitFtLb // foot pound-force (torque)
	UnitNm   // newton metre
	UnitHP   // mechanical horsepower, 550 ft·lbf/s
	UnitKW
	UnitAFR    // air-fuel ratio
	UnitLambda // AFR divided by the stoichiometric AFR
	UnitMPH
	UnitKMH
	UnitSeconds
	UnitMillis
	UnitPercent
	UnitDegrees
	UnitLbf
	UnitNewton
	UnitVolt // a raw sensor voltage: no channel accepts it without a calibration
	numUnits
)

var unitNames = [numUnits]string{
	"auto", "rpm", "krpm", "kPa", "psi", "inHg", "bar", "mbar", "°C", "°F", "K",
	"ft·lb", "N·m", "hp", "kW", "AFR", "lambda", "mph", "km/h", "s", "ms", "%", "deg", "lbf", "N", "V",
}

// Valid reports whether u is one of the package's units (UnitAuto included).
func (u Unit) Valid() bool { return u < numUnits }

// MarshalText writes the unit's symbol, so units read well in JSON.
func (u Unit) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// String returns the unit's usual symbol, for example "kPa" or "°F".
func (u Unit) String() string {
	if u < numUnits {
		return unitNames[u]
	}
	return "unit(" + itoa(int(u)) + ")"
}

// Conversion constants, exact where a standard defines them.
const (
	KPaPerPSI    = 6.894757293168361 // 1 psi = 6.894757… kPa
	KPaPerInHg   = 3.386389          // 1 inHg (at 0 °C) = 3.386389 kPa
	NmPerFtLb    = 1.3558179483314004
	WattsPerHP   = 745.6998715822702 // mechanical horsepower
	KMHPerMPH    = 1.609344
	NewtonPerLbf = 4.4482216152605
)

// unitDim groups units that convert into one another.
type unitDim uint8

const (
	dimNone unitDim = iota
	dimSpeed
	dimPressure
	dimTemperature
	dimTorque
	dimPower
	dimMixture
	dimVelocity
	dimTime
	dimPercent
	dimAngle
	dimForce
	dimVoltage
)

func (u Unit) dim() unitDim {
	switch u {
	case UnitRPM, UnitKRPM:
		return dimSpeed
	case UnitKPa, UnitPSI, UnitInHg, UnitBar, UnitMbar:
		return dimPressure
	case UnitCelsius, UnitFahrenheit, UnitKelvin:
		return dimTemperature
	case UnitFtLb, UnitNm:
		return dimTorque
	case UnitHP, UnitKW:
		return dimPower
	case UnitAFR, UnitLambda:
		return dimMixture
	case UnitMPH, UnitKMH:
		return dimVelocity
	case UnitSeconds, UnitMillis:
		return dimTime
	case UnitPercent:
		return dimPercent
	case UnitDegrees:
		return dimAngle
	case UnitLbf, UnitNewton:
		return dimForce
	case UnitVolt:
		return dimVoltage
	}
	return dimNone
}

// CanonicalUnit returns the unit a Sample stores channel c in: for example
// UnitKPa for ChanMAP and UnitCelsius for ChanIAT. Mixture channels (AFR,
// AFR commanded) answer UnitAFR and ChanLambda answers UnitLambda.
func CanonicalUnit(c Channel) Unit {
	switch c {
	case ChanTime:
		return UnitSeconds
	case ChanRPM:
		return UnitRPM
	case ChanMAP, ChanBaro:
		return UnitKPa
	case ChanTPS:
		return UnitPercent
	case ChanAFR, ChanAFRCommanded:
		return UnitAFR
	case ChanLambda:
		return UnitLambda
	case ChanSpark, ChanKnock:
		return UnitDegrees
	case ChanTorque:
		return UnitFtLb
	case ChanPower:
		return UnitHP
	case ChanIAT, ChanECT:
		return UnitCelsius
	case ChanDrumSpeed:
		return UnitMPH
	case ChanDrumForce:
		return UnitLbf
	}
	return UnitAuto // ChanLoad keeps the unit of its log: kPa or percent
}

// Accepts reports whether a column of channel c may be recorded in unit u:
// whether u measures the same quantity as c's canonical unit. ChanLoad
// accepts pressures and percent.
func (c Channel) Accepts(u Unit) bool {
	if c == ChanLoad {
		return u.dim() == dimPressure || u.dim() == dimPercent
	}
	cu := CanonicalUnit(c)
	return cu != UnitAuto && u.dim() == cu.dim()
}

// ToCanonical converts v, recorded in unit u, to the canonical unit of its
// quantity (rpm, kPa, °C, ft·lb, hp, mph, seconds, lbf). Mixture units are not
// converted here (that needs a stoichiometric AFR; see LambdaToAFR). Missing
// stays Missing.
func (u Unit) ToCanonical(v float64) float64 {
	switch u {
	case UnitKRPM:
		return v * 1000
	case UnitPSI:
		return v * KPaPerPSI
	case UnitInHg:
		return v * KPaPerInHg
	case UnitBar:
		return v * 100
	case UnitMbar:
		return v / 10
	case UnitFahrenheit:
		return FahrenheitToCelsius(v)
	case UnitKelvin:
		return v - 273.15
	case UnitNm:
		return v / NmPerFtLb
	case UnitKW:
		return v * 1000 / WattsPerHP
	case UnitKMH:
		return v / KMHPerMPH
	case UnitMillis:
		return v / 1000
	case UnitNewton:
		return v / NewtonPerLbf
	}
	return v
}

// FromCanonical is the inverse of ToCanonical: it converts v from the
// canonical unit of u's quantity to u.
func (u Unit) FromCanonical(v float64) float64 {
	switch u {
	case UnitKRPM:
		return v / 1000
	case UnitPSI:
		return v / KPaPerPSI
	case UnitInHg:
		return v / KPaPerInHg
	case UnitBar:
		return v / 100
	case UnitMbar:
		return v * 10
	case UnitFahrenheit:
		return CelsiusToFahrenheit(v)
	case UnitKelvin:
		return v + 273.15
	case UnitNm:
		return v * NmPerFtLb
	case UnitKW:
		return v * WattsPerHP / 1000
	case UnitKMH:
		return v * KMHPerMPH
	case UnitMillis:
		return v * 1000
	case UnitNewton:
		return v * NewtonPerLbf
	}
	return v
}

// FahrenheitToCelsius converts a temperature in °F to °C.
func FahrenheitToCelsius(f float64) float64 { return (f - 32) * 5 / 9 }

// CelsiusToFahrenheit converts a temperature in °C to °F.
func CelsiusToFahrenheit(c float64) float64 { return c*9/5 + 32 }

// DefaultStoichAFR is the stoichiometric air-fuel ratio of gasoline that
// readers use to convert lambda to AFR unless told otherwise. (The
// predecessor used 14.57 in one loader and 14.7 elsewhere; 14.7 is the
// industry convention and the one wideband controllers display.)
const DefaultStoichAFR = 14.7

// LambdaToAFR returns lambda × stoich. A stoich ≤ 0 means DefaultStoichAFR.
func LambdaToAFR(lambda, stoich float64) float64 {
	if stoich <= 0 {
		stoich = DefaultStoichAFR
	}
	return lambda * stoich
}

// AFRToLambda returns afr / stoich. A stoich ≤ 0 means DefaultStoichAFR.
func AFRToLambda(afr, stoich float64) float64 {
	if stoich <= 0 {
		stoich = DefaultStoichAFR
	}
	return afr / stoich
}

// unitWords maps the unit spellings found in log headers (lower case, after
// the reader's normalisation) to units.
var unitWords = map[string]Unit{
	"rpm": UnitRPM, "rev/min": UnitRPM, "1/min": UnitRPM, "krpm": UnitKRPM, "x1000 rpm": UnitKRPM,
	"kpa": UnitKPa, "psi": UnitPSI, "psia": UnitPSI, "inhg": UnitInHg, "in hg": UnitInHg, "\"hg": UnitInHg,
	"bar": UnitBar, "mbar": UnitMbar, "hpa": UnitMbar,
	"°c": UnitCelsius, "c": UnitCelsius, "degc": UnitCelsius, "deg c": UnitCelsius, "celsius": UnitCelsius, "ºc": UnitCelsius,
	"°f": UnitFahrenheit, "f": UnitFahrenheit, "degf": UnitFahrenheit, "deg f": UnitFahrenheit, "fahrenheit": UnitFahrenheit, "ºf": UnitFahrenheit,
	"k": UnitKelvin, "kelvin": UnitKelvin,
	"ft-lb": UnitFtLb, "ft-lbs": UnitFtLb, "ftlb": UnitFtLb, "ftlbs": UnitFtLb, "lb-ft": UnitFtLb, "lbft": UnitFtLb, "ft lb": UnitFtLb,
	"lb ft": UnitFtLb, "ft·lb": UnitFtLb, "lbf·ft": UnitFtLb, "ft·lbf": UnitFtLb, "ft-lbf": UnitFtLb, "ft.lb": UnitFtLb,
	"nm": UnitNm, "n·m": UnitNm, "n-m": UnitNm, "n.m": UnitNm,
	"hp": UnitHP, "bhp": UnitHP, "whp": UnitHP, "kw": UnitKW,
	"afr": UnitAFR, ":1": UnitAFR, "ratio": UnitAFR, "lambda": UnitLambda, "λ": UnitLambda,
	"mph": UnitMPH, "km/h": UnitKMH, "kmh": UnitKMH, "kph": UnitKMH,
	"s": UnitSeconds, "sec": UnitSeconds, "secs": UnitSeconds, "seconds": UnitSeconds,
	"ms": UnitMillis, "msec": UnitMillis, "milliseconds": UnitMillis,
	"%": UnitPercent, "pct": UnitPercent, "percent": UnitPercent,
	"deg": UnitDegrees, "°": UnitDegrees, "degrees": UnitDegrees, "deg btdc": UnitDegrees, "°btdc": UnitDegrees,
	"lbf": UnitLbf, "lbs": UnitLbf, "lb": UnitLbf, "n": UnitNewton,
	"v": UnitVolt, "volt": UnitVolt, "volts": UnitVolt,
	"lb·ft": UnitFtLb, "lbf-ft": UnitFtLb, "kpa(a)": UnitKPa, "kpaa": UnitKPa,
	"°k": UnitKelvin, "degk": UnitKelvin, "rpm/1000": UnitKRPM, "x1000": UnitKRPM,
}

// ParseUnit recognises a unit spelling as found in log headers or units rows
// ("kPa", "psi", "°F", "degC", "N·m", "lbft", "km/h", "lambda", ...). Case and
// surrounding spaces and brackets do not matter.
func ParseUnit(s string) (Unit, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimSpace(strings.Trim(s, "()[]{}"))
	s = strings.ReplaceAll(s, "_", " ")
	if u, ok := unitWords[s]; ok {
		return u, true
	}
	// "deg. f", "° f"
	compact := strings.ReplaceAll(strings.ReplaceAll(s, " ", ""), ".", "")
	if u, ok := unitWords[compact]; ok {
		return u, true
	}
	return UnitAuto, false
}
