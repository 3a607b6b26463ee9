package jetdrive_test

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/jetdrive"
	"github.com/dynoai/dynoai/jetdrive/jetdrivetest"
	"github.com/dynoai/dynoai/jetdrive/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var dynoChannels = []wire.ChannelDef{
	{ID: 0, Name: "Engine RPM", Unit: wire.UnitEngineSpeed},
	{ID: 1, Name: "Air/Fuel Ratio 1", Unit: wire.UnitAFR},
	{ID: 2, Name: "Torque", Unit: wire.UnitTorque},
	{ID: 3, Name: "Power", Unit: wire.UnitPower},
}

var probeChannels = []wire.ChannelDef{
	{ID: 0, Name: "Temperature 1", Unit: wire.UnitTemperature},
	{ID: 1, Name: "Barometric Pressure", Unit: wire.UnitPressure},
}

func startProvider(t *testing.T, ctx context.Context, port int, name string, chans []wire.ChannelDef) *jetdrive.Provider {
	t.Helper()
	p, err := jetdrive.NewProvider(ctx, jetdrive.ProviderConfig{Net: jetdrivetest.Net(port), Name: name,
		NegotiateWindow: 100 * time.Millisecond, ReplyInterval: 20 * time.Millisecond}, chans)
	require.NoError(t, err)
	return p
}

func startClient(t *testing.T, ctx context.Context, cfg jetdrive.ClientConfig) *jetdrive.Client {
	t.Helper()
	if cfg.NegotiateWindow == 0 {
		cfg.NegotiateWindow = 100 * time.Millisecond
	}
	c, err := jetdrive.NewClient(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// nextWhere reads samples until one satisfies ok.
func nextWhere(t *testing.T, ctx context.Context, c *jetdrive.Client, ok func(*dyno.Sample) bool) dyno.Sample {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.Logf("stats: %+v\nmapping: %+v", c.Stats(), c.Mapping())
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s := dyno.NewSample()
	for {
		require.NoError(t, c.Next(ctx, &s))
		if ok(&s) {
			return s
		}
	}
}

func publishFrames(t *testing.T, p *jetdrive.Provider, n int, every time.Duration, values func(i int, ts uint32) []wire.Value) {
	t.Helper()
	for i := 0; i < n; i++ {
		require.NoError(t, p.Publish(values(i, p.Clock())))
		time.Sleep(every)
	}
}

// goPublish publishes in the background; the returned func waits for it.
func goPublish(p *jetdrive.Provider, n int, every time.Duration, values func(i int, ts uint32) []wire.Value) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			if p.Publish(values(i, p.Clock())) != nil {
				return
			}
			time.Sleep(every)
		}
	}()
	return func() { <-done }
}

func dynoFrame(i int, ts uint32) []wire.Value {
	return []wire.Value{{Channel: 0, TS: ts, Value: float32(3000 + i)}, {Channel: 1, TS: ts, Value: 13.2}, {Channel: 2, TS: ts, Value: 135.58179}, {Channel: 3, TS: ts, Value: 74.57}}
}

