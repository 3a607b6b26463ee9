package dyno

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Health is a verdict on what a log channel carries.
type Health uint8

// The health verdicts, from no opinion to unusable.
const (
	// HealthUnknown: too few values to judge.
	HealthUnknown Health = iota
	// HealthOK: live values in a plausible range.
	HealthOK
	// HealthSuspect: usable, with a warning (some sentinel values, a few
	// impossible jumps); the reason says what.
	HealthSuspect
	// HealthDead: the channel carries no measurement (flat, a sentinel,
	// pegged, a sensor in free air) and is not used.
	HealthDead
)

var healthNames = [...]string{"unknown", "ok", "suspect", "dead"}

// String returns "unknown", "ok", "suspect" or "dead".
func (h Health) String() string {
	if int(h) < len(healthNames) {
		return healthNames[h]
	}
	return fmt.Sprintf("Health(%d)", int(h))
}

// MarshalText writes the verdict's name.
func (h Health) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText reads a verdict's name.
func (h *Health) UnmarshalText(b []byte) error {
	for i, n := range healthNames {
		if n == string(b) {
			*h = Health(i)
			return nil
		}
	}
	return errors.New("dyno: unknown health " + string(b))
}

// ChannelReport says how a source's channels were found: for every channel
// used, the column it came from, its unit and why, what values it showed
// and whether it is healthy; for every column that looked like a candidate
// but was not used, why not. Readers build one from a bounded prefix of
// the log (see dynolog); analyses carry it into their results, so a tuner
// can see what the numbers rest on.
type ChannelReport struct {
	// Format is the log format, as Layout.Format.
	Format string `json:"format"`
	// Rows is how many data rows the verdicts rest on (a bounded prefix, or
	// the whole log when it is short).
	Rows int `json:"rows_judged"`
	// Channels lists the channels used, in channel order.
	Channels []ChannelInfo `json:"channels"`
	// Unused lists the candidate columns that were not used.
	Unused []UnusedColumn `json:"unused,omitempty"`
	// Notes are remarks on the log as a whole (a time column rebuilt, a
	// units row in an unexpected encoding, ...).
	Notes []string `json:"notes,omitempty"`
}

// ChannelInfo is one channel (and cylinder) a source provides.
type ChannelInfo struct {
	Channel Channel `json:"channel"`
	// Cylinder is the slot (0 front, 1 rear, ...) or AllCylinders (-1) for
	// one column feeding every cylinder.
	Cylinder int `json:"cylinder"`
	// Column is the header of the log column, as written; ColumnIndex its
	// 1-based position (0 for a derived channel).
	Column      string `json:"column"`
	ColumnIndex int    `json:"column_index"`
	// Unit is the unit the values were read in; UnitSource says who said so
	// ("header", "units row", "option", "inferred", "format", "channel") and
	// UnitReason why, when it was inferred or overruled.
	Unit       Unit   `json:"unit"`
	UnitSource string `json:"unit_source"`
	UnitReason string `json:"unit_reason,omitempty"`
	// Min and Max are the values seen, converted to the channel's unit
	// (zero when Values, the number of values seen, is zero).
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Values int     `json:"values"`
	// Health is the verdict and HealthReason the evidence for it.
	Health       Health `json:"health"`
	HealthReason string `json:"health_reason,omitempty"`
	// Combined is set for a measured AFR from one wideband for all
	// cylinders (a collector probe).
	Combined bool `json:"combined,omitempty"`
	// Derived says how a channel without a column of its own was computed
	// ("torque from power and rpm").
	Derived string `json:"derived,omitempty"`
}

// AllCylinders is the Cylinder of a channel that one column feeds for
// every cylinder.
const AllCylinders = -1

// UnusedColumn is a column that matched a channel but was not used.
type UnusedColumn struct {
	Column      string  `json:"column"`
	ColumnIndex int     `json:"column_index"`
	Channel     Channel `json:"channel"`
	Cylinder    int     `json:"cylinder"`
	// Reason says why: dead, another column preferred, a unit that cannot
	// be converted, ...
	Reason string `json:"reason"`
	Health Health `json:"health"`
	// Min and Max are the values seen, in Unit (the channel's unit, or
	// the column's own when it cannot be converted); zero when none.
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	Unit Unit    `json:"unit"`
}

