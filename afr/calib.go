package afr

import (
	"fmt"
	"math"
)

// RawPerAFR is the Innovate DLG-1 scale: AFR = raw / 409.6 (ve-afr spec §1.10).
const RawPerAFR = 409.6

// FreeAir is the reading a wideband should show in free air (20.9, the
// oxygen percentage the predecessor's calibration guide uses as its
// reference).
const FreeAir = 20.9

// Calibration corrects a wideband channel: AFR = (reading + Offset) ×
// Multiplier. The zero value is the identity (a zero Multiplier means 1).
type Calibration struct {
	Offset     float64
	Multiplier float64
}

// Apply returns the corrected AFR for a reading. Missing stays Missing.
func (c Calibration) Apply(reading float64) float64 {
	m := c.Multiplier
	if m == 0 {
		m = 1
	}
	return (reading + c.Offset) * m
}

// ApplyRaw converts a raw DLG-1 count to AFR (raw / 409.6) and corrects it.
func (c Calibration) ApplyRaw(raw float64) float64 { return c.Apply(raw / RawPerAFR) }

// Verdict grades a free-air calibration reading.
type Verdict uint8

// The verdicts of FreeAirCalibration: Good within 20.5–21.3, Acceptable
// within 19.9–22.9, Bad otherwise.
const (
	Bad Verdict = iota
	Acceptable
	Good
)

// String returns "good", "acceptable" or "bad".
func (v Verdict) String() string {
	switch v {
	case Good:
		return "good"
	case Acceptable:
		return "acceptable"
	}
	return "bad"
}

// FreeAirCalibration returns the calibration that makes a sensor reading
// `measured` in free air read FreeAir (offset = 20.9 − measured), and how
// trustworthy the sensor is. A reading that is not a finite number is an
// error.
func FreeAirCalibration(measured float64) (Calibration, Verdict, error) {
	if math.IsNaN(measured) || math.IsInf(measured, 0) {
		return Calibration{}, Bad, fmt.Errorf("afr: free-air reading %v is not a number", measured)
	}
	v := Bad
	switch {
	case measured >= 20.5 && measured <= 21.3:
		v = Good
	case measured >= 19.9 && measured <= 22.9:
		v = Acceptable
	}
	return Calibration{Offset: FreeAir - measured, Multiplier: 1}, v, nil
}

// StoichMultiplier returns the optional multiplier that makes a sensor
// reading `measured` at a known stoichiometric mixture read stoich
// (14.7 / reading for gasoline).
func StoichMultiplier(stoich, measured float64) (float64, error) {
	if !(measured > 0) || math.IsInf(measured, 0) || !(stoich > 0) || math.IsInf(stoich, 0) {
		return 0, fmt.Errorf("afr: stoich multiplier: need positive readings, got stoich %v and measured %v", stoich, measured)
	}
	return stoich / measured, nil
}
