package wire

import (
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	require.NoError(t, err)
	return b
}

const (
	v4 = `0176002b1a04ffff4a455444524956452044656d6f2050726f7669646572000000000000000000000000000000000000000000000000000000000000005465
73742052504d20310000000000000000000000000000000000000000080100005465737420506f776572000000000000000000000000000000000000000004`
	v5  = `021e002b1a05ffff0000d007000000c05a450100d007000000002a4200003408000000845b45`
	v12 = `0198002b1a09ffff50726f76c3a9000000000000000000000000000000000000000000000000000000000000000000000000000000000000000007000041465
2fffe310000000000000000000000000000000000000000000000000b0800004d4150006b5061000000000000000000000000000000000000000000000007
0900002054505320e282000000000000000000000000000000000000000000000010`
)

func TestHeaderVectors(t *testing.T) {
	tests := []struct {
		name     string
		hex      string
		want     Header
		valueLen int
		trailing int
	}{
		{"V1 ping negotiation", "040500000001ffff01e8030000", Header{KeyPing, 5, 0, 1, AllHosts}, 5, 0},
		{"V2 request channel info", "0600002b1a02ffff", Header{KeyRequestChannelInfo, 0, 0x1A2B, 2, AllHosts}, 0, 0},
		{"V3 clear", "0300002b1a03ffff", Header{KeyClearChannelInfo, 0, 0x1A2B, 3, AllHosts}, 0, 0},
		{"V4 channel info", v4, Header{KeyChannelInfo, 118, 0x1A2B, 4, AllHosts}, 118, 0},
		{"V5 values", v5, Header{KeyChannelValues, 30, 0x1A2B, 5, AllHosts}, 30, 0},
		{"V6 pong", "0509004d3c2a000001e803000040e20100", Header{KeyPong, 9, 0x3C4D, 0x2A, 0}, 9, 0},
		{"V10 unknown key", "7f02002b1a07ffff0102", Header{0x7F, 2, 0x1A2B, 7, AllHosts}, 2, 0},
		{"V13 trailing", "0300002b1a03ffffdead", Header{KeyClearChannelInfo, 0, 0x1A2B, 3, AllHosts}, 0, 2},
		{"V16 collision shape", "0509002b1a112b1a01e803000040e20100", Header{KeyPong, 9, 0x1A2B, 0x11, 0x1A2B}, 9, 0},
		{"V17 two messages", "0300002b1a03ffff0600002b1a02ffff", Header{KeyClearChannelInfo, 0, 0x1A2B, 3, AllHosts}, 0, 8},
		{"V18 brake", "1201004d3c302b1a02", Header{KeyRequestBrake, 1, 0x3C4D, 0x30, 0x1A2B}, 1, 0},
		{"V22 source all hosts", "020a00ffff01ffff0000010000000000803f", Header{KeyChannelValues, 10, AllHosts, 1, AllHosts}, 10, 0},
		{"V23 name only", "0132002b1a0cffff50" + strings.Repeat("00", 49), Header{KeyChannelInfo, 50, 0x1A2B, 12, AllHosts}, 50, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := unhex(t, tt.hex)
			m, err := ParseMessage(b)
			require.NoError(t, err)
			assert.Equal(t, tt.want, m.Header)
			assert.Len(t, m.Value, tt.valueLen)
			assert.Equal(t, tt.trailing, m.Trailing)
			// Re-encoding gives the message without its trailing bytes.
			out, err := AppendMessage(nil, m.Header, m.Value)
			require.NoError(t, err)
			assert.Equal(t, b[:len(b)-tt.trailing], out)
		})
	}
}

func TestMalformedVectors(t *testing.T) {
	tests := []struct {
		name   string
		hex    string
		err    error
		offset int
	}{
		{"V8 truncated values", "021e002b1a05ffff0000d007000000c05a450100d007000000002a4200003408000000", ErrTruncated, 8},
		{"V9 short 5 bytes len 30", "021e002b1a", ErrShortHeader, 0},
		{"V9 short 5 bytes len 0", "0300002b1a", ErrShortHeader, 0},
		{"V9 short 7 bytes", "0300002b1a03ff", ErrShortHeader, 0},
		{"V9 2 bytes", "0300", ErrShortHeader, 0},
		{"V9 empty", "", ErrShortHeader, 0},
		{"DynoAI truncated values", "021e00341202ffff0100e80300000000c8440200e8030000000048430300e803000000", ErrTruncated, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMessage(unhex(t, tt.hex))
			require.ErrorIs(t, err, tt.err)
			var fe *FormatError
			require.True(t, errors.As(err, &fe))
			assert.Equal(t, tt.offset, fe.Offset)
			assert.Contains(t, err.Error(), "at byte")
		})
	}
}

