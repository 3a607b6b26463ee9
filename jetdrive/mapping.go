package jetdrive

import (
	"fmt"
	"strings"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/jetdrive/wire"
)

// Field is a destination in a dyno.Sample: a channel and, for per-cylinder
// channels, the cylinder index (0 = front of a V-twin).
type Field struct {
	Channel  dyno.Channel
	Cylinder int
}

// String returns "rpm" or, for a per-cylinder channel, "afr[1]".
func (f Field) String() string {
	if isPerCylinder(f.Channel) {
		return fmt.Sprintf("%s[%d]", f.Channel, f.Cylinder)
	}
	return f.Channel.String()
}

func isPerCylinder(c dyno.Channel) bool {
	switch c {
	case dyno.ChanAFR, dyno.ChanAFRCommanded, dyno.ChanLambda, dyno.ChanSpark, dyno.ChanKnock:
		return true
	}
	return false
}

// Valid reports whether f names a settable field of dyno.Sample.
func (f Field) Valid() bool {
	if f.Channel == dyno.ChanTime || f.Channel > dyno.ChanDrumForce {
		return false
	}
	if isPerCylinder(f.Channel) {
		return f.Cylinder >= 0 && f.Cylinder < dyno.MaxCylinders
	}
	return f.Cylinder == 0
}

func (f Field) ptr(s *dyno.Sample) *float64 {
	switch f.Channel {
	case dyno.ChanRPM:
		return &s.RPM
	case dyno.ChanMAP:
		return &s.MAP
	case dyno.ChanTPS:
		return &s.TPS
	case dyno.ChanAFR:
		return &s.AFR[f.Cylinder]
	case dyno.ChanAFRCommanded:
		return &s.AFRCommanded[f.Cylinder]
	case dyno.ChanLambda:
		return &s.Lambda[f.Cylinder]
	case dyno.ChanSpark:
		return &s.Spark[f.Cylinder]
	case dyno.ChanKnock:
		return &s.Knock[f.Cylinder]
	case dyno.ChanTorque:
		return &s.Torque
	case dyno.ChanPower:
		return &s.Power
	case dyno.ChanIAT:
		return &s.IAT
	case dyno.ChanECT:
		return &s.ECT
	case dyno.ChanBaro:
		return &s.Baro
	case dyno.ChanDrumSpeed:
		return &s.DrumSpeed
	case dyno.ChanDrumForce:
		return &s.DrumForce
	}
	return nil
}

// Set stores v into f of s; an invalid field is ignored.
func (f Field) Set(s *dyno.Sample, v float64) {
	if f.Valid() {
		*f.ptr(s) = v
	}
}

// Get returns f of s, or dyno.Missing for an invalid field.
func (f Field) Get(s *dyno.Sample) float64 {
	if f.Valid() {
		return *f.ptr(s)
	}
	return dyno.Missing
}

// ChannelRef identifies one channel of one provider for mapping.
type ChannelRef struct {
	Host     uint16
	Provider string
	ID       uint16
	Name     string
	Unit     wire.Unit
}

// Assignment maps one provider channel to one Sample field.
type Assignment struct {
	Field  Field
	Source ChannelRef
	// Confidence is 0..1: 0.5 for the expected unit, 0.3 for a specific name
	// match (0.15 for a generic one; 0.5 for spark and knock, which have no
	// JDUnit), 0.2 when no other channel scores higher; 1 for a user override.
	Confidence float64
	// Override is true when the assignment came from an Override.
	Override bool
	// Warning is "" or why the confidence is not high.
	Warning string
	// Convert converts a wire value to the field's unit; nil means
	// Source.Unit.ToLibrary.
	Convert func(float64) float64
}

// Override is a user's mapping rule; it wins over auto-mapping.
type Override struct {
	Field Field
	// Host selects the provider by host ID; 0 matches any.
	Host uint16
	// Provider selects the provider by name (case-insensitive); "" any.
	Provider string
	// Channel is the channel name (case-insensitive, exact).
	Channel string
	// Convert converts the wire value to the field's unit; nil converts by
	// the channel's JDUnit (Unit.ToLibrary).
	Convert func(float64) float64
}

