package jetdrive_test

import (
	"context"
	"encoding/hex"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/jetdrive"
	"github.com/dynoai/dynoai/jetdrive/jetdrivetest"
	"github.com/dynoai/dynoai/jetdrive/wire"
)

// readUntil reads raw datagrams from ep until one satisfies ok.
func readUntil(t *testing.T, ep *jetdrivetest.Endpoint, ok func(m *wire.Message) bool) wire.Message {
	t.Helper()
	buf := make([]byte, 65536)
	got := make(chan wire.Message, 1)
	go func() {
		for {
			n, _, err := ep.ReadPacket(buf)
			if err != nil {
				return
			}
			m, err := wire.ParseMessage(append([]byte(nil), buf[:n]...))
			if err == nil && ok(&m) {
				got <- m
				return
			}
		}
	}()
	select {
	case m := <-got:
		return m
	case <-time.After(3 * time.Second):
		ep.Close()
		t.Fatal("no matching datagram")
	}
	return wire.Message{}
}

func TestClientAnswersPingAndRequestsUnknownChannels(t *testing.T) {
	ctx := context.Background()
	var bus jetdrivetest.Bus
	raw := bus.Endpoint()
	defer raw.Close()
	c, err := jetdrive.NewClient(ctx, jetdrive.ClientConfig{Transport: bus.Endpoint(), HostID: 0x0101, RequestInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	defer c.Close()

	// V7 addressed to the client: the pong echoes "ABC" from offset 5.
	ping, _ := hex.DecodeString("0408004d3c2b0101018813000041424344")
	ping[1] = 9 // 4 data bytes: ABCD
	require.NoError(t, raw.WritePacket(ping))
	m := readUntil(t, raw, func(m *wire.Message) bool { return m.Key == wire.KeyPong && m.Host == 0x0101 })
	pong, err := wire.DecodePong(&m)
	require.NoError(t, err)
	assert.Equal(t, uint16(0x3C4D), m.Dest)
	assert.Equal(t, uint32(5000), pong.HostTS)
	assert.Equal(t, []byte("ABCD"), pong.Data)

	// Values from a provider whose channels are unknown: delivered as
	// unknown, and the client asks that provider for its ChannelInfo.
	e := wire.Encoder{Host: 0x5555}
	ds, err := e.Values(nil, wire.AllHosts, []wire.Value{{Channel: 9, TS: 1, Value: 1}})
	require.NoError(t, err)
	require.NoError(t, raw.WritePacket(ds[0]))
	readUntil(t, raw, func(m *wire.Message) bool {
		return m.Key == wire.KeyRequestChannelInfo && m.Host == 0x0101 && m.Dest == 0x5555
	})
	st := c.Stats()
	assert.Equal(t, uint64(1), st.Unknown)
	// The pinger 0x3C4D is a peer, not a provider: only 0x5555 is listed.
	require.Len(t, st.Providers, 1)
	assert.Equal(t, uint16(0x5555), st.Providers[0].Host)
	assert.False(t, st.Providers[0].Channels[0].Known)
	assert.Equal(t, uint64(1), st.Peer)
}

func TestStaleFrozenAndGone(t *testing.T) {
	ctx := context.Background()
	var bus jetdrivetest.Bus
	c, err := jetdrive.NewClient(ctx, jetdrive.ClientConfig{Transport: bus.Endpoint(), Passive: true,
		StaleAfter: 150 * time.Millisecond, FrozenAfter: 100 * time.Millisecond, GoneAfter: time.Second})
	require.NoError(t, err)
	defer c.Close()
	ep := bus.Endpoint()
	p, err := jetdrive.NewProvider(ctx, jetdrive.ProviderConfig{Transport: ep, HostID: 0x2222}, dynoChannels)
	require.NoError(t, err)
	defer p.Close()
	// 20 frames 10 ms apart on the provider's clock (frozen and stale on a
	// controlled clock: TestStaleAndFrozenAreConsistent).
	for i := 0; i < 20; i++ {
		ts := uint32(10 * i)
		require.NoError(t, p.Publish([]wire.Value{{Channel: 0, TS: ts, Value: float32(2000 + i)}, {Channel: 1, TS: ts, Value: 14.7}, {Channel: 2, TS: ts, Value: 1}, {Channel: 3, TS: ts, Value: 1}}))
	}
	waitFor(t, "20 frames", 5*time.Second, func() bool { return c.Stats().Values == 80 })
	st := c.Stats()
	require.Len(t, st.Providers, 1)
	ch := st.Providers[0].Channels
	assert.InDelta(t, 100.0, ch[0].RateHz, 1e-9, "the rate follows the provider's timestamps")

	// Silence: the provider goes stale, then gone (its network goes away
	// without a ClearChannelInfo, like a crash).
	require.NoError(t, ep.Close())
	waitFor(t, "stale", 2*time.Second, func() bool {
		st := c.Stats()
		return len(st.Providers) == 1 && st.Providers[0].Stale && st.Providers[0].Channels[0].Stale
	})
	waitFor(t, "gone", 4*time.Second, func() bool { return c.Stats().Gone == 1 })
	assert.Empty(t, c.Stats().Providers)
	assert.Empty(t, c.Mapping())
}

func TestBackpressurePolicies(t *testing.T) {
	for _, tt := range []struct {
		policy jetdrive.OverflowPolicy
		first  float64
	}{{jetdrive.DropOldest, 2010}, {jetdrive.DropNewest, 2000}} {
		ctx := context.Background()
		var bus jetdrivetest.Bus
		c, err := jetdrive.NewClient(ctx, jetdrive.ClientConfig{Transport: bus.Endpoint(), Passive: true, Buffer: 10, Overflow: tt.policy})
		require.NoError(t, err)
		p, err := jetdrive.NewProvider(ctx, jetdrive.ProviderConfig{Transport: bus.Endpoint(), HostID: 0x3333}, dynoChannels[:1])
		require.NoError(t, err)
		for i := 0; i < 20; i++ {
			require.NoError(t, p.Publish([]wire.Value{{Channel: 0, TS: uint32(i), Value: float32(2000 + i)}}))
		}
		waitFor(t, "all frames", 2*time.Second, func() bool { return c.Stats().Samples == 20 })
		st := c.Stats()
		assert.Equal(t, uint64(10), st.Overflow, "overflow is counted")
		assert.Equal(t, 10, st.Buffered)
		s := dyno.NewSample()
		require.NoError(t, c.Next(ctx, &s))
		assert.Equal(t, tt.first, s.RPM)
		p.Close()
		c.Close()
	}
}

func TestBusEndpointClosed(t *testing.T) {
	var bus jetdrivetest.Bus
	ep := bus.Endpoint()
	require.NoError(t, ep.Close())
	_, _, err := ep.ReadPacket(make([]byte, 10))
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.ErrorIs(t, ep.WritePacket([]byte{1}), net.ErrClosed)
}

func TestMultiPageChannelInfoAndOverride(t *testing.T) {
	ctx := context.Background()
	var bus jetdrivetest.Bus
	c, err := jetdrive.NewClient(ctx, jetdrive.ClientConfig{Transport: bus.Endpoint(), Passive: true,
		Overrides: []jetdrive.Override{{Field: jetdrive.Field{Channel: dyno.ChanLambda, Cylinder: 0}, Channel: "WB O2 Front",
			Convert: func(v float64) float64 { return v / 1000 }}}})
	require.NoError(t, err)
	defer c.Close()
	chans := make([]wire.ChannelDef, 60) // two pages: 39 + 21
	for i := range chans {
		chans[i] = wire.ChannelDef{ID: uint16(100 + i), Name: "Aux", Unit: wire.UnitVolts}
	}
	chans[0] = wire.ChannelDef{ID: 100, Name: "Engine RPM", Unit: wire.UnitEngineSpeed}
	chans[59] = wire.ChannelDef{ID: 159, Name: "WB O2 Front", Unit: wire.UnitNone}
	p, err := jetdrive.NewProvider(ctx, jetdrive.ProviderConfig{Transport: bus.Endpoint(), HostID: 0x4444}, chans)
	require.NoError(t, err)
	defer p.Close()
	vals := make([]wire.Value, 60)
	for i := range vals {
		vals[i] = wire.Value{Channel: uint16(100 + i), TS: 7, Value: 1}
	}
	vals[0].Value, vals[59].Value = 2500, 870
	require.NoError(t, p.Publish(vals)) // one frame over one datagram of 60 records
	s := dyno.NewSample()
	require.NoError(t, c.Next(ctx, &s))
	assert.Equal(t, 2500.0, s.RPM)
	assert.InDelta(t, 0.87, s.Lambda[0], 1e-9, "the override's conversion")
	st := c.Stats()
	require.Len(t, st.Providers, 1)
	assert.Len(t, st.Providers[0].Channels, 60, "both pages merged")
	assert.Equal(t, uint64(0), st.Unknown)
	var ov *jetdrive.Assignment
	for _, a := range c.Mapping() {
		if a.Override {
			ov = &a
		}
	}
	require.NotNil(t, ov)
	assert.Equal(t, "lambda[0]", ov.Field.String())
}

func TestForgedFloodIsBounded(t *testing.T) {
	ctx := context.Background()
	var bus jetdrivetest.Bus
	ep := bus.Endpoint()
	c, err := jetdrive.NewClient(ctx, jetdrive.ClientConfig{Transport: bus.Endpoint(), Passive: true})
	require.NoError(t, err)
	defer c.Close()
	var sent int
	for h := 1; h <= jetdrive.MaxProviders+20; h++ {
		e := wire.Encoder{Host: uint16(h)}
		ds, _ := e.Values(nil, wire.AllHosts, []wire.Value{{Channel: 1, TS: 1, Value: 1}})
		require.NoError(t, ep.WritePacket(ds[0]))
		sent++
		if sent%1000 == 0 {
			waitFor(t, "the client to catch up", 5*time.Second, func() bool { return int(c.Stats().Datagrams) >= sent })
		}
	}
	vals := make([]wire.Value, 0, 2000)
	for id := 0; id < 2000; id++ {
		vals = append(vals, wire.Value{Channel: uint16(id), TS: uint32(id + 2), Value: 1}) // after the first message's TS 1
	}
	e := wire.Encoder{Host: 1, MTU: 60000}
	ds, _ := e.Values(nil, wire.AllHosts, vals)
	require.NoError(t, ep.WritePacket(ds[0]))
	sent++
	waitFor(t, "every datagram", 5*time.Second, func() bool { return int(c.Stats().Datagrams) >= sent })
	st := c.Stats()
	assert.Len(t, st.Providers, jetdrive.MaxProviders)
	assert.Len(t, st.Providers[0].Channels, jetdrive.MaxUnknownChannels)
	assert.Equal(t, uint64(20+2000-jetdrive.MaxUnknownChannels), st.Errors.OverLimit)
}

func TestEvents(t *testing.T) {
	ctx := context.Background()
	var bus jetdrivetest.Bus
	c, err := jetdrive.NewClient(ctx, jetdrive.ClientConfig{Transport: bus.Endpoint(), NegotiateWindow: 20 * time.Millisecond})
	require.NoError(t, err)
	var kinds []string
	next := func() jetdrive.Event {
		select {
		case ev := <-c.Events():
			kinds = append(kinds, ev.Kind.String())
			return ev
		case <-time.After(3 * time.Second):
			t.Fatalf("no event after %v", kinds)
			return jetdrive.Event{}
		}
	}
	ev := next()
	require.Equal(t, jetdrive.EventHostID, ev.Kind)
	assert.Equal(t, c.HostID(), ev.Host)

	p, err := jetdrive.NewProvider(ctx, jetdrive.ProviderConfig{Transport: bus.Endpoint(), HostID: 0x2222, Name: "Sim"}, dynoChannels)
	require.NoError(t, err)
	ev = next()
	assert.Equal(t, jetdrive.Event{Kind: jetdrive.EventProviderUp, Host: 0x2222, At: ev.At}, ev)
	ev = next() // a provider clears at start, in case an earlier instance died dirty
	assert.Equal(t, jetdrive.EventCleared, ev.Kind)
	assert.Equal(t, "", ev.Name)
	ev = next()
	assert.Equal(t, jetdrive.EventChannels, ev.Kind)
	assert.Equal(t, "Sim", ev.Name)
	require.NoError(t, p.Close())
	ev = next()
	assert.Equal(t, jetdrive.EventCleared, ev.Kind)
	assert.Equal(t, "Sim", ev.Name)
	require.NoError(t, c.Close())
	for range c.Events() { // drained, then closed
	}
	assert.Equal(t, "provider-gone", jetdrive.EventProviderGone.String())
}

// TestProviderClearsHoweverItStops: listeners learn that a provider's
// channels are gone whether it is closed or its context ends (the
// -duration and SIGINT of examples/jetdrive), even when Close follows a
// cancelled context.
func TestProviderClearsHoweverItStops(t *testing.T) {
	for _, tt := range []struct {
		name string
		stop func(cancel context.CancelFunc, p *jetdrive.Provider)
	}{
		{"Close", func(_ context.CancelFunc, p *jetdrive.Provider) { require.NoError(t, p.Close()) }},
		{"context cancelled", func(cancel context.CancelFunc, _ *jetdrive.Provider) { cancel() }},
		{"context cancelled, then Close", func(cancel context.CancelFunc, p *jetdrive.Provider) {
			cancel()
			require.NoError(t, p.Close())
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var bus jetdrivetest.Bus
			c, err := jetdrive.NewClient(context.Background(), jetdrive.ClientConfig{Transport: bus.Endpoint(), Passive: true})
			require.NoError(t, err)
			defer c.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p, err := jetdrive.NewProvider(ctx, jetdrive.ProviderConfig{Transport: bus.Endpoint(), HostID: 0x2222, Name: "Sim"}, dynoChannels)
			require.NoError(t, err)
			defer p.Close()
			deadline := time.After(5 * time.Second)
			sawChannels := false
			for {
				select {
				case ev := <-c.Events():
					if ev.Kind == jetdrive.EventChannels {
						sawChannels = true
						tt.stop(cancel, p)
					}
					if ev.Kind == jetdrive.EventCleared && sawChannels {
						assert.Equal(t, "Sim", ev.Name)
						assert.Equal(t, uint16(0x2222), ev.Host)
						return
					}
				case <-deadline:
					t.Fatal("no ClearChannelInfo after the provider stopped")
				}
			}
		})
	}
}