func TestChannelInfoVectors(t *testing.T) {
	t.Run("V4", func(t *testing.T) {
		m, err := ParseMessage(unhex(t, v4))
		require.NoError(t, err)
		var ci ChannelInfo
		require.NoError(t, DecodeChannelInfo(&m, &ci))
		assert.Equal(t, ChannelInfo{Provider: "JETDRIVE Demo Provider", Channels: []ChannelDef{
			{ID: 0, Name: "Test RPM 1", Unit: UnitEngineSpeed},
			{ID: 1, Name: "Test Power", Unit: UnitPower},
		}}, ci)
		// The encoder reproduces the vector byte for byte.
		e := Encoder{Host: 0x1A2B, Seq: 4}
		ds, err := e.ChannelInfo(AllHosts, ci.Provider, ci.Channels)
		require.NoError(t, err)
		require.Len(t, ds, 1)
		assert.Equal(t, unhex(t, v4), ds[0])
	})
	t.Run("V12 names", func(t *testing.T) {
		m, err := ParseMessage(unhex(t, v12))
		require.NoError(t, err)
		var ci ChannelInfo
		require.NoError(t, DecodeChannelInfo(&m, &ci))
		assert.Equal(t, "Prové", ci.Provider)
		require.Len(t, ci.Channels, 3)
		assert.Equal(t, ChannelDef{ID: 7, Name: "AFR\uFFFD\uFFFD1", Unit: UnitAFR}, ci.Channels[0])
		assert.Equal(t, ChannelDef{ID: 8, Name: "MAP", Unit: UnitPressure}, ci.Channels[1])
		// The truncated "€" (e2 82) becomes replacement characters; the
		// spaces stay (trimming belongs to the application).
		assert.True(t, strings.HasPrefix(ci.Channels[2].Name, " TPS \uFFFD"), "%q", ci.Channels[2].Name)
		assert.Equal(t, UnitPercentage, ci.Channels[2].Unit)
	})
	t.Run("V15 too short", func(t *testing.T) {
		m, err := ParseMessage(unhex(t, "010a002b1a0bffff53686f72744e616d6500"))
		require.NoError(t, err)
		var ci ChannelInfo
		err = DecodeChannelInfo(&m, &ci)
		require.ErrorIs(t, err, ErrPayloadTooShort)
		assert.Contains(t, err.Error(), "need 50 bytes, have 10")
	})
	t.Run("V23 zero channels", func(t *testing.T) {
		m, err := ParseMessage(unhex(t, "0132002b1a0cffff50"+strings.Repeat("00", 49)))
		require.NoError(t, err)
		var ci ChannelInfo
		require.NoError(t, DecodeChannelInfo(&m, &ci))
		assert.Equal(t, "P", ci.Provider)
		assert.Empty(t, ci.Channels)
	})
	t.Run("partial entry", func(t *testing.T) {
		b := unhex(t, v4)
		b = append(b, 1, 2, 3)
		b[1] += 3
		m, err := ParseMessage(b)
		require.NoError(t, err)
		var ci ChannelInfo
		require.NoError(t, DecodeChannelInfo(&m, &ci))
		assert.Len(t, ci.Channels, 2)
		assert.Equal(t, 3, ci.Remainder)
	})
	t.Run("DynoAI frame", func(t *testing.T) {
		m, err := ParseMessage(unhex(t, `019800341201ffff5465737450726f7669646572000000000000000000000000000000000000000000000000000000000000000000000000000001000052504d
  00000000000000000000000000000000000000000000000000000008020000546f72717565000000000000000000000000000000000000000000000000050300
  004146520000000000000000000000000000000000000000000000000000000b`))
		require.NoError(t, err)
		var ci ChannelInfo
		require.NoError(t, DecodeChannelInfo(&m, &ci))
		assert.Equal(t, "TestProvider", ci.Provider)
		assert.Equal(t, []ChannelDef{{ID: 1, Name: "RPM", Unit: 8}, {ID: 2, Name: "Torque", Unit: 5}, {ID: 3, Name: "AFR", Unit: 11}}, ci.Channels)
	})
}