func TestEndToEnd(t *testing.T) {
	jetdrivetest.EnsureLoopbackMulticast(t)
	t.Parallel()
	ctx := context.Background()
	port := jetdrivetest.Port(t)
	// The provider announces its channels before the client exists: the
	// client learns them by RequestChannelInfo.
	p := startProvider(t, ctx, port, "Sim Dyno", dynoChannels)
	defer p.Close()
	c := startClient(t, ctx, jetdrive.ClientConfig{Net: jetdrivetest.Net(port)})
	waitFor(t, "the client's host ID", 3*time.Second, func() bool { return c.HostID() != 0 })
	defer goPublish(p, 50, 10*time.Millisecond, dynoFrame)()
	s := nextWhere(t, ctx, c, func(s *dyno.Sample) bool { return dyno.Has(s.RPM) && dyno.Has(s.Power) })
	assert.GreaterOrEqual(t, s.RPM, 3000.0)
	assert.InDelta(t, 13.2, s.AFR[dyno.Front], 1e-5)
	assert.InDelta(t, 100, s.Torque, 1e-3, "135.58 N·m is 100 ft·lbf")
	assert.InDelta(t, 100, s.Power, 1e-2, "74.57 kW is 100 hp")
	assert.False(t, dyno.Has(s.MAP))

	lay := c.Layout()
	assert.Equal(t, "jetdrive", lay.Format)
	assert.True(t, lay.Channels.Has(dyno.ChanRPM))
	assert.True(t, lay.Channels.Has(dyno.ChanPower))

	waitFor(t, "clock sync", 3*time.Second, func() bool {
		st := c.Stats()
		return len(st.Providers) == 1 && st.Providers[0].Synced
	})
	st := c.Stats()
	require.Len(t, st.Providers, 1)
	ps := st.Providers[0]
	assert.Equal(t, "Sim Dyno", ps.Name)
	assert.Equal(t, p.HostID(), ps.Host)
	assert.Zero(t, ps.Seq.Dropped)
	require.Len(t, ps.Channels, 4)
	assert.Equal(t, "rpm", ps.Channels[0].Field)
	assert.True(t, ps.Channels[0].Known)
	assert.NotZero(t, st.OwnEchoes, "the client hears its own pings and requests")
	assert.Zero(t, st.Errors)
	assert.NotZero(t, p.Stats().Pongs, "the provider answered the client's ping")
	assert.NotZero(t, p.Stats().Replies, "the provider answered RequestChannelInfo")
}

func TestSeveralProvidersMerge(t *testing.T) {
	jetdrivetest.EnsureLoopbackMulticast(t)
	t.Parallel()
	ctx := context.Background()
	port := jetdrivetest.Port(t)
	c := startClient(t, ctx, jetdrive.ClientConfig{Net: jetdrivetest.Net(port), Passive: true})
	dynoP := startProvider(t, ctx, port, "Power Core", dynoChannels)
	defer dynoP.Close()
	probe := startProvider(t, ctx, port, "Atmospheric Probe", probeChannels)
	defer probe.Close()
	require.NotEqual(t, dynoP.HostID(), probe.HostID())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 40; i++ {
			ts := dynoP.Clock()
			_ = dynoP.Publish(dynoFrame(i, ts))
			// The probe reuses channel IDs 0 and 1: they must not be taken for RPM/AFR.
			_ = probe.Publish([]wire.Value{{Channel: 0, TS: probe.Clock(), Value: 21.5}, {Channel: 1, TS: probe.Clock(), Value: 98.7}})
			time.Sleep(10 * time.Millisecond)
		}
	}()
	defer func() { <-done }()
	s := nextWhere(t, ctx, c, func(s *dyno.Sample) bool {
		return dyno.Has(s.RPM) && dyno.Has(s.Baro) && dyno.Has(s.IAT) == false && dyno.Has(s.AFR[0])
	})
	assert.GreaterOrEqual(t, s.RPM, 3000.0, "RPM comes from the dyno's channel 0, never the probe's")
	assert.InDelta(t, 13.2, s.AFR[0], 1e-5)
	assert.InDelta(t, 98.7, s.Baro, 1e-4)
	m := c.Mapping()
	fields := map[string]uint16{}
	for _, a := range m {
		fields[a.Field.String()] = a.Source.Host
	}
	assert.Equal(t, dynoP.HostID(), fields["rpm"])
	assert.Equal(t, probe.HostID(), fields["baro"])
	assert.Len(t, c.Stats().Providers, 2)
}