// Reporter is implemented by sources that can say how they found their
// channels (the log readers do; a live source may re-judge as data
// arrives, so each call returns the current report).
type Reporter interface {
	ChannelReport() *ChannelReport
}

// Find returns the information on channel c (cylinder cyl, or the
// AllCylinders column feeding it), or nil.
func (r *ChannelReport) Find(c Channel, cyl int) *ChannelInfo {
	if r == nil {
		return nil
	}
	var all *ChannelInfo
	for i := range r.Channels {
		ci := &r.Channels[i]
		if ci.Channel != c {
			continue
		}
		if ci.Cylinder == cyl || !c.PerCylinder() {
			return ci
		}
		if ci.Cylinder == AllCylinders {
			all = ci
		}
	}
	return all
}

// UnusedFor returns the unused candidate columns of channel c.
func (r *ChannelReport) UnusedFor(c Channel) []UnusedColumn {
	if r == nil {
		return nil
	}
	var out []UnusedColumn
	for _, u := range r.Unused {
		if u.Channel == c {
			out = append(out, u)
		}
	}
	return out
}

// String renders the report as the text examples/analyze prints: one line
// per channel used, then the columns left out, then the notes.
func (r *ChannelReport) String() string {
	if r == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "channels (%s format, verdicts on %d rows):\n", r.Format, r.Rows)
	for _, c := range r.Channels {
		name := c.Channel.String()
		if c.Channel.PerCylinder() {
			name += cylinderSuffix(c.Cylinder)
		}
		src := c.Column
		if c.Derived != "" {
			src = "derived: " + c.Derived
		} else {
			src = fmt.Sprintf("%q (col %d)", src, c.ColumnIndex)
		}
		unit := c.Unit.String()
		if c.UnitSource != "" {
			unit += " [" + c.UnitSource
			if c.UnitReason != "" {
				unit += ": " + c.UnitReason
			}
			unit += "]"
		}
		values := rangeText(c.Min, c.Max, c.Values) + unitSuffix(c.Channel, c.Unit)
		if c.Derived != "" {
			values = "in " + CanonicalUnit(c.Channel).String()
		}
		fmt.Fprintf(&b, "  %-16s %s, %s, %s, %s", name, src, unit, values, c.Health)
		if c.HealthReason != "" {
			fmt.Fprintf(&b, " (%s)", c.HealthReason)
		}
		if c.Combined {
			b.WriteString(", one sensor for all cylinders: combined correction")
		}
		b.WriteByte('\n')
	}
	if len(r.Unused) > 0 {
		b.WriteString("not used:\n")
		for _, u := range r.Unused {
			name := u.Channel.String()
			if u.Channel.PerCylinder() {
				name += cylinderSuffix(u.Cylinder)
			}
			fmt.Fprintf(&b, "  %-16s %q (col %d), %s: %s\n", name, u.Column, u.ColumnIndex, rangeText(u.Min, u.Max, 1)+" "+u.Unit.String(), u.Reason)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	return b.String()
}

// unitSuffix names the unit a report's ranges are in: the channel's own.
func unitSuffix(c Channel, read Unit) string {
	u := CanonicalUnit(c)
	if c == ChanLoad {
		u = read
		if u.dim() == dimPressure {
			u = UnitKPa
		}
	}
	if u == UnitAuto {
		return ""
	}
	return " " + u.String()
}

func cylinderSuffix(cyl int) string {
	switch cyl {
	case AllCylinders:
		return " (all)"
	case Front:
		return " (front/1)"
	case Rear:
		return " (rear/2)"
	}
	return fmt.Sprintf(" (%d)", cyl+1)
}

func rangeText(lo, hi float64, n int) string {
	if n == 0 || math.IsNaN(lo) || math.IsNaN(hi) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return "no values"
	}
	if lo == hi {
		return "constant " + trimFloat(lo)
	}
	return trimFloat(lo) + ".." + trimFloat(hi)
}

func trimFloat(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.3g", v)
}