func (o Override) matches(c ChannelRef) bool {
	return (o.Host == 0 || o.Host == c.Host) &&
		(o.Provider == "" || strings.EqualFold(o.Provider, c.Provider)) &&
		strings.EqualFold(o.Channel, c.Name)
}

type fieldRule struct {
	field    Field
	unit     wire.Unit // the expected unit; UnitNone gives no unit credit
	specific []string  // +0.3
	generic  []string  // +0.15
	exclude  []string  // a name with one of these never maps
	needName bool      // the unit alone is not enough
	needUnit bool      // the name alone is not enough
}

// rear marks names of a second (rear) cylinder's channel.
var rear = []string{"2", "rear"}

// fieldRules are tried in order; each channel is used at most once.
var fieldRules = []fieldRule{
	{field: Field{Channel: dyno.ChanRPM}, unit: wire.UnitEngineSpeed, specific: []string{"engine rpm", "motor rpm", "engine speed"}, generic: []string{"rpm"}, exclude: []string{"drum", "roller"}},
	{field: Field{Channel: dyno.ChanAFR}, unit: wire.UnitAFR, specific: []string{"afr 1", "afr front", "air/fuel ratio 1", "a/f 1", "afr meas f", "afr f"}, generic: []string{"afr", "air/fuel", "a/f"}, exclude: append([]string{"target", "cmd", "command", "lambda"}, rear...)},
	{field: Field{Channel: dyno.ChanAFR, Cylinder: 1}, unit: wire.UnitAFR, specific: []string{"afr 2", "afr rear", "air/fuel ratio 2", "a/f 2", "afr meas r", "afr r"}, exclude: []string{"target", "cmd", "command", "lambda"}},
	{field: Field{Channel: dyno.ChanLambda}, unit: wire.UnitLambda, specific: []string{"lambda 1", "lambda front"}, generic: []string{"lambda"}, exclude: append([]string{"target"}, rear...)},
	{field: Field{Channel: dyno.ChanLambda, Cylinder: 1}, unit: wire.UnitLambda, specific: []string{"lambda 2", "lambda rear"}, exclude: []string{"target"}},
	{field: Field{Channel: dyno.ChanAFRCommanded}, unit: wire.UnitAFR, specific: []string{"afr target", "target afr", "commanded afr", "afr cmd", "afr commanded"}, needName: true, exclude: rear},
	{field: Field{Channel: dyno.ChanAFRCommanded, Cylinder: 1}, unit: wire.UnitAFR, specific: []string{"afr target 2", "afr target rear", "target afr 2", "target afr rear", "afr cmd 2"}, needName: true},
	{field: Field{Channel: dyno.ChanMAP}, unit: wire.UnitPressure, specific: []string{"map", "manifold"}, needName: true},
	{field: Field{Channel: dyno.ChanTPS}, unit: wire.UnitPercentage, specific: []string{"tps", "throttle"}, needName: true},
	{field: Field{Channel: dyno.ChanTorque}, unit: wire.UnitTorque, specific: []string{"torque", "trq"}},
	{field: Field{Channel: dyno.ChanPower}, unit: wire.UnitPower, specific: []string{"horsepower", "power", "bhp", "hp"}},
	{field: Field{Channel: dyno.ChanIAT}, unit: wire.UnitTemperature, specific: []string{"iat", "intake air", "intake temp", "air temp"}, needName: true, needUnit: true},
	{field: Field{Channel: dyno.ChanECT}, unit: wire.UnitTemperature, specific: []string{"ect", "coolant", "engine temp", "water temp", "cht"}, needName: true, needUnit: true},
	{field: Field{Channel: dyno.ChanBaro}, unit: wire.UnitPressure, specific: []string{"baro", "atmospheric", "ambient pressure"}, generic: []string{"pressure"}, needName: true, needUnit: true, exclude: []string{"manifold", "map", "internal", "oil", "fuel"}},
	{field: Field{Channel: dyno.ChanSpark}, unit: wire.UnitNone, specific: []string{"spark 1", "spark front", "spark advance", "ignition advance", "timing 1", "timing front"}, needName: true, exclude: rear},
	{field: Field{Channel: dyno.ChanSpark, Cylinder: 1}, unit: wire.UnitNone, specific: []string{"spark 2", "spark rear", "timing 2", "timing rear"}, needName: true},
	{field: Field{Channel: dyno.ChanKnock}, unit: wire.UnitNone, specific: []string{"knock 1", "knock front", "knock retard"}, needName: true, exclude: rear},
	{field: Field{Channel: dyno.ChanKnock, Cylinder: 1}, unit: wire.UnitNone, specific: []string{"knock 2", "knock rear"}, needName: true},
	{field: Field{Channel: dyno.ChanDrumSpeed}, unit: wire.UnitSpeed, specific: []string{"drum speed", "roller speed", "speed 1"}, generic: []string{"speed"}, exclude: []string{"engine"}},
	{field: Field{Channel: dyno.ChanDrumForce}, unit: wire.UnitForce, specific: []string{"force drum 1", "drum force", "force 1"}, generic: []string{"force"}},
}

