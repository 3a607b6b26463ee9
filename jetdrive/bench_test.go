package jetdrive

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/dynoai/dynoai/jetdrive/wire"
)

// valuesDatagram returns a full ChannelValues datagram (140 records) over
// nchan channels, frames of consecutive timestamps starting at ts0.
func valuesDatagram(tb testing.TB, e *wire.Encoder, nchan int, ts0 uint32) []byte {
	vals := make([]wire.Value, 0, 140)
	for i := 0; len(vals) < cap(vals); i++ {
		vals = append(vals, wire.Value{Channel: uint16(i % nchan), TS: ts0 + uint32(i/nchan), Value: float32(i)})
	}
	ds, err := e.Values(nil, wire.AllHosts, vals)
	if err != nil || len(ds) != 1 {
		tb.Fatalf("values: %v %d", err, len(ds))
	}
	return ds[0]
}

// BenchmarkDecodeValues is the codec alone: header + 140 values per op,
// appended into a reused slice.
func BenchmarkDecodeValues(b *testing.B) {
	d := valuesDatagram(b, &wire.Encoder{Host: 1}, 50, 0)
	vals := make([]wire.Value, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(d)))
	for b.Loop() {
		m, err := wire.ParseMessage(d)
		if err != nil {
			b.Fatal(err)
		}
		vals, _, _ = wire.AppendValues(vals[:0], &m)
	}
	b.ReportMetric(float64(140*b.N)/b.Elapsed().Seconds(), "values/s")
}

// BenchmarkClientHandle is the whole receive path of a client without the
// socket: decode, sequence tracking, per-channel statistics, mapping,
// frame assembly and sample emission, for 50 mapped-or-not channels.
func BenchmarkClientHandle(b *testing.B) {
	cfg := ClientConfig{Passive: true, Buffer: 1 << 16}
	cfg.defaults()
	c := newClient(context.Background(), cfg, nopTransport{})
	e := &wire.Encoder{Host: 0x1A2B}
	chans := make([]wire.ChannelDef, 50)
	names := []string{"Engine RPM", "MAP kPa", "TPS", "Air/Fuel Ratio 1", "Air/Fuel Ratio 2", "Torque", "Power", "IAT"}
	units := []wire.Unit{wire.UnitEngineSpeed, wire.UnitPressure, wire.UnitPercentage, wire.UnitAFR, wire.UnitAFR, wire.UnitTorque, wire.UnitPower, wire.UnitTemperature}
	for i := range chans {
		chans[i] = wire.ChannelDef{ID: uint16(i), Name: "Aux", Unit: wire.UnitVolts}
		if i < len(names) {
			chans[i].Name, chans[i].Unit = names[i], units[i]
		}
	}
	from := netip.MustParseAddrPort("127.0.0.1:22344")
	now := time.Now()
	infos, _ := e.ChannelInfo(wire.AllHosts, "Bench", chans)
	for _, d := range infos {
		c.handle(d, from, now)
	}
	if len(c.Mapping()) != 8 {
		b.Fatalf("mapping: %d fields", len(c.Mapping()))
	}
	// Pre-build a cycle of datagrams with advancing timestamps.
	ds := make([][]byte, 50)
	for i := range ds {
		ds[i] = valuesDatagram(b, e, 50, uint32(i*3))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.handle(ds[i%len(ds)], from, now)
		i++
		if c.n > len(c.ring)/2 {
			c.head, c.n = 0, 0 // a consumer
		}
	}
	b.ReportMetric(float64(140*b.N)/b.Elapsed().Seconds(), "values/s")
	if c.stats.Values < uint64(140*b.N) {
		b.Fatalf("values %d", c.stats.Values)
	}
}