func TestProviderRestart(t *testing.T) {
	jetdrivetest.EnsureLoopbackMulticast(t)
	t.Parallel()
	ctx := context.Background()
	port := jetdrivetest.Port(t)
	c := startClient(t, ctx, jetdrive.ClientConfig{Net: jetdrivetest.Net(port)})
	p1 := startProvider(t, ctx, port, "Sim Dyno", dynoChannels)
	publishFrames(t, p1, 10, 5*time.Millisecond, dynoFrame)
	nextWhere(t, ctx, c, func(s *dyno.Sample) bool { return dyno.Has(s.RPM) })
	old := p1.HostID()
	require.NoError(t, p1.Close()) // sends ClearChannelInfo
	waitFor(t, "the clear to be processed", 2*time.Second, func() bool {
		for _, ps := range c.Stats().Providers {
			if ps.Host == old && len(ps.Channels) == 0 {
				return true
			}
		}
		return false
	})
	assert.Empty(t, c.Mapping(), "the cleared provider's channels are unmapped")

	p2 := startProvider(t, ctx, port, "Sim Dyno", dynoChannels)
	defer p2.Close()
	defer goPublish(p2, 20, 5*time.Millisecond, func(i int, ts uint32) []wire.Value { return dynoFrame(1000+i, ts) })()
	s := nextWhere(t, ctx, c, func(s *dyno.Sample) bool {
		return dyno.Has(s.RPM) && s.RPM >= 4000
	})
	assert.GreaterOrEqual(t, s.RPM, 4000.0)
	m := c.Mapping()
	require.NotEmpty(t, m)
	assert.Equal(t, p2.HostID(), m[0].Source.Host)
}

