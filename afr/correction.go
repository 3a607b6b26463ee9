package afr

import (
	"errors"
	"fmt"
	"math"
)

// ErrorPoints returns the AFR error in AFR points, measured − target: lean is
// positive. Missing in, Missing out.
func ErrorPoints(measured, target float64) float64 { return measured - target }

// ErrorPct returns the error in percent of the target, (measured − target) /
// target × 100: lean is positive, and it equals (V2 multiplier − 1) × 100.
func ErrorPct(measured, target float64) float64 { return (measured - target) / target * 100 }

// ErrorPctLegacy returns the predecessor's Pipeline A error,
// (commanded − measured) / measured × 100, in percent: RICH is positive and
// the denominator is the measured AFR (ve-afr spec §4.1, §7.1). Measured 14
// against commanded 13 gives −7.142857 %. Use it only to reproduce the
// predecessor's files; its sign is the opposite of the physical correction.
func ErrorPctLegacy(measured, commanded float64) float64 {
	return (commanded - measured) / measured * 100
}

// Version selects the VE-correction formula. The zero value is V2.
type Version uint8

const (
	// V2 is measured / target: the physically right multiplier (AFR is air
	// over fuel, so a cell reading 10 % lean needs 10 % more fuel) and the
	// default (predecessor's ve_math v2.0.0).
	V2 Version = iota
	// V1 is 1 + (measured − target) × 0.07: the predecessor's 7 % per AFR
	// point (ve_math v1.0.0), kept for compatibility.
	V1
)

// String returns the predecessor's version label, "2.0.0" or "1.0.0".
func (v Version) String() string {
	switch v {
	case V2:
		return "2.0.0"
	case V1:
		return "1.0.0"
	}
	return fmt.Sprintf("Version(%d)", uint8(v))
}

// V1PerPoint is V1's multiplier change per AFR point.
const V1PerPoint = 0.07

// MultiplierV1 returns 1 + (measured − target) × 0.07, unvalidated and
// unclamped.
func MultiplierV1(measured, target float64) float64 {
	return 1 + (measured-target)*V1PerPoint
}

// MultiplierV2 returns measured / target, unvalidated and unclamped.
func MultiplierV2(measured, target float64) float64 { return measured / target }

// Defaults of MultiplierConfig (ve-afr spec §4.8).
const (
	DefaultMaxPct = 15.0
	DefaultMinAFR = 9.0
	DefaultMaxAFR = 20.0
)

// ErrInvalidAFR is wrapped by every *InputError.
var ErrInvalidAFR = errors.New("afr: invalid AFR")

// InputError reports an AFR that a multiplier refuses: Missing, not finite,
// or outside the configured range. errors.Is(err, ErrInvalidAFR) holds.
type InputError struct {
	Which    string // "measured" or "target"
	Value    float64
	Min, Max float64
}

func (e *InputError) Error() string {
	return fmt.Sprintf("afr: invalid %s AFR %v: want a number in [%v, %v]", e.Which, e.Value, e.Min, e.Max)
}

// Unwrap returns ErrInvalidAFR.
func (e *InputError) Unwrap() error { return ErrInvalidAFR }

// MultiplierConfig computes VE-correction multipliers the way the
// predecessor's ve_math did (ve-afr spec §4.8). The zero value is its default:
// V2, inputs checked against [9, 20] inclusive, the result clamped to ±15 %.
type MultiplierConfig struct {
	// Version selects the formula; the zero value is V2.
	Version Version
	// MaxPct bounds the result to [1 − MaxPct/100, 1 + MaxPct/100]. Zero
	// means DefaultMaxPct.
	MaxPct float64
	// NoClamp returns the multiplier unclamped.
	NoClamp bool
	// MinAFR and MaxAFR bound both inputs, inclusive. Zero means
	// DefaultMinAFR and DefaultMaxAFR.
	MinAFR, MaxAFR float64
	// Env multiplies the unclamped multiplier before the clamp: an
	// environmental fuel factor (the predecessor's
	// EnvironmentalCorrector total). Zero means 1.
	Env float64
}