func TestValuesVectors(t *testing.T) {
	tests := []struct {
		name      string
		hex       string
		want      []Value
		remainder int
	}{
		{"V5", v5, []Value{{0, 2000, 3500}, {1, 2000, 42.5}, {0, 2100, 3512.25}}, 0},
		{"V11 NaN Inf", "0214002b1a08ffff0000b80b00000000c07f0100b80b00000000807f",
			[]Value{{0, 3000, math.Float32frombits(0x7FC00000)}, {1, 3000, float32(math.Inf(1))}}, 0},
		{"V14 partial record", "020e002b1a0affff0100a00f00000000803f01020304", []Value{{1, 4000, 1}}, 4},
		{"DynoAI frame", "021e00341202ffff0100e80300000000c8440200e8030000000048430300e803000000005841",
			[]Value{{1, 1000, 1600}, {2, 1000, 200}, {3, 1000, 13.5}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := unhex(t, tt.hex)
			m, err := ParseMessage(b)
			require.NoError(t, err)
			got, rem, err := AppendValues(nil, &m)
			require.NoError(t, err)
			require.Len(t, got, len(tt.want))
			for i := range got {
				assert.Equal(t, tt.want[i].Channel, got[i].Channel)
				assert.Equal(t, tt.want[i].TS, got[i].TS)
				assert.Equal(t, math.Float32bits(tt.want[i].Value), math.Float32bits(got[i].Value), "bit-exact value %d", i)
			}
			assert.Equal(t, tt.remainder, rem)
			if rem == 0 {
				e := Encoder{Host: m.Host, Seq: m.Seq}
				ds, err := e.Values(nil, m.Dest, got)
				require.NoError(t, err)
				assert.Equal(t, b, ds[0])
			}
		})
	}
}

func TestPingPongVectors(t *testing.T) {
	m, err := ParseMessage(unhex(t, "040500000001ffff01e8030000"))
	require.NoError(t, err)
	p, err := DecodePing(&m)
	require.NoError(t, err)
	assert.Equal(t, Ping{Version: 1, HostTS: 1000, Data: []byte{}}, p)

	m, err = ParseMessage(unhex(t, "0509004d3c2a000001e803000040e20100"))
	require.NoError(t, err)
	pong, err := DecodePong(&m)
	require.NoError(t, err)
	assert.Equal(t, Pong{Version: 1, HostTS: 1000, RemoteTS: 123456, Data: []byte{}}, pong)

	// V7: a ping with 3 data bytes; the spec-correct pong echoes from offset 5.
	m, err = ParseMessage(unhex(t, "0408004d3c2b2b1a0188130000414243"))
	require.NoError(t, err)
	p, err = DecodePing(&m)
	require.NoError(t, err)
	e := Encoder{Host: 0x1A2B, Seq: 6}
	d, err := e.Append(nil, KeyPong, m.Host, AppendPong(nil, PongFor(p, 7777)))
	require.NoError(t, err)
	assert.Equal(t, unhex(t, "050c002b1a064d3c0188130000611e0000414243"), d)
	// With 7 data bytes (the reference crashes) the echo is still right.
	m, err = ParseMessage(unhex(t, "040c004d3c2b2b1a018813000041424344454647"))
	require.NoError(t, err)
	p, err = DecodePing(&m)
	require.NoError(t, err)
	assert.Equal(t, []byte("ABCDEFG"), PongFor(p, 1).Data)

	// V19, V20: too short.
	m, _ = ParseMessage(unhex(t, "0504004d3c312b1a01e80300"))
	_, err = DecodePong(&m)
	assert.ErrorIs(t, err, ErrPayloadTooShort)
	m, _ = ParseMessage(unhex(t, "0400004d3c32ffff"))
	_, err = DecodePing(&m)
	assert.ErrorIs(t, err, ErrPayloadTooShort)
	// V21: version 10.
	m, _ = ParseMessage(unhex(t, "0509004d3c332b1a0ae803000005000000"))
	pong, err = DecodePong(&m)
	assert.ErrorIs(t, err, ErrBadVersion)
	assert.Equal(t, uint8(10), pong.Version)
	// A pong decoder given a ping is a wrong-key error, not a panic.
	m, _ = ParseMessage(unhex(t, "040500000001ffff01e8030000"))
	_, err = DecodePong(&m)
	assert.ErrorIs(t, err, ErrWrongKey)
	assert.EqualError(t, err, "jetdrive: wrong key: Ping at byte 0, want Pong")
}

