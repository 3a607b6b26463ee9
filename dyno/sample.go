package dyno

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"
)

// MaxCylinders is the number of per-cylinder slots a Sample carries. V-twins use
// two (Front, Rear); the rest stay Missing.
const MaxCylinders = 8

// The cylinder indexes of a V-twin, the engine DynoAI was born on.
const (
	Front = 0
	Rear  = 1
)

// Missing is the value of a channel that was not measured. It is a NaN.
var Missing = math.NaN()

// Has reports whether v holds a measurement (is not Missing).
func Has(v float64) bool { return !math.IsNaN(v) }

// PerCylinder holds one value per cylinder, index 0 being the front cylinder
// of a V-twin. Unused slots are Missing.
type PerCylinder [MaxCylinders]float64

// MissingPerCylinder returns a PerCylinder whose every slot is Missing.
func MissingPerCylinder() PerCylinder {
	var p PerCylinder
	for i := range p {
		p[i] = Missing
	}
	return p
}

// Sample is one instant of a dyno log. Units are fixed (see the package doc);
// absent channels are Missing. A Sample is a plain value: readers fill one the
// caller owns, so streaming a log allocates nothing per row.
type Sample struct {
	// Time is the time since the start of the log.
	Time time.Duration

	RPM float64 // engine speed, rev/min
	MAP float64 // manifold absolute pressure, kPa
	TPS float64 // throttle position, percent

	AFR          PerCylinder // measured air-fuel ratio per cylinder
	AFRCommanded PerCylinder // the ECU's commanded (target) air-fuel ratio per cylinder
	Lambda       PerCylinder // measured lambda per cylinder, when the log has it
	Spark        PerCylinder // spark advance per cylinder, degrees BTDC
	Knock        PerCylinder // knock retard per cylinder, degrees

	Torque float64 // ft·lbf
	Power  float64 // horsepower

	IAT  float64 // intake air temperature, °C
	ECT  float64 // engine coolant temperature, °C
	Baro float64 // barometric pressure, kPa

	DrumSpeed float64 // roller surface speed, mph
	DrumForce float64 // force at the roller, lbf

	// Load is the ECU's own load value, the axis its fuel table is indexed
	// by when that is not MAP ("Load", "FuelLoad", MSII's "Tbl Indx"):
	// kPa for speed-density, percent for alpha-N or airflow load, as the
	// log states it (the ChannelReport says which).
	Load float64
}

// Reset sets every channel of s to Missing and Time to zero, ready to be filled
// by a reader.
func (s *Sample) Reset() {
	*s = Sample{
		RPM: Missing, MAP: Missing, TPS: Missing,
		AFR: MissingPerCylinder(), AFRCommanded: MissingPerCylinder(),
		Lambda: MissingPerCylinder(), Spark: MissingPerCylinder(), Knock: MissingPerCylinder(),
		Torque: Missing, Power: Missing,
		IAT: Missing, ECT: Missing, Baro: Missing,
		DrumSpeed: Missing, DrumForce: Missing, Load: Missing,
	}
}

// NewSample returns a Sample whose every channel is Missing.
func NewSample() Sample {
	var s Sample
	s.Reset()
	return s
}

// Channel names one logical channel of a Sample.
type Channel uint8

// The channels of a Sample. Per-cylinder channels are one Channel each; which
// cylinders carry data is told by Layout.Cylinders and by Missing slots.
const (
	ChanTime Channel = iota
	ChanRPM
	ChanMAP
	ChanTPS
	ChanAFR
	ChanAFRCommanded
	ChanLambda
	ChanSpark
	ChanKnock
	ChanTorque
	ChanPower
	ChanIAT
	ChanECT
	ChanBaro
	ChanDrumSpeed
	ChanDrumForce
	ChanLoad // the ECU's fuel-table load (kPa or percent)
	numChannels
)

var channelNames = [numChannels]string{
	"time", "rpm", "map", "tps", "afr", "afr_commanded", "lambda", "spark", "knock",
	"torque", "power", "iat", "ect", "baro", "drum_speed", "drum_force", "load",
}

// ParseChannel returns the channel whose String is name ("rpm", "afr",
// "afr_commanded", ...). A few short forms are accepted too: "afr_cmd" and
// "target" for afr_commanded, "clt" and "coolant" for ect, "mat" for iat.
func ParseChannel(name string) (Channel, bool) {
	switch name {
	case "afr_cmd", "target", "afr_target":
		return ChanAFRCommanded, true
	case "clt", "coolant":
		return ChanECT, true
	case "mat":
		return ChanIAT, true
	case "hp":
		return ChanPower, true
	}
	for i, n := range channelNames {
		if n == name {
			return Channel(i), true
		}
	}
	return 0, false
}

// MarshalText writes the channel's name, so channels read well in JSON.
func (c Channel) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads a channel name written by MarshalText.
func (c *Channel) UnmarshalText(b []byte) error {
	v, ok := ParseChannel(string(b))
	if !ok {
		return errors.New("dyno: unknown channel " + strconv.Quote(string(b)))
	}
	*c = v
	return nil
}

// String returns the channel's lower-case name, for example "afr_commanded".
func (c Channel) String() string {
	if c < numChannels {
		return channelNames[c]
	}
	return "channel(" + itoa(int(c)) + ")"
}

// Valid reports whether c is one of the package's channels.
func (c Channel) Valid() bool { return c < numChannels }