func (c MultiplierConfig) withDefaults() MultiplierConfig {
	if c.MaxPct == 0 {
		c.MaxPct = DefaultMaxPct
	}
	if c.MinAFR == 0 {
		c.MinAFR = DefaultMinAFR
	}
	if c.MaxAFR == 0 {
		c.MaxAFR = DefaultMaxAFR
	}
	if c.Env == 0 {
		c.Env = 1
	}
	return c
}

// Validate reports whether c is usable: MaxPct > 0, 0 < MinAFR < MaxAFR,
// Env > 0, all finite, and a known Version.
func (c MultiplierConfig) Validate() error {
	d := c.withDefaults()
	fin := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case d.Version != V1 && d.Version != V2:
		return fmt.Errorf("afr: multiplier config: unknown %v", d.Version)
	case !fin(d.MaxPct) || d.MaxPct <= 0:
		return fmt.Errorf("afr: multiplier config: MaxPct %v must be > 0", c.MaxPct)
	case !fin(d.MinAFR) || !fin(d.MaxAFR) || d.MinAFR <= 0 || d.MinAFR >= d.MaxAFR:
		return fmt.Errorf("afr: multiplier config: AFR range [%v, %v] must satisfy 0 < min < max", d.MinAFR, d.MaxAFR)
	case !fin(d.Env) || d.Env <= 0:
		return fmt.Errorf("afr: multiplier config: Env %v must be > 0", c.Env)
	}
	return nil
}

// Bounds returns the clamp interval [1 − MaxPct/100, 1 + MaxPct/100].
func (c MultiplierConfig) Bounds() (lo, hi float64) {
	d := c.withDefaults()
	return 1.0 - d.MaxPct/100, 1.0 + d.MaxPct/100
}

// Multiplier returns the VE multiplier for a cell that measured `measured`
// against `target`: above 1 means lean, add fuel. It fails with an
// *InputError when an input is Missing, not finite or outside
// [MinAFR, MaxAFR], and with a plain error when c itself is invalid.
func (c MultiplierConfig) Multiplier(measured, target float64) (float64, error) {
	if err := c.Validate(); err != nil {
		return math.NaN(), err
	}
	d := c.withDefaults()
	for _, in := range [...]struct {
		which string
		v     float64
	}{{"measured", measured}, {"target", target}} {
		if math.IsNaN(in.v) || math.IsInf(in.v, 0) || in.v < d.MinAFR || in.v > d.MaxAFR {
			return math.NaN(), &InputError{Which: in.which, Value: in.v, Min: d.MinAFR, Max: d.MaxAFR}
		}
	}
	var m float64
	if d.Version == V1 {
		m = MultiplierV1(measured, target)
	} else {
		m = MultiplierV2(measured, target)
	}
	if d.Env != 1 {
		m *= d.Env
	}
	if !d.NoClamp {
		lo, hi := c.Bounds()
		m = min(max(m, lo), hi)
	}
	return m, nil
}

// Multiplier returns the default multiplier: measured / target (V2), inputs
// in [9, 20], clamped to ±15 %.
func Multiplier(measured, target float64) (float64, error) {
	return MultiplierConfig{}.Multiplier(measured, target)
}

// PctFromMultiplier returns (m − 1) × 100, the correction in percent.
func PctFromMultiplier(m float64) float64 { return (m - 1) * 100 }

// MultiplierFromPct returns 1 + pct/100.
func MultiplierFromPct(pct float64) float64 { return 1 + pct/100 }

// Comparison is the result of CompareVersions.
type Comparison struct {
	V1, V2     float64 // the unclamped multipliers
	Difference float64 // |V2 − V1|
	// DifferencePct is Difference / V2 × 100.
	DifferencePct float64
}

// CompareVersions computes both unclamped multipliers for the same inputs,
// validated as MultiplierConfig{} does, as the predecessor's
// compare_versions did.
func CompareVersions(measured, target float64) (Comparison, error) {
	v1, err := MultiplierConfig{Version: V1, NoClamp: true}.Multiplier(measured, target)
	if err != nil {
		return Comparison{}, err
	}
	v2, err := MultiplierConfig{Version: V2, NoClamp: true}.Multiplier(measured, target)
	if err != nil {
		return Comparison{}, err
	}
	diff := math.Abs(v2 - v1)
	return Comparison{V1: v1, V2: v2, Difference: diff, DifferencePct: diff / v2 * 100}, nil
}
