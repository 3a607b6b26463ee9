package dyno

import (
	"fmt"
	"math"
	"time"
)

// delayMinRPM is the engine speed below which TransportDelay's RPM term stops
// growing, so that a stalled or missing RPM cannot make the delay unbounded.
const delayMinRPM = 300.0

// TransportDelay is the time a wideband sensor needs to see the exhaust of a
// combustion event: the gas travels from the exhaust valve to the sensor, so
// an AFR reading belongs to an earlier instant than the sample it is logged
// with. The delay is
//
//	Fixed + PerRPM/rpm seconds
//
// where the RPM term models the gas velocity rising with engine speed (rpm is
// floored at 300 rev/min; a Missing or non-positive rpm uses the floor). Max,
// when positive, caps the result. The zero value is no delay.
//
// The simulator uses it to delay its wideband channels and afr.Align uses the
// same type to undo the delay, so one value describes both.
type TransportDelay struct {
	// Fixed is the part of the delay that does not depend on engine speed.
	Fixed time.Duration
	// PerRPM is the RPM-dependent part in seconds·rev/min: 30 adds 20 ms at
	// 1500 rev/min and 5 ms at 6000 rev/min.
	PerRPM float64
	// Max caps the delay when positive.
	Max time.Duration
}

// Validate reports whether d is usable: non-negative, finite, and at most 10 s.
func (d TransportDelay) Validate() error {
	switch {
	case d.Fixed < 0:
		return fmt.Errorf("dyno: transport delay: Fixed %v is negative", d.Fixed)
	case math.IsNaN(d.PerRPM) || math.IsInf(d.PerRPM, 0) || d.PerRPM < 0:
		return fmt.Errorf("dyno: transport delay: PerRPM %v must be a finite value >= 0", d.PerRPM)
	case d.Max < 0:
		return fmt.Errorf("dyno: transport delay: Max %v is negative", d.Max)
	case d.Bound() > 10*time.Second:
		return fmt.Errorf("dyno: transport delay: up to %v, more than the 10s limit", d.Bound())
	}
	return nil
}

// At returns the delay at engine speed rpm.
func (d TransportDelay) At(rpm float64) time.Duration {
	sec := d.Fixed.Seconds()
	if d.PerRPM > 0 {
		if !(rpm >= delayMinRPM) { // also catches NaN
			rpm = delayMinRPM
		}
		sec += d.PerRPM / rpm
	}
	out := time.Duration(math.Round(sec * float64(time.Second)))
	if d.Max > 0 && out > d.Max {
		out = d.Max
	}
	return out
}

// Bound returns the largest delay At can return.
func (d TransportDelay) Bound() time.Duration { return d.At(0) }

// IsZero reports whether d is no delay at all.
func (d TransportDelay) IsZero() bool { return d.Fixed == 0 && d.PerRPM == 0 }
