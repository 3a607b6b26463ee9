package wire

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

var fuzzSeeds = []string{
	"040500000001ffff01e8030000", "0600002b1a02ffff", "0300002b1a03ffff", v4, v5,
	"0509004d3c2a000001e803000040e20100", "0408004d3c2b2b1a0188130000414243",
	"040c004d3c2b2b1a018813000041424344454647",
	"021e002b1a05ffff0000d007000000c05a450100d007000000002a4200003408000000",
	"021e002b1a", "0300002b1a03ff", "7f02002b1a07ffff0102",
	"0214002b1a08ffff0000b80b00000000c07f0100b80b00000000807f", v12, "0300002b1a03ffffdead",
	"020e002b1a0affff0100a00f00000000803f01020304", "010a002b1a0bffff53686f72744e616d6500",
	"0509002b1a112b1a01e803000040e20100", "0300002b1a03ffff0600002b1a02ffff", "1201004d3c302b1a02",
	"0504004d3c312b1a01e80300", "0400004d3c32ffff", "0509004d3c332b1a0ae803000005000000",
	"020a00ffff01ffff0000010000000000803f", "0132002b1a0cffff50" + strings.Repeat("00", 49),
	"2007002b1a0cffff01000078563412", "1106002b1a0cffff01040000803f",
}

// FuzzParseMessage feeds arbitrary datagrams to the decoder and every
// payload decoder: nothing may panic, errors must be the documented ones,
// and a decoded message re-encodes to its bytes.
func FuzzParseMessage(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err != nil {
			if !errors.Is(err, ErrShortHeader) && !errors.Is(err, ErrTruncated) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if int(m.Length) != len(m.Value) || HeaderSize+len(m.Value)+m.Trailing != len(b) {
			t.Fatalf("lengths: %+v value %d trailing %d datagram %d", m.Header, len(m.Value), m.Trailing, len(b))
		}
		out, err := AppendMessage(nil, m.Header, m.Value)
		if err != nil || !bytes.Equal(out, b[:len(b)-m.Trailing]) {
			t.Fatalf("re-encode: %v %x != %x", err, out, b)
		}
		var ci ChannelInfo
		if err := DecodeChannelInfo(&m, &ci); err == nil {
			for _, ch := range append(ci.Channels, ChannelDef{Name: ci.Provider}) {
				if !utf8.ValidString(ch.Name) || strings.IndexByte(ch.Name, 0) >= 0 {
					t.Fatalf("name %q is not valid UTF-8 cut at NUL", ch.Name)
				}
			}
		}
		vals, rem, err := AppendValues(nil, &m)
		if err == nil && len(vals)*ValueSize+rem != len(m.Value) {
			t.Fatalf("values: %d records + %d remainder != %d", len(vals), rem, len(m.Value))
		}
		_, _ = DecodePing(&m)
		_, _ = DecodePong(&m)
		_, _ = DecodeLogging(&m)
		_, _ = DecodeLoadControl(&m)
		_, _ = DecodeBrake(&m)
	})
}

