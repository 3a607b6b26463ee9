package jetdrive

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/jetdrive/wire"
)

// harness drives a client's datagram handler directly, on a clock the test
// moves: no goroutines, no network, no sleeps.
type harness struct {
	t    *testing.T
	c    *Client
	now  time.Time
	encs map[uint16]*wire.Encoder
}

func newHarness(t *testing.T, cfg ClientConfig) *harness {
	t.Helper()
	cfg.Passive = true
	cfg.defaults()
	h := &harness{t: t, now: time.Unix(1_700_000_000, 0), encs: map[uint16]*wire.Encoder{}}
	h.c = newClient(context.Background(), cfg, nopTransport{})
	h.c.clock = func() time.Time { return h.now }
	h.c.base, h.c.baseSet = h.now, true
	return h
}

func (h *harness) enc(host uint16) *wire.Encoder {
	e := h.encs[host]
	if e == nil {
		e = &wire.Encoder{Host: host, MTU: 60000}
		h.encs[host] = e
	}
	return e
}

var localhost = netip.MustParseAddrPort("127.0.0.1:22344")

// deliver hands one datagram to the client at the current time.
func (h *harness) deliver(d []byte, from netip.AddrPort) {
	h.c.handleSafe(d, from, h.now)
}

func (h *harness) info(host uint16, name string, chans []wire.ChannelDef) {
	ds, err := h.enc(host).ChannelInfo(wire.AllHosts, name, chans)
	require.NoError(h.t, err)
	for _, d := range ds {
		h.deliver(d, localhost)
	}
}

func (h *harness) send(host uint16, key wire.Key, value []byte) []byte {
	d, err := h.enc(host).Append(nil, key, wire.AllHosts, value)
	require.NoError(h.t, err)
	h.deliver(d, localhost)
	return d
}

func (h *harness) values(host uint16, ts uint32, vals ...float32) []byte {
	recs := make([]wire.Value, len(vals))
	for i, v := range vals {
		recs[i] = wire.Value{Channel: uint16(i), TS: ts, Value: v}
	}
	b, err := wire.AppendChannelValues(nil, recs)
	require.NoError(h.t, err)
	return h.send(host, wire.KeyChannelValues, b)
}

// drain returns the buffered samples.
func (h *harness) drain() []dyno.Sample {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	var out []dyno.Sample
	for ; h.c.n > 0; h.c.n-- {
		out = append(out, h.c.ring[h.c.head])
		h.c.head = (h.c.head + 1) % len(h.c.ring)
	}
	return out
}

func (h *harness) provider(host uint16) ProviderStats {
	for _, p := range h.c.Stats().Providers {
		if p.Host == host {
			return p
		}
	}
	h.t.Fatalf("no provider 0x%04X", host)
	return ProviderStats{}
}

var twoChannels = []wire.ChannelDef{
	{ID: 0, Name: "Engine RPM", Unit: wire.UnitEngineSpeed},
	{ID: 1, Name: "Air/Fuel Ratio 1", Unit: wire.UnitAFR},
}