// TestVersionErrorNamesTheByte: a bad version is reported as the version
// byte it is, where it is, not as a length.
func TestVersionErrorNamesTheByte(t *testing.T) {
	for _, tt := range []struct {
		name, hex, want string
		decode          func(*Message) error
	}{
		{"ping 255", "0405004d3c33ffffffe8030000", "jetdrive: incompatible protocol version: Ping version byte at byte 8 is 255, want 1..9",
			func(m *Message) error { _, err := DecodePing(m); return err }},
		{"ping 0", "0405004d3c33ffff00e8030000", "jetdrive: incompatible protocol version: Ping version byte at byte 8 is 0, want 1..9",
			func(m *Message) error { _, err := DecodePing(m); return err }},
		{"pong 10", "0509004d3c332b1a0ae803000005000000", "jetdrive: incompatible protocol version: Pong version byte at byte 8 is 10, want 1..9",
			func(m *Message) error { _, err := DecodePong(m); return err }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMessage(unhex(t, tt.hex))
			require.NoError(t, err)
			err = tt.decode(&m)
			require.ErrorIs(t, err, ErrBadVersion)
			assert.EqualError(t, err, tt.want)
			assert.NotContains(t, err.Error(), "bytes")
			var fe *FormatError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, HeaderSize, fe.Offset)
		})
	}
}