// truncName is what a name becomes on the wire and back: cut at the first
// NUL, truncated at a rune boundary to n bytes.
func truncName(s string, n int) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	if len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// FuzzRoundTrip checks decode(encode(m)) == m for every message kind.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint16(0x1A2B), uint8(4), uint16(0xFFFF), "JETDRIVE Demo Provider", "Test RPM 1", uint8(8), uint16(0), uint32(2000), uint32(0x455AC000), []byte("ABC"))
	f.Add(uint16(1), uint8(255), uint16(7), "Prové", "AFR €", uint8(254), uint16(65535), uint32(math.MaxUint32), uint32(0x7FC00001), []byte{})
	f.Fuzz(func(t *testing.T, host uint16, seq uint8, dest uint16, provider, name string, unit uint8, id uint16, ts, bits uint32, data []byte) {
		if !utf8.ValidString(provider) || !utf8.ValidString(name) || len(data) > 1000 {
			return // not a message the encoder accepts: nothing to round-trip
		}
		e := Encoder{Host: host, Seq: seq}
		chans := []ChannelDef{{ID: id, Vendor: 0, Name: name, Unit: Unit(unit)}, {ID: id + 1, Name: "x", Unit: UnitNone}}
		ds, err := e.ChannelInfo(dest, provider, chans)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ParseMessage(ds[0])
		if err != nil {
			t.Fatal(err)
		}
		if m.Host != host || m.Seq != seq || m.Dest != dest || m.Key != KeyChannelInfo || m.Trailing != 0 {
			t.Fatalf("header %+v", m.Header)
		}
		var ci ChannelInfo
		if err := DecodeChannelInfo(&m, &ci); err != nil {
			t.Fatal(err)
		}
		want := ChannelInfo{Provider: truncName(provider, ProviderNameLen), Channels: []ChannelDef{
			{ID: id, Name: truncName(name, ChannelNameLen), Unit: Unit(unit)}, chans[1]}}
		if ci.Provider != want.Provider || len(ci.Channels) != 2 || ci.Channels[0] != want.Channels[0] || ci.Channels[1] != want.Channels[1] {
			t.Fatalf("channel info: got %+v want %+v", ci, want)
		}

		vals := []Value{{Channel: id, TS: ts, Value: math.Float32frombits(bits)}, {Channel: ^id, TS: ^ts, Value: math.Float32frombits(^bits)}}
		vd, err := e.Values(nil, dest, vals)
		if err != nil {
			t.Fatal(err)
		}
		m, _ = ParseMessage(vd[0])
		got, rem, err := AppendValues(nil, &m)
		if err != nil || rem != 0 || len(got) != 2 {
			t.Fatalf("values: %v %d %d", err, rem, len(got))
		}
		for i := range got {
			if got[i].Channel != vals[i].Channel || got[i].TS != vals[i].TS || math.Float32bits(got[i].Value) != math.Float32bits(vals[i].Value) {
				t.Fatalf("value %d: %+v != %+v", i, got[i], vals[i])
			}
		}

		pd, _ := e.Append(nil, KeyPing, dest, AppendPing(nil, Ping{Version: 1, HostTS: ts, Data: data}))
		m, _ = ParseMessage(pd)
		ping, err := DecodePing(&m)
		if err != nil || ping.HostTS != ts || !bytes.Equal(ping.Data, data) {
			t.Fatalf("ping: %v %+v", err, ping)
		}
		qd, _ := e.Append(nil, KeyPong, host, AppendPong(nil, PongFor(ping, bits)))
		m, _ = ParseMessage(qd)
		pong, err := DecodePong(&m)
		if err != nil || pong.HostTS != ts || pong.RemoteTS != bits || !bytes.Equal(pong.Data, data) {
			t.Fatalf("pong: %v %+v", err, pong)
		}
		lc := LoadControl{Enable: uint8(ts), Type: uint8(ts >> 8), Value: math.Float32frombits(bits)}
		ld, _ := e.Append(nil, KeyRequestLoadControl, dest, AppendLoadControl(nil, lc))
		m, _ = ParseMessage(ld)
		if got, err := DecodeLoadControl(&m); err != nil || got.Enable != lc.Enable || got.Type != lc.Type || math.Float32bits(got.Value) != bits {
			t.Fatalf("load control: %v %+v", err, got)
		}
		lg := Logging{State: uint8(bits), StartTS: ts}
		gd, _ := e.Append(nil, KeyRequestLoggingResponse, dest, AppendLogging(nil, KeyRequestLoggingResponse, lg))
		m, _ = ParseMessage(gd)
		if got, err := DecodeLogging(&m); err != nil || got != lg {
			t.Fatalf("logging: %v %+v", err, got)
		}
	})
}