func TestLossAndReorderThroughRelay(t *testing.T) {
	jetdrivetest.EnsureLoopbackMulticast(t)
	t.Parallel()
	ctx := context.Background()
	in, out := jetdrivetest.Port(t), jetdrivetest.Port(t)
	relay, err := jetdrivetest.NewRelay(ctx, in, out, jetdrivetest.Fault{Drop: 0.05, Reorder: 0.05, Duplicate: 0.03, Seed: 7})
	require.NoError(t, err)
	defer relay.Close()
	c := startClient(t, ctx, jetdrive.ClientConfig{Net: jetdrivetest.Net(out), Passive: true})
	p := startProvider(t, ctx, in, "Lossy Dyno", dynoChannels)
	defer p.Close()
	const n = 1500
	for i := 0; i < n; i++ {
		require.NoError(t, p.Publish(dynoFrame(i, uint32(i))))
		if i%50 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	require.NoError(t, p.Close())
	sent := int(p.Stats().Messages)
	waitFor(t, "every relayed datagram", 5*time.Second, func() bool {
		rs := relay.Stats()
		return int(c.Stats().Datagrams) >= rs.Forwarded && rs.Forwarded+rs.Dropped-rs.Duplicated >= sent-1
	})
	rs := relay.Stats()
	st := c.Stats()
	var seq wire.SeqStats
	for _, ps := range st.Providers {
		if ps.Host == p.HostID() {
			seq = ps.Seq
		}
	}
	t.Logf("relay %+v; client seq %+v", rs, seq)
	require.NotZero(t, rs.Dropped)
	require.NotZero(t, rs.Reordered)
	require.NotZero(t, rs.Duplicated)
	assert.Equal(t, uint64(rs.Duplicated), seq.Duplicates)
	assert.Equal(t, uint64(rs.Reordered), seq.Reordered)
	// Drops inside the provider's stream, counted from its sequence numbers
	// (a drop of the very last datagram is invisible to any receiver).
	assert.InDelta(t, rs.Dropped, int(seq.Dropped), 1)
}

// malformed are the spec's bad datagrams (V7 long ping, V8, V9, V15,
// V19-V22) and a few more.
var malformed = []string{
	"040c004d3c2b2b1a018813000041424344454647",
	"021e002b1a05ffff0000d007000000c05a450100d007000000002a4200003408000000",
	"021e002b1a", "0300002b1a", "0300002b1a03ff", "0300", "",
	"010a002b1a0bffff53686f72744e616d6500",
	"0504004d3c312b1a01e80300", "0400004d3c32ffff",
	"0509004d3c332b1a0ae803000005000000", "0405004d3c34ffff0ae8030000",
	"020a00ffff01ffff0000010000000000803f",
	"7f02002b1a07ffff0102",
	"01ffff2b1a0bffff",
}

func TestMalformedFloodWhileValidTrafficContinues(t *testing.T) {
	jetdrivetest.EnsureLoopbackMulticast(t)
	t.Parallel()
	ctx := context.Background()
	port := jetdrivetest.Port(t)
	c := startClient(t, ctx, jetdrive.ClientConfig{Net: jetdrivetest.Net(port)})
	p := startProvider(t, ctx, port, "Sim Dyno", dynoChannels)
	defer p.Close()
	flood, err := jetdrive.Listen(ctx, jetdrivetest.Net(port))
	require.NoError(t, err)
	defer flood.Close()
	var bad [][]byte
	for _, h := range malformed {
		b, err := hex.DecodeString(h)
		require.NoError(t, err)
		bad = append(bad, b)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 3000; i++ {
		if i%300 == 0 {
			require.NoError(t, p.Publish(dynoFrame(i, p.Clock())))
		}
		b := bad[i%len(bad)]
		if i%7 == 0 { // random garbage too
			b = make([]byte, rng.IntN(64))
			for j := range b {
				b[j] = byte(rng.UintN(256))
			}
		}
		require.NoError(t, flood.WritePacket(b))
		if i%100 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	// The client is alive: new valid frames still come through.
	defer goPublish(p, 20, 5*time.Millisecond, func(i int, ts uint32) []wire.Value { return dynoFrame(5000+i, ts) })()
	s := nextWhere(t, ctx, c, func(s *dyno.Sample) bool { return s.RPM >= 5000 })
	assert.GreaterOrEqual(t, s.RPM, 5000.0)
	st := c.Stats()
	e := st.Errors
	t.Logf("errors %+v", e)
	assert.NotZero(t, e.ShortHeader)
	assert.NotZero(t, e.Truncated)
	assert.NotZero(t, e.PayloadTooShort)
	assert.NotZero(t, e.BadVersion)
	assert.NotZero(t, e.UnknownKey)
	assert.NotZero(t, e.SourceAllHosts)
	assert.Zero(t, e.Panics)
	assert.Zero(t, st.ReadErrors)
	var perProvider jetdrive.ErrorCounts
	for _, ps := range st.Providers {
		if ps.Host == 0x1A2B { // the spec vectors' provider sent the too-short ChannelInfo (V15)
			perProvider = ps.Errors
		}
		if ps.Host == p.HostID() {
			assert.Zero(t, ps.Errors, "the real provider sent nothing malformed")
		}
	}
	assert.NotZero(t, perProvider.PayloadTooShort, "errors are also counted per provider")
	assert.NotZero(t, p.Stats().Malformed, "the provider survived the flood too")
}

func TestCollisionRenegotiates(t *testing.T) {
	jetdrivetest.EnsureLoopbackMulticast(t)
	t.Parallel()
	ctx := context.Background()
	port := jetdrivetest.Port(t)
	c := startClient(t, ctx, jetdrive.ClientConfig{Net: jetdrivetest.Net(port)})
	waitFor(t, "a host ID", 3*time.Second, func() bool { return c.HostID() != 0 })
	id := c.HostID()
	other, err := jetdrive.Listen(ctx, jetdrivetest.Net(port))
	require.NoError(t, err)
	defer other.Close()
	// Another node claims our ID and addresses us (Host = Dest = own ID, V16).
	e := wire.Encoder{Host: id, Seq: 99}
	d, err := e.Append(nil, wire.KeyRequestChannelInfo, id, nil)
	require.NoError(t, err)
	require.NoError(t, other.WritePacket(d))
	waitFor(t, "renegotiation", 3*time.Second, func() bool { return c.Stats().Collisions == 1 && c.HostID() != 0 && c.HostID() != id })
}

func TestCloseAndCancelStopPromptly(t *testing.T) {
	jetdrivetest.EnsureLoopbackMulticast(t)
	t.Parallel()
	port := jetdrivetest.Port(t)
	t.Run("close unblocks Next", func(t *testing.T) {
		c, err := jetdrive.NewClient(context.Background(), jetdrive.ClientConfig{Net: jetdrivetest.Net(port)})
		require.NoError(t, err)
		errc := make(chan error, 1)
		go func() {
			s := dyno.NewSample()
			errc <- c.Next(context.Background(), &s)
		}()
		require.NoError(t, c.Close())
		select {
		case err := <-errc:
			assert.ErrorIs(t, err, io.EOF)
		case <-time.After(10 * time.Second):
			t.Fatal("Next still blocked after Close")
		}
	})
	t.Run("cancel stops the client", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		c, err := jetdrive.NewClient(ctx, jetdrive.ClientConfig{Net: jetdrivetest.Net(port)})
		require.NoError(t, err)
		cancel()
		s := dyno.NewSample()
		assert.ErrorIs(t, c.Next(context.Background(), &s), context.Canceled)
		require.NoError(t, c.Close())
	})
	t.Run("Next honours its own ctx", func(t *testing.T) {
		c, err := jetdrive.NewClient(context.Background(), jetdrive.ClientConfig{Net: jetdrivetest.Net(port), Passive: true})
		require.NoError(t, err)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		s := dyno.NewSample()
		assert.ErrorIs(t, c.Next(ctx, &s), context.DeadlineExceeded)
	})
	t.Run("provider negotiation cancelled", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		_, err := jetdrive.NewProvider(ctx, jetdrive.ProviderConfig{Net: jetdrivetest.Net(port)}, nil)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

func TestRecordAndReplay(t *testing.T) {
	jetdrivetest.EnsureLoopbackMulticast(t)
	t.Parallel()
	ctx := context.Background()
	port := jetdrivetest.Port(t)
	f, err := os.CreateTemp(t.TempDir(), "*.jdcap")
	require.NoError(t, err)
	defer f.Close()
	rec, err := jetdrive.Listen(ctx, jetdrivetest.Net(port))
	require.NoError(t, err)
	w, err := jetdrive.NewCaptureWriter(f, time.Now())
	require.NoError(t, err)
	rctx, stop := context.WithCancel(ctx)
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	seen := &watchTransport{Transport: rec, cleared: make(chan struct{})}
	go func() { n, err := jetdrive.Record(rctx, seen, w); done <- result{n, err} }()

	p := startProvider(t, ctx, port, "Sim Dyno", dynoChannels)
	const frames = 50
	publishFrames(t, p, frames, 2*time.Millisecond, dynoFrame)
	require.NoError(t, p.Close())
	// The provider's last datagram is its ClearChannelInfo: once the
	// recorder has read it, the capture is complete.
	select {
	case <-seen.cleared:
	case <-time.After(10 * time.Second):
		t.Fatal("the recorder never read the provider's ClearChannelInfo")
	}
	stop()
	r := <-done
	require.NoError(t, r.err)
	require.Greater(t, r.n, frames)

	_, err = f.Seek(0, io.SeekStart)
	require.NoError(t, err)
	src, err := jetdrive.OpenReplay(ctx, f, 0, jetdrive.ClientConfig{Buffer: 8})
	require.NoError(t, err)
	defer src.Close()
	samples, err := dyno.Collect(ctx, src)
	require.NoError(t, err)
	var rpm []float64
	for _, s := range samples {
		if dyno.Has(s.RPM) {
			rpm = append(rpm, s.RPM)
		}
	}
	require.Len(t, rpm, frames, "every frame, none dropped although the buffer holds 8")
	for i, v := range rpm {
		assert.Equal(t, float64(3000+i), v)
	}
	for i := 1; i < len(samples); i++ {
		assert.Greater(t, samples[i].Time, samples[i-1].Time, "sample times follow the provider clock and strictly increase")
	}
	assert.Zero(t, src.Stats().Overflow)

	// Replay onto the network: a client on another port sees the frames.
	port2 := jetdrivetest.Port(t)
	c := startClient(t, ctx, jetdrive.ClientConfig{Net: jetdrivetest.Net(port2), Passive: true})
	out, err := jetdrive.Listen(ctx, jetdrivetest.Net(port2))
	require.NoError(t, err)
	defer out.Close()
	_, err = f.Seek(0, io.SeekStart)
	require.NoError(t, err)
	cr, err := jetdrive.NewCaptureReader(f)
	require.NoError(t, err)
	n, err := jetdrive.Replay(ctx, cr, out, 4)
	require.NoError(t, err)
	assert.Equal(t, r.n, n)
	nextWhere(t, ctx, c, func(s *dyno.Sample) bool { return s.RPM == 3000+frames-1 })
}

func TestStreamSimulatedSource(t *testing.T) {
	jetdrivetest.EnsureLoopbackMulticast(t)
	t.Parallel()
	ctx := context.Background()
	port := jetdrivetest.Port(t)
	c := startClient(t, ctx, jetdrive.ClientConfig{Net: jetdrivetest.Net(port), Passive: true})
	p := startProvider(t, ctx, port, "Sim Dyno", nil)
	defer p.Close()
	lay := dyno.Layout{Name: "sweep", Format: "test", Cylinders: 2, Channels: dyno.NewChannelSet(
		dyno.ChanTime, dyno.ChanRPM, dyno.ChanMAP, dyno.ChanTPS, dyno.ChanAFR, dyno.ChanTorque, dyno.ChanPower,
		dyno.ChanIAT, dyno.ChanBaro, dyno.ChanDrumSpeed, dyno.ChanSpark)}
	var in []dyno.Sample
	for i := 0; i < 40; i++ {
		s := dyno.NewSample()
		s.Time = time.Duration(i) * 5 * time.Millisecond
		s.RPM, s.MAP, s.TPS = 2000+float64(i)*50, 60+float64(i)/2, 100
		s.AFR[0], s.AFR[1] = 13.1, 13.4
		s.Torque, s.Power = 90, 2000*90/5252.0
		s.IAT, s.Baro, s.DrumSpeed = 30, 100.5, 60
		s.Spark[0], s.Spark[1] = 28, 27
		in = append(in, s)
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Stream(ctx, dyno.NewSliceSource(lay, in), jetdrive.StreamOptions{}) }()
	got := nextWhere(t, ctx, c, func(s *dyno.Sample) bool { return s.RPM == in[len(in)-1].RPM })
	require.NoError(t, <-errc)
	want := in[len(in)-1]
	assert.InDelta(t, want.MAP, got.MAP, 1e-4)
	assert.InDelta(t, want.AFR[1], got.AFR[1], 1e-5)
	assert.InDelta(t, want.Torque, got.Torque, 1e-3)
	assert.InDelta(t, want.Power, got.Power, 1e-3)
	assert.InDelta(t, want.DrumSpeed, got.DrumSpeed, 1e-3)
	assert.InDelta(t, want.Spark[1], got.Spark[1], 1e-5)
	assert.InDelta(t, want.Baro, got.Baro, 1e-4)
	assert.True(t, math.IsNaN(got.ECT))
}

func TestReplayRejectsBadCapture(t *testing.T) {
	tests := []struct {
		name   string
		data   []byte
		offset int64
	}{
		{"empty", nil, 0},
		{"bad magic", []byte("NOTACAPTUREFILE!"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := jetdrive.NewCaptureReader(bytesReader(tt.data))
			require.ErrorIs(t, err, jetdrive.ErrBadCapture)
			var ce *jetdrive.CaptureError
			require.True(t, errors.As(err, &ce))
			assert.Equal(t, tt.offset, ce.Offset)
		})
	}
}

// watchTransport closes cleared when a ClearChannelInfo other than a
// provider's first one (sent when it starts) has been read.
type watchTransport struct {
	jetdrive.Transport
	clears  int
	cleared chan struct{}
}

func (w *watchTransport) ReadPacket(b []byte) (int, netip.AddrPort, error) {
	n, from, err := w.Transport.ReadPacket(b)
	if err == nil {
		if m, perr := wire.ParseMessage(b[:n]); perr == nil && m.Key == wire.KeyClearChannelInfo {
			if w.clears++; w.clears == 2 {
				close(w.cleared)
			}
		}
	}
	return n, from, err
}