// TestStaleAndFrozenAreConsistent: frozen means values keep arriving but do
// not change; a provider that stops sending makes its channels stale, never
// frozen, whatever FrozenAfter is relative to StaleAfter.
func TestStaleAndFrozenAreConsistent(t *testing.T) {
	type check struct {
		after                    time.Duration // since the last value
		rpmFrozen, afrFrozen     bool
		channelsStale, provStale bool
	}
	for _, tt := range []struct {
		name    string
		sending time.Duration // how long values arrive, every 50 ms
		frozen  time.Duration
		stale   time.Duration
		checks  []check
	}{
		{"stuck AFR while sending, then the provider stops", 4 * time.Second, 3 * time.Second, 5 * time.Second, []check{
			{0, false, true, false, false},
			{100 * time.Millisecond, false, true, false, false},
			{time.Second, false, false, false, false}, // values stopped: not frozen
			{3500 * time.Millisecond, false, false, false, false},
			{5100 * time.Millisecond, false, false, true, true},
		}},
		{"the provider stops before FrozenAfter of equal values", time.Second, 3 * time.Second, 5 * time.Second, []check{
			{0, false, false, false, false},
			{3500 * time.Millisecond, false, false, false, false}, // the reported defect: frozen here
			{5100 * time.Millisecond, false, false, true, true},
		}},
		{"FrozenAfter longer than StaleAfter", 4 * time.Second, 3 * time.Second, 2 * time.Second, []check{
			{0, false, true, false, false},
			{2100 * time.Millisecond, false, false, true, true},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, ClientConfig{FrozenAfter: tt.frozen, StaleAfter: tt.stale})
			h.info(0x2222, "Dyno", twoChannels)
			start := h.now
			var ts uint32
			for ; h.now.Sub(start) <= tt.sending; h.now = h.now.Add(50 * time.Millisecond) {
				h.values(0x2222, ts, 2000+float32(ts), 14.7)
				ts += 50
			}
			last := h.now.Add(-50 * time.Millisecond)
			for _, ck := range tt.checks {
				h.now = last.Add(ck.after)
				p := h.provider(0x2222)
				require.Len(t, p.Channels, 2)
				rpm, afr := p.Channels[0], p.Channels[1]
				assert.Equal(t, ck.rpmFrozen, rpm.Frozen, "rpm frozen at +%v", ck.after)
				assert.Equal(t, ck.afrFrozen, afr.Frozen, "afr frozen at +%v", ck.after)
				assert.Equal(t, ck.channelsStale, afr.Stale, "afr stale at +%v", ck.after)
				assert.Equal(t, ck.channelsStale, rpm.Stale, "rpm stale at +%v", ck.after)
				assert.Equal(t, ck.provStale, p.Stale, "provider stale at +%v", ck.after)
				assert.False(t, afr.Stale && afr.Frozen, "never both")
			}
		})
	}
}

// TestLateAndDuplicateRecords: reordered and duplicated datagrams never
// make a sample whose time goes back or repeats; they are counted by reason.
func TestLateAndDuplicateRecords(t *testing.T) {
	type dg struct {
		ts   uint32
		dup  bool // resend the previous datagram byte for byte
		half int  // 1 or 2: the frame's first or second channel only; 0 both
	}
	for _, tt := range []struct {
		name      string
		seq       []dg
		times     []int64 // sample times, ms after the first
		late, dup uint64
	}{
		{"in order", []dg{{ts: 100}, {ts: 200}, {ts: 300}, {ts: 400}}, []int64{0, 100, 200, 300}, 0, 0},
		{"a duplicated datagram", []dg{{ts: 100}, {ts: 200}, {dup: true}, {ts: 300}, {ts: 400}}, []int64{0, 100, 200, 300}, 0, 2},
		{"a late datagram", []dg{{ts: 100}, {ts: 300}, {ts: 200}, {ts: 400}}, []int64{0, 200, 300}, 2, 0},
		{"a very late one", []dg{{ts: 100}, {ts: 200}, {ts: 300}, {ts: 400}, {ts: 150}}, []int64{0, 100, 200, 300}, 2, 0},
		{"a split frame with its first half duplicated",
			[]dg{{ts: 100, half: 1}, {dup: true}, {ts: 100, half: 2}, {ts: 200}}, []int64{0, 100}, 0, 1},
		{"a split frame reordered behind the next", []dg{{ts: 100}, {ts: 200, half: 2}, {ts: 300}, {ts: 200, half: 1}, {ts: 400}},
			[]int64{0, 100, 200, 300}, 1, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, ClientConfig{})
			h.info(0x2222, "Dyno", twoChannels)
			var prev []byte
			t0 := h.now
			for _, d := range tt.seq {
				// Arrival 5 ms after the provider's timestamp, and never
				// before the previous arrival.
				h.now = h.now.Add(time.Millisecond)
				if at := t0.Add(time.Duration(d.ts+5) * time.Millisecond); !d.dup && at.After(h.now) {
					h.now = at
				}
				if d.dup {
					h.deliver(prev, localhost)
					continue
				}
				var recs []wire.Value
				if d.half != 2 {
					recs = append(recs, wire.Value{Channel: 0, TS: d.ts, Value: float32(d.ts)})
				}
				if d.half != 1 {
					recs = append(recs, wire.Value{Channel: 1, TS: d.ts, Value: 13})
				}
				b, err := wire.AppendChannelValues(nil, recs)
				require.NoError(t, err)
				prev = h.send(0x2222, wire.KeyChannelValues, b)
			}
			h.c.mu.Lock()
			h.c.flushAll()
			h.c.mu.Unlock()
			got := h.drain()
			var times []int64
			for i, s := range got {
				times = append(times, (s.Time - got[0].Time).Milliseconds())
				if i > 0 {
					assert.Greater(t, s.Time, got[i-1].Time, "sample %d", i)
				}
			}
			assert.Equal(t, tt.times, times)
			st := h.c.Stats()
			assert.Equal(t, tt.late, st.Discarded.Late, "late")
			assert.Equal(t, tt.dup, st.Discarded.Duplicate, "duplicate")
		})
	}
}

