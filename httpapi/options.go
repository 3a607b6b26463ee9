package httpapi

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dynoai/dynoai/afr"
	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/ve"
)

// AnalysisOptions are the validated options of one analysis, parsed from the
// form fields of POST /api/analyze and stored as the run's settings.
type AnalysisOptions struct {
	SmoothPasses  int     `json:"smooth_passes"`   // K1/K2 passes 0..5, 0 = no smoothing
	ClampPercent  float64 `json:"clamp_percent"`   // 0 < clamp <= 50
	MinSamples    float64 `json:"min_samples"`     // 1..10000
	Weighting     string  `json:"weighting"`       // equal, torque, power
	Attribution   string  `json:"attribution"`     // bilinear, nearest
	Fuel          string  `json:"fuel"`            // afr.FuelByName
	SensorDelayMS int     `json:"sensor_delay_ms"` // 0..2000
	MaxBadRows    int     `json:"max_bad_rows"`    // -1 (any) .. 1000000
	Vehicle       string  `json:"vehicle,omitempty"`
}

// DefaultAnalysisOptions are the options of a form that sets none.
func DefaultAnalysisOptions() AnalysisOptions {
	return AnalysisOptions{ClampPercent: 7, MinSamples: 5, Weighting: "equal", Attribution: "bilinear", Fuel: "gasoline"}
}

// OptionError names a form field that is unknown, malformed or out of range.
type OptionError struct {
	Field  string
	Value  string // shortened to 40 bytes
	Reason string
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("field %q (value %q): %s", e.Field, e.Value, e.Reason)
}

// Predecessor fields without an equivalent in the analyzer: they are
// accepted only at the value that asks for nothing the analyzer does not
// do, so a client never believes an option was applied when it was not.
var neutralFields = map[string]string{
	"rearBias":             "0",
	"rearRuleDeg":          "2",
	"hotExtra":             "-1",
	"decelManagement":      "false",
	"decelSeverity":        "medium",
	"decelRpmMin":          "1500",
	"decelRpmMax":          "5500",
	"balanceCylinders":     "false",
	"balanceMode":          "equalize",
	"balanceMaxCorrection": "3",
}

// ParseAnalysisOptions validates the form fields of an analysis. Unknown
// fields, malformed values and values out of range are an *OptionError.
func ParseAnalysisOptions(form map[string]string) (AnalysisOptions, error) {
	o := DefaultAnalysisOptions()
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first error is deterministic
	for _, k := range keys {
		v := strings.TrimSpace(form[k])
		bad := func(reason string) error {
			s := v
			if len(s) > 40 {
				s = s[:40]
			}
			return &OptionError{Field: k, Value: strings.ToValidUTF8(s, "?"), Reason: reason}
		}
		intIn := func(lo, hi int) (int, error) {
			n, err := strconv.Atoi(v)
			if err != nil || n < lo || n > hi {
				return 0, bad(fmt.Sprintf("want an integer in %d..%d", lo, hi))
			}
			return n, nil
		}
		floatIn := func(lo, hi float64, loOpen bool) (float64, error) {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(f) || f > hi || f < lo || (loOpen && f == lo) {
				op := "<="
				if loOpen {
					op = "<"
				}
				return 0, bad(fmt.Sprintf("want a number with %g %s x <= %g", lo, op, hi))
			}
			return f, nil
		}
		var err error
		switch k {
		case "":
			err = &OptionError{Field: "(unnamed)", Value: strings.ToValidUTF8(v[:min(len(v), 40)], "?"), Reason: "a form field needs a name"}
		case "smoothPasses", "smooth_passes":
			o.SmoothPasses, err = intIn(0, 5)
		case "clamp", "clamp_percent":
			o.ClampPercent, err = floatIn(0, 50, true)
		case "minSamples", "min_samples":
			o.MinSamples, err = floatIn(1, 10000, false)
		case "weighting":
			switch strings.ToLower(v) {
			case "equal", "torque", "power":
				o.Weighting = strings.ToLower(v)
			default:
				err = bad("want equal, torque or power")
			}
		case "attribution":
			switch strings.ToLower(v) {
			case "bilinear", "nearest":
				o.Attribution = strings.ToLower(v)
			default:
				err = bad("want bilinear or nearest")
			}
		case "fuel":
			f, ferr := afr.FuelByName(strings.ToLower(v))
			if ferr != nil {
				names := []string{}
				for _, f := range afr.Fuels() {
					names = append(names, f.Name)
				}
				err = bad("want one of " + strings.Join(names, ", "))
			} else {
				o.Fuel = f.Name
			}
		case "sensorDelayMs", "sensor_delay_ms":
			o.SensorDelayMS, err = intIn(0, 2000)
		case "maxBadRows", "max_bad_rows":
			o.MaxBadRows, err = intIn(-1, 1_000_000)
		case "vehicle":
			if !utf8.ValidString(v) || len(v) > 200 || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				err = bad("want at most 200 bytes of printable UTF-8")
			} else {
				o.Vehicle = v
			}
		default:
			neutral, ok := neutralFields[k]
			if !ok {
				err = bad("unknown field")
				break
			}
			if !sameNeutral(v, neutral) {
				err = bad("not supported by this analyzer; only " + neutral + " (the predecessor's default) is accepted")
			}
		}
		if err != nil {
			return AnalysisOptions{}, err
		}
	}
	return o, nil
}

func sameNeutral(v, neutral string) bool {
	if strings.EqualFold(v, neutral) {
		return true
	}
	if b, err := strconv.ParseBool(strings.ToLower(v)); err == nil {
		nb, nerr := strconv.ParseBool(neutral)
		return nerr == nil && b == nb
	}
	a, err1 := strconv.ParseFloat(v, 64)
	b, err2 := strconv.ParseFloat(neutral, 64)
	return err1 == nil && err2 == nil && a == b
}

// VE returns the analyzer options o stands for.
func (o AnalysisOptions) VE() (ve.Options, error) {
	var v ve.Options
	v.ClampPercent = o.ClampPercent
	v.MinSamples = o.MinSamples
	if o.SmoothPasses > 0 {
		v.Smoothing = ve.Smoothing{Kernels: true, Passes: o.SmoothPasses}
	}
	switch o.Weighting {
	case "equal", "":
		v.Weighting = ve.WeightEqual
	case "torque":
		v.Weighting = ve.WeightTorque
	case "power":
		v.Weighting = ve.WeightPower
	default:
		return v, &OptionError{Field: "weighting", Value: o.Weighting, Reason: "unknown"}
	}
	switch o.Attribution {
	case "bilinear", "":
		v.Attribution = ve.Bilinear
	case "nearest":
		v.Attribution = ve.NearestCell
	default:
		return v, &OptionError{Field: "attribution", Value: o.Attribution, Reason: "unknown"}
	}
	fuel, err := afr.FuelByName(o.Fuel)
	if err != nil {
		return v, &OptionError{Field: "fuel", Value: o.Fuel, Reason: err.Error()}
	}
	v.Fuel = fuel
	v.SensorDelay = dyno.TransportDelay{Fixed: time.Duration(o.SensorDelayMS) * time.Millisecond}
	return v, nil
}
