package dynolog_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynolog"
)

func TestCanonicalHeader(t *testing.T) {
	all := dyno.NewChannelSet(dyno.Channels()...)
	assert.Equal(t, []string{
		"time_s", "rpm", "map_kpa", "tps", "afr_meas_f", "afr_meas_r", "afr_cmd_f", "afr_cmd_r",
		"lambda_f", "lambda_r", "spark_f", "spark_r", "knock_f", "knock_r", "torque", "hp",
		"iat_c", "ect_c", "baro_kpa", "drum_speed_mph", "drum_force_lbf", "load",
	}, dynolog.CanonicalHeader(dyno.Layout{Cylinders: 2, Channels: all}))
	assert.Equal(t, []string{"rpm", "afr_meas_1", "afr_meas_2", "afr_meas_3"},
		dynolog.CanonicalHeader(dyno.Layout{Cylinders: 3, Channels: dyno.NewChannelSet(dyno.ChanRPM, dyno.ChanAFR)}))
}

func TestCSVWriterOutput(t *testing.T) {
	var buf bytes.Buffer
	l := dyno.Layout{Cylinders: 2, Channels: dyno.NewChannelSet(dyno.ChanTime, dyno.ChanRPM, dyno.ChanMAP, dyno.ChanAFR, dyno.ChanIAT)}
	w := dynolog.NewCSVWriter(&buf, l)
	s := dyno.NewSample()
	s.Time = 1500 * time.Millisecond
	s.RPM, s.MAP, s.IAT = 3000, 80.25, 25
	s.AFR[dyno.Front] = 13.1
	require.NoError(t, w.WriteSample(&s))
	s.Time = 2*time.Second + time.Nanosecond
	s.MAP = dyno.Missing
	s.AFR[dyno.Rear] = 1e-7
	require.NoError(t, w.WriteSample(&s))
	require.NoError(t, w.Flush())
	assert.Equal(t, "time_s,rpm,map_kpa,afr_meas_f,afr_meas_r,iat_c\n"+
		"1.5,3000,80.25,13.1,,25\n"+
		"2.000000001,3000,,13.1,1e-07,25\n", buf.String())

	// An empty log is a header.
	buf.Reset()
	require.NoError(t, dynolog.NewCSVWriter(&buf, l).Flush())
	assert.Equal(t, "time_s,rpm,map_kpa,afr_meas_f,afr_meas_r,iat_c\n", buf.String())
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestCSVWriterError(t *testing.T) {
	w := dynolog.NewCSVWriter(failWriter{}, dyno.Layout{Channels: dyno.NewChannelSet(dyno.ChanRPM)})
	s := dyno.NewSample()
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		err = w.WriteSample(&s)
	}
	if err == nil {
		err = w.Flush()
	}
	require.EqualError(t, err, "disk full")
	require.EqualError(t, w.Flush(), "disk full")
}

// randomValue returns a value that exercises the number formats: Missing,
// zero, negatives, tiny and huge magnitudes, and ordinary readings.
func randomValue(rng *rand.Rand) float64 {
	switch rng.IntN(8) {
	case 0:
		return dyno.Missing
	case 1:
		return 0
	case 2:
		return math.Float64frombits(rng.Uint64()&^(0x7ff<<52) | uint64(rng.IntN(2046)+1)<<52) // any finite
	case 3:
		return -rng.Float64() * 1000
	case 4:
		return float64(rng.IntN(20000))
	default:
		return math.Round(rng.Float64()*100000) / 1000
	}
}