// TestOneSamplePerPrimaryFrame: a probe with no mapped channel and a weather
// station whose IAT is mapped add no samples; the dyno's frames each make one.
func TestOneSamplePerPrimaryFrame(t *testing.T) {
	h := newHarness(t, ClientConfig{Buffer: 2000})
	h.info(0x2222, "Dyno", twoChannels)
	h.info(0x3333, "Probe", []wire.ChannelDef{{ID: 0, Name: "Aux volts", Unit: wire.UnitVolts}})
	h.info(0x4444, "Weather", []wire.ChannelDef{{ID: 0, Name: "IAT", Unit: wire.UnitTemperature}})
	probe, weather := 0, 0
	for i := 0; i < 1000; i++ {
		h.now = h.now.Add(10 * time.Millisecond)
		h.values(0x2222, uint32(i*10), float32(2000+i), 13)
		if i%4 == 0 { // 250 probe frames
			h.values(0x3333, uint32(i*10+5), 12.5)
			probe++
		}
		if i%100 == 50 { // 10 weather frames
			h.values(0x4444, uint32(i), float32(20+i/100))
			weather++
		}
	}
	got := h.drain()
	require.Len(t, got, 1000)
	st := h.c.Stats()
	assert.Equal(t, uint16(0x2222), st.Primary)
	assert.Equal(t, uint64(1000), st.Samples)
	assert.Equal(t, uint64(probe), st.Discarded.UnmappedFrames)
	assert.Equal(t, uint64(weather), st.Discarded.MergedFrames)
	assert.Equal(t, 2000.0, got[0].RPM)
	assert.False(t, dyno.Has(got[50].IAT), "no IAT before the station's first frame")
	assert.Equal(t, 20.0, got[51].IAT, "the station's value rides on the dyno's next frame")
	assert.Equal(t, 29.0, got[999].IAT)
	for i := 1; i < len(got); i++ {
		require.Greater(t, got[i].Time, got[i-1].Time)
	}
}

// TestPartialRecordsAreCounted: a ChannelValues whose length is not a
// multiple of 10 (or a ChannelInfo not a multiple of 34 after the name)
// keeps its whole records and counts the partial one.
func TestPartialRecordsAreCounted(t *testing.T) {
	for _, tt := range []struct {
		name    string
		key     wire.Key
		value   func() []byte
		records uint64
	}{
		{"values of 25 bytes", wire.KeyChannelValues, func() []byte {
			b, _ := wire.AppendChannelValues(nil, []wire.Value{{Channel: 0, TS: 1, Value: 2000}, {Channel: 1, TS: 1, Value: 13}})
			return append(b, 1, 2, 3, 4, 5)
		}, 2},
		{"values of 9 bytes", wire.KeyChannelValues, func() []byte { return make([]byte, 9) }, 0},
		{"channel info with 5 extra bytes", wire.KeyChannelInfo, func() []byte {
			b, _ := wire.AppendChannelInfo(nil, "Dyno", twoChannels)
			return append(b, 0, 0, 0, 0, 0)
		}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, ClientConfig{})
			h.send(0x2222, tt.key, tt.value())
			st := h.c.Stats()
			assert.Equal(t, uint64(1), st.Errors.PartialRecord)
			assert.Equal(t, tt.records, st.Values)
			require.Len(t, st.Providers, 1)
			assert.Equal(t, uint64(1), st.Providers[0].Errors.PartialRecord)
		})
	}
	// Whole records are not counted.
	h := newHarness(t, ClientConfig{})
	h.values(0x2222, 1, 2000, 13)
	assert.Zero(t, h.c.Stats().Errors.PartialRecord)
}

