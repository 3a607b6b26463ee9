package jetstream

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Run is one item of Jetstream's run list. Optional fields the server leaves
// out are zero.
type Run struct {
	ID              string    `json:"id"`
	Timestamp       time.Time `json:"timestamp"` // when Jetstream recorded the run; zero if absent or unreadable
	Vehicle         string    `json:"vehicle,omitempty"`
	DynoType        string    `json:"dyno_type,omitempty"`
	DurationSeconds int       `json:"duration_seconds,omitempty"`
	DataPoints      int       `json:"data_points,omitempty"`
	Processed       bool      `json:"processed"`
}

// wireRun is Run as the server sends it: the timestamp is text that may be
// RFC 3339, Python's isoformat with or without an offset, or empty.
type wireRun struct {
	ID              string  `json:"id"`
	Timestamp       string  `json:"timestamp"`
	Vehicle         string  `json:"vehicle"`
	DynoType        string  `json:"dyno_type"`
	DurationSeconds float64 `json:"duration_seconds"`
	DataPoints      float64 `json:"data_points"`
	Processed       bool    `json:"processed"`
}

func (w wireRun) run() Run {
	ts, _ := ParseTimestamp(w.Timestamp)
	return Run{
		ID: w.ID, Timestamp: ts, Vehicle: w.Vehicle, DynoType: w.DynoType,
		DurationSeconds: int(w.DurationSeconds), DataPoints: int(w.DataPoints), Processed: w.Processed,
	}
}

// UnmarshalJSON reads a run list item, tolerating the timestamp formats the
// predecessor's server produced. An unreadable timestamp leaves Timestamp zero:
// the run is still processed, it just cannot move the poller's cursor.
func (r *Run) UnmarshalJSON(b []byte) error {
	var w wireRun
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = w.run()
	return nil
}

// MarshalJSON writes r with an RFC 3339 timestamp (empty when zero).
func (r Run) MarshalJSON() ([]byte, error) {
	w := wireRun{ID: r.ID, Vehicle: r.Vehicle, DynoType: r.DynoType,
		DurationSeconds: float64(r.DurationSeconds), DataPoints: float64(r.DataPoints), Processed: r.Processed}
	if !r.Timestamp.IsZero() {
		w.Timestamp = r.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	return json.Marshal(w)
}

// RunMetadata is a run's full description: the list fields plus the engine,
// the ambient conditions and the peaks Jetstream computed.
type RunMetadata struct {
	Run
	EngineType          string         `json:"engine_type,omitempty"`
	AmbientTempF        float64        `json:"ambient_temp_f,omitempty"`        // °F
	AmbientPressureInHg float64        `json:"ambient_pressure_inhg,omitempty"` // inHg
	HumidityPercent     float64        `json:"humidity_percent,omitempty"`      // %
	PeakHP              float64        `json:"peak_hp,omitempty"`               // HP
	PeakTorque          float64        `json:"peak_torque,omitempty"`           // ft·lbf
	RawDataURL          string         `json:"raw_data_url,omitempty"`
	Extra               map[string]any `json:"extra,omitempty"`
}

// UnmarshalJSON reads run metadata; see Run.UnmarshalJSON for timestamps.
func (m *RunMetadata) UnmarshalJSON(b []byte) error {
	var w struct {
		wireRun
		EngineType          string         `json:"engine_type"`
		AmbientTempF        float64        `json:"ambient_temp_f"`
		AmbientPressureInHg float64        `json:"ambient_pressure_inhg"`
		HumidityPercent     float64        `json:"humidity_percent"`
		PeakHP              float64        `json:"peak_hp"`
		PeakTorque          float64        `json:"peak_torque"`
		RawDataURL          string         `json:"raw_data_url"`
		Extra               map[string]any `json:"extra"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*m = RunMetadata{Run: w.run(), EngineType: w.EngineType, AmbientTempF: w.AmbientTempF,
		AmbientPressureInHg: w.AmbientPressureInHg, HumidityPercent: w.HumidityPercent,
		PeakHP: w.PeakHP, PeakTorque: w.PeakTorque, RawDataURL: w.RawDataURL, Extra: w.Extra}
	return nil
}

// MarshalJSON writes m flat, as the server sends it.
func (m RunMetadata) MarshalJSON() ([]byte, error) {
	run, err := m.Run.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	if err := json.Unmarshal(run, &obj); err != nil {
		return nil, err
	}
	put := func(k string, v any, present bool) {
		if present {
			obj[k] = v
		}
	}
	put("engine_type", m.EngineType, m.EngineType != "")
	put("ambient_temp_f", m.AmbientTempF, m.AmbientTempF != 0)
	put("ambient_pressure_inhg", m.AmbientPressureInHg, m.AmbientPressureInHg != 0)
	put("humidity_percent", m.HumidityPercent, m.HumidityPercent != 0)
	put("peak_hp", m.PeakHP, m.PeakHP != 0)
	put("peak_torque", m.PeakTorque, m.PeakTorque != 0)
	put("raw_data_url", m.RawDataURL, m.RawDataURL != "")
	put("extra", m.Extra, len(m.Extra) > 0)
	return json.Marshal(obj)
}

// ListRequest asks for one page of runs.
type ListRequest struct {
	// Since, when not zero, asks for runs whose timestamp is at or after it.
	// It is sent as RFC 3339 in UTC, URL-encoded.
	Since time.Time
	// Cursor continues a listing from a previous page's Next.
	Cursor string
	// Limit caps the page size; 0 lets the server choose.
	Limit int
}

// RunPage is one page of runs. Next is empty on the last page.
type RunPage struct {
	Runs []Run  `json:"runs"`
	Next string `json:"next,omitempty"`
}

// ParseTimestamp reads a Jetstream timestamp: RFC 3339 (with any fraction),
// or an ISO 8601 date-time without an offset, which is taken as UTC (Python's
// naive isoformat). The result is in UTC.
func ParseTimestamp(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, fmt.Errorf("jetstream: empty timestamp")
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("jetstream: timestamp %q is not RFC 3339 or ISO 8601", s)
}
