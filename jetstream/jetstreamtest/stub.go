package jetstreamtest

import (
	"time"

	"github.com/dynoai/dynoai/jetstream"
)

type stubRun struct {
	id, vehicle, dyno, engine string
	ageMin                    int
	tempF, inHg, rh           float64
	dur, points               int
	peakHP, peakTQ            float64
	dialect                   Dialect
}

// The predecessor's seven sample runs (spec §1.8). JS-GAMMA-404 failed in the
// predecessor with "missing MAP channel"; its raw data here lacks MAP too.
var stubRuns = []stubRun{
	{"JS-ALPHA-001", "2021 Harley-Davidson FXLRST", "Dynojet 250i", "Milwaukee-Eight 117", 45, 68, 29.52, 38, 14, 1820, 118.4, 123.7, DialectKPa},
	{"JS-DELTA-087", "2022 Road Glide CVO", "Dynojet 250i", "Milwaukee-Eight 121", 120, 71, 29.48, 42, 16, 2145, 128.3, 131.2, DialectMetric},
	{"JS-EPSILON-142", "2023 Street Glide ST", "Dynojet 224xLC", "Milwaukee-Eight 114", 75, 65, 29.65, 35, 13, 1678, 95.7, 109.4, DialectLambda},
	{"JS-ZETA-205", "2020 Softail Slim", "Dynojet 200", "Milwaukee-Eight 107", 30, 69, 29.55, 40, 12, 1523, 82.6, 98.3, DialectInHg},
	{"JS-ETA-318", "2019 Fat Boy 114", "Dynojet 224xLC", "Milwaukee-Eight 114", 95, 73, 29.38, 48, 15, 1945, 91.2, 106.8, DialectKPa},
	{"JS-BETA-014", "2019 Road Glide Special", "Dynojet 224xLC", "M8 114", 8, 72, 29.40, 41, 11, 1430, 88.0, 104.0, DialectMetric},
	{"JS-GAMMA-404", "2020 Softail Standard", "Dynojet 200", "M8 107", 18, 75, 29.10, 55, 0, 0, 0, 0, DialectNoMAP},
}

// StubRuns returns the predecessor's seven sample runs (spec §1.8), stamped
// relative to now by their age, none yet processed. Each one's raw data is a
// wide-open-throttle pull with the run's data points, duration and peaks, in
// one of the dialects (kPa, metric, lambda, inHg). JS-GAMMA-404's data lacks a
// MAP channel, as the predecessor's sample error run says.
func StubRuns(now time.Time) []Run {
	out := make([]Run, 0, len(stubRuns))
	for _, s := range stubRuns {
		pull := Pull{PeakHP: s.peakHP, PeakTorque: s.peakTQ, Points: s.points, Duration: float64(s.dur),
			Seed: seedOf(s.id), Dialect: s.dialect}
		if s.points == 0 { // the error run: a short pull of a smaller engine
			pull.PeakHP, pull.PeakTorque, pull.Points, pull.Duration = 78, 95, 400, 9
		}
		m := jetstream.RunMetadata{
			Run: jetstream.Run{ID: s.id, Timestamp: now.Add(-time.Duration(s.ageMin) * time.Minute).UTC().Truncate(time.Second),
				Vehicle: s.vehicle, DynoType: s.dyno, DurationSeconds: s.dur, DataPoints: s.points},
			EngineType: s.engine, AmbientTempF: s.tempF, AmbientPressureInHg: s.inHg, HumidityPercent: s.rh,
			PeakHP: s.peakHP, PeakTorque: s.peakTQ,
		}
		out = append(out, Run{RunMetadata: m, Data: pull.CSV()})
	}
	return out
}

// NewStub starts a server seeded with StubRuns(time.Now()).
func NewStub(o Options) *Server {
	s := NewServer(o)
	s.Add(StubRuns(time.Now())...)
	return s
}
