package dyno

import (
	"context"
	"math"
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
		DrumSpeed: Missing, DrumForce: Missing,
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
	numChannels
)

var channelNames = [numChannels]string{
	"time", "rpm", "map", "tps", "afr", "afr_commanded", "lambda", "spark", "knock",
	"torque", "power", "iat", "ect", "baro", "drum_speed", "drum_force",
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