// TestCSVRoundTrip is a property test: any samples written by CSVWriter
// read back identical, every channel and cylinder layout.
func TestCSVRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 200; iter++ {
		var set dyno.ChannelSet
		for _, c := range dyno.Channels() {
			if rng.IntN(3) > 0 {
				set = set.With(c)
			}
		}
		set = set.With(dyno.ChanRPM).With(dyno.ChanMAP)
		cyls := 1 + rng.IntN(dyno.MaxCylinders)
		layout := dyno.Layout{Name: "rt", Format: "csv", Cylinders: cyls, Channels: set}
		n := rng.IntN(20)
		in := make([]dyno.Sample, n)
		for i := range in {
			s := dyno.NewSample()
			if set.Has(dyno.ChanTime) {
				s.Time = time.Duration(rng.Int64N(int64(1e6 * time.Second)))
				if rng.IntN(4) == 0 {
					s.Time = -s.Time
				}
			}
			s.RPM, s.MAP, s.TPS = randomValue(rng), randomValue(rng), randomValue(rng)
			s.Torque, s.Power, s.IAT, s.ECT = randomValue(rng), randomValue(rng), randomValue(rng), randomValue(rng)
			s.Baro, s.DrumSpeed, s.DrumForce = randomValue(rng), randomValue(rng), randomValue(rng)
			for c := 0; c < cyls; c++ {
				s.AFR[c], s.AFRCommanded[c], s.Lambda[c] = randomValue(rng), randomValue(rng), randomValue(rng)
				s.Spark[c], s.Knock[c] = randomValue(rng), randomValue(rng)
			}
			// Keep only the layout's channels: the writer writes nothing else.
			in[i] = keep(s, set, cyls)
		}
		var buf bytes.Buffer
		got, err := dynolog.CopyCSV(context.Background(), &buf, dyno.NewSliceSource(layout, in))
		require.NoError(t, err)
		require.Equal(t, int64(n), got)

		r, err := dynolog.NewReader(bytes.NewReader(buf.Bytes()), "rt", dynolog.ReadOptions{NoDerive: true, Verbatim: true})
		require.NoError(t, err, buf.String())
		assert.Equal(t, "csv", r.Layout().Format)
		wantCyl := 0
		for _, c := range []dyno.Channel{dyno.ChanAFR, dyno.ChanAFRCommanded, dyno.ChanLambda, dyno.ChanSpark, dyno.ChanKnock} {
			if set.Has(c) {
				wantCyl = cyls
			}
		}
		assert.Equal(t, wantCyl, r.Layout().Cylinders)
		assert.Equal(t, set, r.Layout().Channels)
		out := readAll(t, r)
		require.Len(t, out, n)
		for i := range in {
			requireSameSample(t, in[i], out[i], buf.String())
		}
	}
}

func keep(s dyno.Sample, set dyno.ChannelSet, cyls int) dyno.Sample {
	o := dyno.NewSample()
	for _, c := range set.List() {
		for cyl := 0; cyl < cyls; cyl++ {
			setValue(&o, c, cyl, s.Value(c, cyl))
		}
	}
	if set.Has(dyno.ChanTime) {
		o.Time = s.Time
	}
	return o
}

func setValue(s *dyno.Sample, c dyno.Channel, cyl int, v float64) {
	switch c {
	case dyno.ChanRPM:
		s.RPM = v
	case dyno.ChanMAP:
		s.MAP = v
	case dyno.ChanTPS:
		s.TPS = v
	case dyno.ChanAFR:
		s.AFR[cyl] = v
	case dyno.ChanAFRCommanded:
		s.AFRCommanded[cyl] = v
	case dyno.ChanLambda:
		s.Lambda[cyl] = v
	case dyno.ChanSpark:
		s.Spark[cyl] = v
	case dyno.ChanKnock:
		s.Knock[cyl] = v
	case dyno.ChanTorque:
		s.Torque = v
	case dyno.ChanPower:
		s.Power = v
	case dyno.ChanIAT:
		s.IAT = v
	case dyno.ChanECT:
		s.ECT = v
	case dyno.ChanBaro:
		s.Baro = v
	case dyno.ChanDrumSpeed:
		s.DrumSpeed = v
	case dyno.ChanDrumForce:
		s.DrumForce = v
	}
}

func requireSameSample(t *testing.T, want, got dyno.Sample, ctx string) {
	t.Helper()
	require.Equal(t, want.Time, got.Time)
	for _, c := range dyno.Channels()[1:] {
		for cyl := 0; cyl < dyno.MaxCylinders; cyl++ {
			w, g := want.Value(c, cyl), got.Value(c, cyl)
			if math.IsNaN(w) {
				require.True(t, math.IsNaN(g), "%v[%d]: want Missing, got %v", c, cyl, g)
				continue
			}
			require.Equal(t, math.Float64bits(w), math.Float64bits(g), "%v[%d]: want %v got %v\n%s", c, cyl, w, g,
				strings.SplitN(ctx, "\n", 2)[0])
		}
	}
}