// TestRepeatedDiscoveries: short-lived peers (clients that negotiate, ping
// and ask for channels) are not providers, and a provider that restarts
// under a new host ID replaces its old entry instead of adding one.
func TestRepeatedDiscoveries(t *testing.T) {
	h := newHarness(t, ClientConfig{StaleAfter: time.Second})
	h.c.node.setHost(0x0101)
	h.c.cfg.Passive = false
	for i := 0; i < 10; i++ { // ten short-lived listeners
		peer := uint16(0x5000 + i)
		h.now = h.now.Add(200 * time.Millisecond)
		h.send(0, wire.KeyPing, wire.AppendPing(nil, wire.Ping{Version: 1}))
		h.send(peer, wire.KeyRequestChannelInfo, nil)
		h.send(peer, wire.KeyPing, wire.AppendPing(nil, wire.Ping{Version: 1}))
	}
	st := h.c.Stats()
	assert.Empty(t, st.Providers, "peers are not providers")
	assert.Equal(t, uint64(20), st.Peer)

	// A provider restarts five times, each time under a new host ID and
	// clearing its channels on the way out, like Provider.Close.
	for i := 0; i < 5; i++ {
		host := uint16(0x2000 + i)
		h.now = h.now.Add(100 * time.Millisecond)
		h.send(host, wire.KeyClearChannelInfo, nil)
		h.info(host, "Dyno", twoChannels)
		for ts := uint32(0); ts < 500; ts += 50 {
			h.now = h.now.Add(50 * time.Millisecond)
			h.values(host, ts, 2000, 13)
		}
		h.send(host, wire.KeyClearChannelInfo, nil)
	}
	// The last one is cleared and silent: forgotten after StaleAfter.
	st = h.c.Stats()
	require.Len(t, st.Providers, 1, "each restart replaced the previous entry")
	assert.Equal(t, uint16(0x2004), st.Providers[0].Host)
	assert.Equal(t, uint64(4), st.Gone)
	h.now = h.now.Add(1100 * time.Millisecond)
	h.c.tick(false)
	assert.Empty(t, h.c.Stats().Providers)

	// A crash (no ClearChannelInfo), then a restart: the old ID is replaced
	// once it has been silent for StaleAfter.
	h.info(0x3000, "Dyno", twoChannels)
	h.values(0x3000, 0, 2000, 13)
	h.now = h.now.Add(300 * time.Millisecond)
	h.info(0x3001, "Dyno", twoChannels)
	h.values(0x3001, 0, 2000, 13)
	assert.Len(t, h.c.Stats().Providers, 2, "the old one may still be alive")
	for i := 0; i < 20; i++ {
		h.now = h.now.Add(100 * time.Millisecond)
		h.values(0x3001, uint32(100*(i+1)), 2000, 13)
		h.c.tick(false)
	}
	st = h.c.Stats()
	require.Len(t, st.Providers, 1)
	assert.Equal(t, uint16(0x3001), st.Providers[0].Host)

	// Another dyno of another name on the same machine is not a duplicate.
	h.info(0x3002, "Second dyno", twoChannels)
	h.now = h.now.Add(2 * time.Second)
	h.c.tick(false)
	h.info(0x3001, "Dyno", twoChannels)
	h.c.tick(false)
	assert.Len(t, h.c.Stats().Providers, 2)
}

// TestRetimedWhenTheClockMovesBack: a re-synchronisation that moves a
// provider's offset back cannot make a sample older than the last one.
func TestRetimedWhenTheClockMovesBack(t *testing.T) {
	h := newHarness(t, ClientConfig{})
	h.info(0x2222, "Dyno", twoChannels)
	h.values(0x2222, 100, 2000, 13)
	h.now = h.now.Add(100 * time.Millisecond)
	h.values(0x2222, 200, 2001, 13)
	h.c.mu.Lock()
	h.c.provs[0x2222].offset -= 500 // as a better round trip would
	h.c.mu.Unlock()
	h.now = h.now.Add(100 * time.Millisecond)
	h.values(0x2222, 300, 2002, 13)
	got := h.drain()
	require.Len(t, got, 3)
	assert.Equal(t, got[1].Time+time.Millisecond, got[2].Time)
	assert.Equal(t, uint64(1), h.c.Stats().Discarded.Retimed)
}