func containsAny(s string, subs []string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// score returns the unit + name score of c for r, 0 when c cannot map.
func (r *fieldRule) score(c ChannelRef) float64 {
	name := strings.ToLower(c.Name)
	if containsAny(name, r.exclude) || (r.needUnit && c.Unit != r.unit) {
		return 0
	}
	var s, n float64
	if r.unit != wire.UnitNone && c.Unit == r.unit {
		s = 0.5
	}
	switch {
	case containsAny(name, r.specific):
		n = 0.3
	case containsAny(name, r.generic):
		n = 0.15
	}
	if n == 0 && r.needName {
		return 0
	}
	if r.unit == wire.UnitNone && n > 0 {
		n += 0.2 // spark/knock have no JDUnit: the name is all there is
	}
	return s + n
}

// AutoMap assigns channels to Sample fields: overrides first (confidence
// 1), then every field rule in turn takes the best-scoring unused channel
// if its confidence is at least 0.5. NoUnit channels get no unit credit
// and temperatures, pressures, throttle and spark/knock need a name match
// (the predecessor mapped "Sampling" to spark and any temperature to ECT).
func AutoMap(chans []ChannelRef, overrides []Override) []Assignment {
	var out []Assignment
	used := make([]bool, len(chans))
	taken := map[Field]bool{}
	for _, o := range overrides {
		if !o.Field.Valid() || taken[o.Field] {
			continue
		}
		for i, c := range chans {
			if !used[i] && o.matches(c) {
				used[i], taken[o.Field] = true, true
				out = append(out, Assignment{Field: o.Field, Source: c, Confidence: 1, Override: true, Convert: o.Convert})
				break
			}
		}
	}
	scores := make([]float64, len(chans))
	for ri := range fieldRules {
		r := &fieldRules[ri]
		if taken[r.field] {
			continue
		}
		best := 0.0
		for i, c := range chans {
			scores[i] = r.score(c)
			if !used[i] {
				best = max(best, scores[i])
			}
		}
		pick, pickScore := -1, 0.0
		for i := range chans {
			if used[i] || scores[i] == 0 {
				continue
			}
			s := scores[i]
			if s >= best {
				s += 0.2
			}
			if s > pickScore {
				pick, pickScore = i, s
			}
		}
		if pick < 0 || pickScore < 0.5 {
			continue
		}
		used[pick], taken[r.field] = true, true
		a := Assignment{Field: r.field, Source: chans[pick], Confidence: min(1, pickScore)}
		switch {
		case a.Confidence < 0.7:
			a.Warning = "medium confidence: check this channel"
		case r.unit != wire.UnitNone && chans[pick].Unit != r.unit:
			a.Warning = fmt.Sprintf("unit %v, expected %v: values are used unconverted", chans[pick].Unit, r.unit)
		}
		out = append(out, a)
	}
	return out
}