// PerCylinder reports whether c carries one value per cylinder (AFR,
// commanded AFR, lambda, spark, knock).
func (c Channel) PerCylinder() bool {
	switch c {
	case ChanAFR, ChanAFRCommanded, ChanLambda, ChanSpark, ChanKnock:
		return true
	}
	return false
}

// Channels lists every Channel in order.
func Channels() []Channel {
	out := make([]Channel, numChannels)
	for i := range out {
		out[i] = Channel(i)
	}
	return out
}

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := v < 0
	if neg {
		v = -v
	}
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// ChannelSet is a set of Channels.
type ChannelSet uint32

// NewChannelSet returns the set holding cs.
func NewChannelSet(cs ...Channel) ChannelSet {
	var s ChannelSet
	for _, c := range cs {
		s = s.With(c)
	}
	return s
}

// Has reports whether c is in the set.
func (s ChannelSet) Has(c Channel) bool { return s&(1<<c) != 0 }

// With returns the set with c added.
func (s ChannelSet) With(c Channel) ChannelSet { return s | 1<<c }

// List returns the set's channels in order.
func (s ChannelSet) List() []Channel {
	var out []Channel
	for c := Channel(0); c < numChannels; c++ {
		if s.Has(c) {
			out = append(out, c)
		}
	}
	return out
}

// String lists the set's channel names, comma-separated.
func (s ChannelSet) String() string {
	out := ""
	for i, c := range s.List() {
		if i > 0 {
			out += ","
		}
		out += c.String()
	}
	return out
}

// Value returns channel c of s (cylinder cyl for per-cylinder channels) in
// the unit the package doc fixes; Time is in seconds. A cylinder outside
// 0..MaxCylinders-1 gives Missing for per-cylinder channels.
func (s *Sample) Value(c Channel, cyl int) float64 {
	if c.PerCylinder() && (cyl < 0 || cyl >= MaxCylinders) {
		return Missing
	}
	switch c {
	case ChanTime:
		return s.Time.Seconds()
	case ChanRPM:
		return s.RPM
	case ChanMAP:
		return s.MAP
	case ChanTPS:
		return s.TPS
	case ChanAFR:
		return s.AFR[cyl]
	case ChanAFRCommanded:
		return s.AFRCommanded[cyl]
	case ChanLambda:
		return s.Lambda[cyl]
	case ChanSpark:
		return s.Spark[cyl]
	case ChanKnock:
		return s.Knock[cyl]
	case ChanTorque:
		return s.Torque
	case ChanPower:
		return s.Power
	case ChanIAT:
		return s.IAT
	case ChanECT:
		return s.ECT
	case ChanBaro:
		return s.Baro
	case ChanDrumSpeed:
		return s.DrumSpeed
	case ChanDrumForce:
		return s.DrumForce
	case ChanLoad:
		return s.Load
	}
	return Missing
}

// Set stores v, in the unit the package doc fixes, as channel c (cylinder
// cyl for per-cylinder channels) of s; Time is in seconds. It ignores an
// unknown channel or a cylinder outside 0..MaxCylinders-1.
func (s *Sample) Set(c Channel, cyl int, v float64) {
	if c.PerCylinder() {
		if cyl < 0 || cyl >= MaxCylinders {
			return
		}
		switch c {
		case ChanAFR:
			s.AFR[cyl] = v
		case ChanAFRCommanded:
			s.AFRCommanded[cyl] = v
		case ChanLambda:
			s.Lambda[cyl] = v
		case ChanSpark:
			s.Spark[cyl] = v
		case ChanKnock:
			s.Knock[cyl] = v
		}
		return
	}
	switch c {
	case ChanTime:
		s.Time = time.Duration(math.Round(v * 1e9))
	case ChanRPM:
		s.RPM = v
	case ChanMAP:
		s.MAP = v
	case ChanTPS:
		s.TPS = v
	case ChanTorque:
		s.Torque = v
	case ChanPower:
		s.Power = v
	case ChanIAT:
		s.IAT = v
	case ChanECT:
		s.ECT = v
	case ChanBaro:
		s.Baro = v
	case ChanDrumSpeed:
		s.DrumSpeed = v
	case ChanDrumForce:
		s.DrumForce = v
	case ChanLoad:
		s.Load = v
	}
}

// Layout describes what a Source yields: where it came from, how many
// cylinders it reports and which channels it carries. Consumers check it
// before they rely on a channel (HP weighting on a log without power is an
// error, not a crash).
type Layout struct {
	// Name identifies the source for messages, typically a file name.
	Name string
	// Format names the log format, for example "winpep8", "powervision",
	// "csv", "simulator" or "jetdrive".
	Format string
	// Cylinders is the number of per-cylinder slots that carry data.
	Cylinders int
	// Channels is the set of channels the source provides.
	Channels ChannelSet
	// CombinedAFR is set when the measured AFR comes from one wideband for
	// every cylinder (a probe in the collector, or one sensor on an engine
	// whose ECU has one VE table): the AFR is in slot 0 only, and an
	// analysis gives one combined correction, not one per cylinder.
	CombinedAFR bool
}

// Source is a stream of samples: a log reader, a live JetDrive client, a
// Jetstream download, the simulator. Next overwrites every field of s with
// the next sample (channels it lacks become Missing) and
// returns nil, io.EOF at the end of the stream, or another error that ends
// the stream (ctx's error when it is cancelled). A Source never holds a whole
// log in memory; the caller owns s and may reuse it between calls.
type Source interface {
	Layout() Layout
	Next(ctx context.Context, s *Sample) error
}
