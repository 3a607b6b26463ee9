package dyno

import (
	"errors"
	"fmt"
	"math"
)

// HPTorqueConstant is the engine speed, in rev/min, at which torque in ft·lbf
// and power in horsepower are equal: 33000 / (2π) = 5252.11. The predecessor
// and the industry round it to 5252, and so does this package, so that numbers
// match the dyno software's.
const HPTorqueConstant = 5252.0

// PowerFromTorque returns horsepower from torque (ft·lbf) and engine speed
// (rev/min): hp = torque × rpm / 5252.
func PowerFromTorque(torqueFtLb, rpm float64) float64 {
	return torqueFtLb * rpm / HPTorqueConstant
}

// TorqueFromPower returns torque (ft·lbf) from horsepower and engine speed:
// torque = hp × 5252 / rpm. It returns Missing when rpm ≤ 0 (no torque can be
// inferred from a stopped engine).
func TorqueFromPower(hp, rpm float64) float64 {
	if !(rpm > 0) {
		return Missing
	}
	return hp * HPTorqueConstant / rpm
}

// KWFromHP converts mechanical horsepower to kilowatts.
func KWFromHP(hp float64) float64 { return hp * WattsPerHP / 1000 }

// HPFromKW converts kilowatts to mechanical horsepower.
func HPFromKW(kw float64) float64 { return kw * 1000 / WattsPerHP }

// NmFromFtLb converts ft·lbf to N·m.
func NmFromFtLb(ftlb float64) float64 { return ftlb * NmPerFtLb }

// FtLbFromNm converts N·m to ft·lbf.
func FtLbFromNm(nm float64) float64 { return nm / NmPerFtLb }

// DrumPower returns the power, in hp, that a force (lbf) at the surface of a
// drum of the given circumference (ft) turning at drumRPM absorbs:
// hp = F × v / 550 with v = C × rpm / 60, that is F × C × rpm / 33000. It is 0
// when the force or speed is not positive (jetstream-dyno spec §2.3, §5.1).
func DrumPower(forceLbf, circumferenceFt, drumRPM float64) float64 {
	if !(forceLbf > 0) || !(drumRPM > 0) {
		return 0
	}
	return forceLbf * circumferenceFt * drumRPM / 33000
}

// Atmosphere is the weather a run was made in, the input of the correction
// factors.
type Atmosphere struct {
	BaroKPa float64 // barometric (total) pressure, kPa absolute
	TempC   float64 // intake (ambient) air temperature, °C
	// RelHumidity is the relative humidity in percent (0..100). It is used
	// only when VaporKPa is zero.
	RelHumidity float64
	// VaporKPa is the partial pressure of water vapour, kPa, when measured
	// directly (a dew-point or wet-bulb instrument); 0 means "compute it
	// from RelHumidity".
	VaporKPa float64
}

// ErrBadAtmosphere is returned for weather that no correction standard
// covers: a non-positive or non-finite pressure, a temperature at or below
// absolute zero, humidity outside 0..100, or vapour pressure at or above the
// total pressure.
var ErrBadAtmosphere = errors.New("dyno: atmosphere out of range")

// SaturationVaporPressure returns the saturation vapour pressure of water
// over liquid water at tC (°C), in kPa, by the Magnus–Tetens formula with the
// Alduchov–Eskridge coefficients: 0.61094 × exp(17.625 t / (t + 243.04)),
// within 0.4 % of the reference tables from −40 to 50 °C.
func SaturationVaporPressure(tC float64) float64 {
	return 0.61094 * math.Exp(17.625*tC/(tC+243.04))
}

// Vapor returns the partial pressure of water vapour of a, in kPa: VaporKPa
// when set, else RelHumidity/100 × SaturationVaporPressure(TempC).
func (a Atmosphere) Vapor() float64 {
	if a.VaporKPa > 0 {
		return a.VaporKPa
	}
	if a.RelHumidity <= 0 {
		return 0
	}
	return a.RelHumidity / 100 * SaturationVaporPressure(a.TempC)
}

func (a Atmosphere) check() error {
	switch {
	case !(a.BaroKPa > 0) || math.IsInf(a.BaroKPa, 0):
		return fmt.Errorf("%w: pressure %v kPa", ErrBadAtmosphere, a.BaroKPa)
	case !(a.TempC > -273.15) || math.IsInf(a.TempC, 0):
		return fmt.Errorf("%w: temperature %v °C", ErrBadAtmosphere, a.TempC)
	case a.RelHumidity < 0 || a.RelHumidity > 100 || math.IsNaN(a.RelHumidity):
		return fmt.Errorf("%w: relative humidity %v %%", ErrBadAtmosphere, a.RelHumidity)
	case a.VaporKPa < 0 || math.IsNaN(a.VaporKPa) || a.Vapor() >= a.BaroKPa:
		return fmt.Errorf("%w: vapour pressure %v kPa at %v kPa total", ErrBadAtmosphere, a.Vapor(), a.BaroKPa)
	}
	return nil
}

// SAEJ1349 returns the SAE J1349 (revision 2004 onward, also SAE J1349
// "JUN90") power correction factor for spark-ignition engines, by which
// observed power and torque are multiplied to give power at the standard
// day of 25 °C and 99 kPa dry-air pressure:
//
//	CF = 1.18 × (99 / Pd) × √((T + 273) / 298) − 0.18
//
// where Pd = baro − vapour pressure is the dry-air pressure in kPa and T the
// intake air temperature in °C (SAE J1349 §5, equation 5; the 1.18/−0.18
// terms assume a mechanical efficiency of 85 %). The inputs are checked,
// not clamped: the standard itself is valid for 0.93 ≤ CF ≤ 1.07, which
// callers may enforce.
func SAEJ1349(a Atmosphere) (float64, error) {
	if err := a.check(); err != nil {
		return 0, err
	}
	pd := a.BaroKPa - a.Vapor()
	return 1.18*(99/pd)*math.Sqrt((a.TempC+273)/298) - 0.18, nil
}

// STD returns the "standard" correction factor of the older SAE J607
// (small-engine) practice that Dynojet software calls STD: corrected to
// 60 °F (15.6 °C) and 29.92 inHg of dry air,
//
//	CF = (29.92 / Pd) × √((T + 460) / 520)
//
// with Pd the dry-air pressure in inHg and T the intake air temperature in °F.
// It runs about 4 % above SAE J1349.
func STD(a Atmosphere) (float64, error) {
	if err := a.check(); err != nil {
		return 0, err
	}
	pd := (a.BaroKPa - a.Vapor()) / KPaPerInHg
	tf := CelsiusToFahrenheit(a.TempC)
	return (29.92 / pd) * math.Sqrt((tf+460)/520), nil
}