func TestExtendedVectors(t *testing.T) {
	m, err := ParseMessage(unhex(t, "1201004d3c302b1a02"))
	require.NoError(t, err)
	b, err := DecodeBrake(&m)
	require.NoError(t, err)
	assert.Equal(t, Brake{Enable: 2}, b)

	tests := []struct {
		key   Key
		value []byte
		check func(t *testing.T, m *Message)
	}{
		{KeyRequestLogging, AppendLogging(nil, KeyRequestLogging, Logging{State: 3}), func(t *testing.T, m *Message) {
			l, err := DecodeLogging(m)
			require.NoError(t, err)
			assert.Equal(t, Logging{State: 3}, l)
		}},
		{KeyRequestLoggingResponse, AppendLogging(nil, KeyRequestLoggingResponse, Logging{State: 1, StartTS: 0xDEADBEEF}), func(t *testing.T, m *Message) {
			require.Len(t, m.Value, 7)
			l, err := DecodeLogging(m)
			require.NoError(t, err)
			assert.Equal(t, Logging{State: 1, StartTS: 0xDEADBEEF}, l)
		}},
		{KeyRequestLoadControl, AppendLoadControl(nil, LoadControl{1, 4, 55.5}), func(t *testing.T, m *Message) {
			l, err := DecodeLoadControl(m)
			require.NoError(t, err)
			assert.Equal(t, LoadControl{1, 4, 55.5}, l)
		}},
		{KeyRequestLoadControlResponse, AppendLoadControl(nil, LoadControl{2, 0, 0}), func(t *testing.T, m *Message) {
			l, err := DecodeLoadControl(m)
			require.NoError(t, err)
			assert.Equal(t, LoadControl{2, 0, 0}, l)
		}},
		{KeyRequestBrakeResponse, AppendBrake(nil, Brake{1}), func(t *testing.T, m *Message) {
			b, err := DecodeBrake(m)
			require.NoError(t, err)
			assert.Equal(t, Brake{1}, b)
		}},
		{KeyRequestLoggingResponse, []byte{1, 0}, func(t *testing.T, m *Message) {
			_, err := DecodeLogging(m)
			assert.ErrorIs(t, err, ErrPayloadTooShort)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.key.String(), func(t *testing.T) {
			d, err := AppendMessage(nil, Header{Key: tt.key, Host: 1, Dest: AllHosts}, tt.value)
			require.NoError(t, err)
			m, err := ParseMessage(d)
			require.NoError(t, err)
			tt.check(t, &m)
		})
	}
}

func TestSeqVector(t *testing.T) {
	// The spec's sequence-flag vector, with modular verdicts.
	steps := []struct {
		seq   uint8
		flags SeqFlags
		gap   int
	}{
		{0x05, SeqFirst, 0}, {0x06, 0, 0}, {0x09, SeqDropped, 2}, {0x08, SeqOutOfOrder, 0},
		{0x09, 0, 0}, {0xFF, SeqOutOfOrder, 0}, {0x00, 0, 0}, {0xFE, SeqOutOfOrder, 0},
		{0x00, SeqDropped, 1}, {0x01, 0, 0}, {0x01, SeqOutOfOrder, 0},
	}
	var tr SeqTracker
	for i, s := range steps {
		f, gap := tr.Observe(s.seq)
		assert.Equal(t, s.flags, f, "step %d seq %#x", i, s.seq)
		assert.Equal(t, s.gap, gap, "step %d seq %#x", i, s.seq)
	}
	assert.Equal(t, uint64(len(steps)), tr.Stats.Received)
}

func TestSeqStats(t *testing.T) {
	tests := []struct {
		name string
		seqs []int
		want SeqStats
	}{
		{"in order across wrap", []int{250, 251, 252, 253, 254, 255, 0, 1, 2}, SeqStats{Received: 9}},
		{"one lost", []int{1, 2, 4, 5}, SeqStats{Received: 4, Dropped: 1}},
		{"swap", []int{1, 3, 2, 4}, SeqStats{Received: 4, Reordered: 1}},
		{"duplicate", []int{1, 2, 2, 3}, SeqStats{Received: 4, Duplicates: 1}},
		{"loss at wrap", []int{254, 0, 1}, SeqStats{Received: 3, Dropped: 1}},
		{"late duplicate", []int{1, 2, 3, 2}, SeqStats{Received: 4, Duplicates: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr SeqTracker
			for _, s := range tt.seqs {
				tr.Observe(uint8(s))
			}
			assert.Equal(t, tt.want, tr.Stats)
		})
	}
}

func TestEncoderPaging(t *testing.T) {
	chans := make([]ChannelDef, 42)
	for i := range chans {
		chans[i] = ChannelDef{ID: uint16(i), Name: "Channel", Unit: UnitVolts}
	}
	e := Encoder{Host: 7, Seq: 254}
	ds, err := e.ChannelInfo(AllHosts, "P", chans)
	require.NoError(t, err)
	require.Len(t, ds, 2, "Power Core sends 39 + 3 for 42 channels")
	assert.Len(t, ds[0], 8+50+39*34)
	assert.Equal(t, uint8(254), ds[0][5])
	assert.Equal(t, uint8(255), ds[1][5])
	assert.Equal(t, uint8(0), e.Seq, "sequence wraps mod 256")

	vals := make([]Value, 300)
	ds, err = e.Values(nil, AllHosts, vals)
	require.NoError(t, err)
	require.Len(t, ds, 3)
	assert.Len(t, ds[0], 8+1400)
	assert.Len(t, ds[2], 8+200)

	_, err = AppendMessage(nil, Header{Key: KeyChannelValues}, make([]byte, 65536))
	assert.ErrorIs(t, err, ErrValueTooLarge)
	_, err = e.Append(nil, KeyChannelValues, AllHosts, make([]byte, 1401))
	assert.ErrorIs(t, err, ErrValueTooLarge)
	_, err = AppendChannelValues(nil, make([]Value, 6554))
	assert.ErrorIs(t, err, ErrValueTooLarge)
}

func TestNameTruncationIsRuneSafe(t *testing.T) {
	name := strings.Repeat("é", 20) // 40 bytes
	b, err := AppendChannelInfo(nil, "p", []ChannelDef{{Name: name}})
	require.NoError(t, err)
	d, _ := AppendMessage(nil, Header{Key: KeyChannelInfo}, b)
	m, _ := ParseMessage(d)
	var ci ChannelInfo
	require.NoError(t, DecodeChannelInfo(&m, &ci))
	assert.Equal(t, strings.Repeat("é", 15), ci.Channels[0].Name)
	// A name that fills the field exactly has no terminator and is kept whole.
	full := strings.Repeat("x", 30)
	b, _ = AppendChannelInfo(nil, strings.Repeat("y", 50), []ChannelDef{{Name: full}})
	d, _ = AppendMessage(nil, Header{Key: KeyChannelInfo}, b)
	m, _ = ParseMessage(d)
	require.NoError(t, DecodeChannelInfo(&m, &ci))
	assert.Equal(t, full, ci.Channels[0].Name)
	assert.Equal(t, strings.Repeat("y", 50), ci.Provider)
}

func TestUnits(t *testing.T) {
	tests := []struct {
		u       Unit
		name    string
		known   bool
		in, out float64
	}{
		{UnitSpeed, "Speed", true, 160.9344, 100},
		{UnitForce, "Force", true, 4.4482216152605, 1},
		{UnitPower, "Power", true, 74.569987158227022, 100},
		{UnitTorque, "Torque", true, 135.58179483314004, 100},
		{UnitTemperature, "Temperature", true, 25, 25},
		{UnitEngineSpeed, "EngineSpeed", true, 3500, 3500},
		{UnitNone, "NoUnit", true, 7, 7},
		{UnitExtended, "Extended", true, 7, 7},
		{Unit(42), "Unit(42)", false, 7, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.name, tt.u.String())
			assert.Equal(t, tt.known, tt.u.Known())
			assert.InDelta(t, tt.out, tt.u.ToLibrary(tt.in), 1e-9)
			assert.InDelta(t, tt.in, tt.u.FromLibrary(tt.out), 1e-9)
		})
	}
	assert.Equal(t, "km/h", UnitSpeed.Symbol())
	assert.Equal(t, "Key(0x7f)", Key(0x7F).String())
	assert.False(t, Key(0x7F).Known())
	assert.Equal(t, "ChannelValues", KeyChannelValues.String())
}
