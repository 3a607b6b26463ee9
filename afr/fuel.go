package afr

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/dynoai/dynoai/dyno"
)

// Sentinel is the AFR some wideband controllers and the Power Vision log
// while the sensor is not ready (still heating). It is not a measurement.
const Sentinel = 5.1

// StoichLegacy is the stoichiometric ratio the predecessor's generic log
// loader used to turn lambda into AFR (14.57). Everything else in the
// predecessor, and this package, uses 14.7 for gasoline; StoichLegacy exists
// only to reproduce the predecessor's files.
const StoichLegacy = 14.57

// IsSentinel reports whether v is the sensor-not-ready value [Sentinel].
func IsSentinel(v float64) bool { return math.Abs(v-Sentinel) < 1e-9 }

// Fuel describes a fuel: its stoichiometric air-fuel ratio and the readings
// a wideband can sensibly report on it. Ranges are inclusive.
type Fuel struct {
	// Name is a short lower-case name, for example "gasoline" or "e85".
	Name string
	// Stoich is the stoichiometric air-fuel ratio (lambda 1).
	Stoich float64
	// MinAFR and MaxAFR bound a plausible measured AFR.
	MinAFR, MaxAFR float64
	// MinLambda and MaxLambda bound a plausible measured lambda.
	MinLambda, MaxLambda float64
}

// The fuels a tuner meets, as functions so that no caller can change what
// another gets. Stoichiometric ratios are the values tuning software
// commonly uses: 14.7 for pump gasoline (the predecessor's value everywhere
// but its generic loader), 14.13 for E10 and 9.77 for E85 (the volume
// blends of gasoline and ethanol as usually quoted), 9.0 for ethanol and
// 6.4 for methanol (rounded from their chemistry: 8.98 and 6.47).
//
// Gasoline's validity ranges are the predecessor's: AFR 9–18 and lambda
// 0.6–1.3 (jetstream-dyno spec §2.1, ve-afr spec §7.7). The other fuels keep
// the same lambda range and scale gasoline's AFR range by their
// stoichiometric ratio, so 9–18 on gasoline (lambda 0.612–1.224) becomes
// 5.98–11.96 on E85.

// Gasoline is pump gasoline: stoich 14.7, AFR 9–18, lambda 0.6–1.3.
func Gasoline() Fuel {
	return Fuel{Name: "gasoline", Stoich: 14.7, MinAFR: 9, MaxAFR: 18, MinLambda: 0.6, MaxLambda: 1.3}
}

// E10 is gasoline with 10 % ethanol: stoich 14.13.
func E10() Fuel { return scaled("e10", 14.13) }

// E85 is 85 % ethanol: stoich 9.77.
func E85() Fuel { return scaled("e85", 9.77) }

// Ethanol is neat ethanol: stoich 9.0.
func Ethanol() Fuel { return scaled("ethanol", 9.0) }

// Methanol is neat methanol: stoich 6.4.
func Methanol() Fuel { return scaled("methanol", 6.4) }

func scaled(name string, stoich float64) Fuel {
	g := Gasoline()
	k := stoich / g.Stoich
	return Fuel{
		Name: name, Stoich: stoich,
		MinAFR: g.MinAFR * k, MaxAFR: g.MaxAFR * k,
		MinLambda: g.MinLambda, MaxLambda: g.MaxLambda,
	}
}

// Fuels lists the predefined fuels.
func Fuels() []Fuel { return []Fuel{Gasoline(), E10(), E85(), Ethanol(), Methanol()} }

// ErrUnknownFuel is returned by FuelByName for a name it does not know.
var ErrUnknownFuel = errors.New("afr: unknown fuel")

// FuelByName returns the predefined fuel called name (case-insensitive;
// "gas" and "petrol" also name gasoline).
func FuelByName(name string) (Fuel, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	switch n {
	case "gas", "petrol", "pump":
		return Gasoline(), nil
	}
	for _, f := range Fuels() {
		if f.Name == n {
			return f, nil
		}
	}
	return Fuel{}, fmt.Errorf("%w %q", ErrUnknownFuel, name)
}

// orGasoline returns f, or Gasoline when f is the zero Fuel.
func (f Fuel) orGasoline() Fuel {
	if f == (Fuel{}) {
		return Gasoline()
	}
	return f
}

// Validate reports whether f is usable: a positive stoichiometric ratio and
// ordered, positive ranges that contain it.
func (f Fuel) Validate() error {
	ok := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) && v > 0 }
	switch {
	case !ok(f.Stoich):
		return fmt.Errorf("afr: fuel %q: stoichiometric ratio %v is not a positive number", f.Name, f.Stoich)
	case !ok(f.MinAFR) || !ok(f.MaxAFR) || f.MinAFR >= f.MaxAFR:
		return fmt.Errorf("afr: fuel %q: AFR range [%v, %v] is not an increasing pair of positive numbers", f.Name, f.MinAFR, f.MaxAFR)
	case !ok(f.MinLambda) || !ok(f.MaxLambda) || f.MinLambda >= f.MaxLambda:
		return fmt.Errorf("afr: fuel %q: lambda range [%v, %v] is not an increasing pair of positive numbers", f.Name, f.MinLambda, f.MaxLambda)
	}
	return nil
}

// Lambda converts an air-fuel ratio on f to lambda. Missing stays Missing.
func (f Fuel) Lambda(afr float64) float64 { return afr / f.Stoich }

// AFR converts lambda to an air-fuel ratio on f. Missing stays Missing.
func (f Fuel) AFR(lambda float64) float64 { return lambda * f.Stoich }

// ValidAFR reports whether afr is a plausible wideband reading on f: measured
// (not Missing), not the Sentinel, and within [MinAFR, MaxAFR].
func (f Fuel) ValidAFR(afr float64) bool {
	return dyno.Has(afr) && !IsSentinel(afr) && afr >= f.MinAFR && afr <= f.MaxAFR
}

// ValidLambda reports whether lambda is measured and within
// [MinLambda, MaxLambda].
func (f Fuel) ValidLambda(lambda float64) bool {
	return dyno.Has(lambda) && lambda >= f.MinLambda && lambda <= f.MaxLambda
}

// Clean returns afr when ValidAFR holds and Missing otherwise.
func (f Fuel) Clean(afr float64) float64 {
	if f.ValidAFR(afr) {
		return afr
	}
	return dyno.Missing
}

// MeasuredAFR returns the measured AFR of cylinder cyl in s: the AFR channel
// when it is valid on f, otherwise the Lambda channel converted with f's
// stoichiometric ratio when that is valid, otherwise Missing. This is the
// predecessor's lambda fallback done with the fuel's ratio rather than 14.57.
func (f Fuel) MeasuredAFR(s *dyno.Sample, cyl int) float64 {
	if v := s.AFR[cyl]; f.ValidAFR(v) {
		return v
	}
	if l := s.Lambda[cyl]; f.ValidLambda(l) {
		if v := f.AFR(l); f.ValidAFR(v) {
			return v
		}
	}
	return dyno.Missing
}
