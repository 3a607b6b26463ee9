package jetdrive

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/jetdrive/wire"
)

// ProviderConfig configures a Provider. The zero value joins the default
// network as "DynoAI" with the reference's cadence.
type ProviderConfig struct {
	// Net chooses the interface, groups and port when Transport is nil.
	Net NetConfig
	// Transport, when set, replaces the network; the provider closes it.
	Transport Transport
	// Name is the provider name sent in ChannelInfo; "" means "DynoAI".
	Name string
	// HostID is a fixed host ID; 0 negotiates one.
	HostID uint16
	// NegotiateWindow is how long negotiation listens; 0 means 1 s.
	NegotiateWindow time.Duration
	// InfoInterval repeats ChannelInfo; 0 means 30 s (the protocol's
	// liveness contract).
	InfoInterval time.Duration
	// ReplyInterval is the least time between two answers to
	// RequestChannelInfo; 0 means 200 ms. Requests inside it are counted
	// and answered by the next reply.
	ReplyInterval time.Duration
	// MTU is the value budget per message; 0 means 1400.
	MTU int
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
}

// ProviderCounters counts a Provider's own traffic.
type ProviderCounters struct {
	Messages   uint64 `json:"messages"`   // datagrams sent
	Values     uint64 `json:"values"`     // value records sent
	Pongs      uint64 `json:"pongs"`      // Pings answered
	Requests   uint64 `json:"requests"`   // RequestChannelInfo received
	Replies    uint64 `json:"replies"`    // ChannelInfo answers sent
	Collisions uint64 `json:"collisions"` // host-ID collisions (renegotiated)
	Malformed  uint64 `json:"malformed"`  // datagrams that did not decode
}

// Provider publishes channels and values on JetDrive, like a dyno: it
// negotiates a host ID, sends ClearChannelInfo then ChannelInfo (paged, on
// every change and every InfoInterval), answers Ping and RequestChannelInfo
// (to ALL_HOSTS, rate-limited, never its own), and sends ClearChannelInfo
// when closed. It is safe for concurrent use.
type Provider struct {
	cfg  ProviderConfig
	node *node

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	reply    chan struct{}
	stopOnce sync.Once
	stopped  chan struct{}

	mu    sync.Mutex
	chans []wire.ChannelDef
	stats ProviderCounters
	out   [][]byte
}

// NewProvider joins the network, negotiates a host ID (waiting
// NegotiateWindow; ctx bounds the wait) and announces chans. The provider
// runs until Close or until ctx is cancelled.
func NewProvider(ctx context.Context, cfg ProviderConfig, chans []wire.ChannelDef) (*Provider, error) {
	if cfg.Name == "" {
		cfg.Name = "DynoAI"
	}
	if cfg.NegotiateWindow <= 0 {
		cfg.NegotiateWindow = time.Second
	}
	if cfg.InfoInterval <= 0 {
		cfg.InfoInterval = 30 * time.Second
	}
	if cfg.ReplyInterval <= 0 {
		cfg.ReplyInterval = 200 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	tr := cfg.Transport
	if tr == nil {
		mc, err := Listen(ctx, cfg.Net)
		if err != nil {
			return nil, err
		}
		tr = mc
	}
	pctx, cancel := context.WithCancel(ctx)
	p := &Provider{cfg: cfg, node: newNode(tr, cfg.Logger, cfg.HostID, cfg.MTU), ctx: pctx, cancel: cancel,
		reply: make(chan struct{}, 1), stopped: make(chan struct{}), chans: append([]wire.ChannelDef(nil), chans...)}
	p.wg.Add(1)
	go p.readLoop()
	if cfg.HostID == 0 {
		if _, err := p.node.negotiate(pctx, cfg.NegotiateWindow); err != nil {
			cancel()
			_ = tr.Close()
			p.wg.Wait()
			return nil, fmt.Errorf("jetdrive: provider host-ID negotiation: %w", err)
		}
	}
	if err := p.announce(); err != nil {
		cancel()
		_ = tr.Close()
		p.wg.Wait()
		return nil, err
	}
	p.wg.Add(1)
	go p.controlLoop()
	go func() {
		<-pctx.Done()
		p.stop()
	}()
	return p, nil
}

// HostID returns the provider's host ID.
func (p *Provider) HostID() uint16 { return p.node.host() }

// Clock returns the provider's clock in ms, the time base of its value
// timestamps, Pings and Pongs.
func (p *Provider) Clock() uint32 { return p.node.clock(time.Now()) }

// Stats returns a copy of the provider's counters.
func (p *Provider) Stats() ProviderCounters {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Channels returns the announced channels.
func (p *Provider) Channels() []wire.ChannelDef {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]wire.ChannelDef(nil), p.chans...)
}

// announce sends ClearChannelInfo then the channel list.
func (p *Provider) announce() error {
	if err := p.send(wire.KeyClearChannelInfo, nil); err != nil {
		return err
	}
	return p.SendInfo()
}

func (p *Provider) send(key wire.Key, value []byte) error {
	if err := p.node.send(key, wire.AllHosts, value); err != nil {
		return err
	}
	p.mu.Lock()
	p.stats.Messages++
	p.mu.Unlock()
	return nil
}

// SetChannels replaces the channel list: ClearChannelInfo, then ChannelInfo.
func (p *Provider) SetChannels(chans []wire.ChannelDef) error {
	p.mu.Lock()
	p.chans = append(p.chans[:0], chans...)
	p.mu.Unlock()
	return p.announce()
}

// SendInfo sends the channel list now, paged to the MTU.
func (p *Provider) SendInfo() error {
	p.mu.Lock()
	chans := append([]wire.ChannelDef(nil), p.chans...)
	p.mu.Unlock()
	var n int
	err := p.node.sendBuilt(func(e *wire.Encoder) ([][]byte, error) {
		ds, err := e.ChannelInfo(wire.AllHosts, p.cfg.Name, chans)
		n = len(ds)
		return ds, err
	})
	p.mu.Lock()
	p.stats.Messages += uint64(n)
	p.mu.Unlock()
	return err
}

// Publish sends vals now, in order, as few ChannelValues messages as the
// MTU allows. Timestamps should come from Clock.
func (p *Provider) Publish(vals []wire.Value) error {
	var n int
	err := p.node.sendBuilt(func(e *wire.Encoder) ([][]byte, error) {
		ds, err := e.Values(p.out[:0], wire.AllHosts, vals)
		p.out = ds
		n = len(ds)
		return ds, err
	})
	p.mu.Lock()
	p.stats.Messages += uint64(n)
	p.stats.Values += uint64(len(vals))
	p.mu.Unlock()
	return err
}

// Close sends ClearChannelInfo, stops the provider and closes its
// transport. The provider does the same when its context is cancelled (a
// -duration or SIGINT): listeners always learn that its channels are gone.
func (p *Provider) Close() error {
	p.cancel()
	<-p.stopped
	p.wg.Wait()
	return nil
}

// clearTimeout bounds the final ClearChannelInfo, which is sent after the
// provider's context may be done.
const clearTimeout = 250 * time.Millisecond

// stop sends ClearChannelInfo with its own short deadline, then closes the
// transport; it runs once, when the provider's context is done.
func (p *Provider) stop() {
	p.stopOnce.Do(func() {
		defer close(p.stopped)
		if d, ok := p.node.tr.(interface{ SetWriteDeadline(time.Time) error }); ok {
			_ = d.SetWriteDeadline(time.Now().Add(clearTimeout))
		}
		if err := p.send(wire.KeyClearChannelInfo, nil); err != nil {
			p.cfg.Logger.Warn("jetdrive: provider: final ClearChannelInfo", "err", err)
		}
		_ = p.node.tr.Close()
	})
}

func (p *Provider) readLoop() {
	defer p.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, _, err := p.node.tr.ReadPacket(buf)
		if err != nil {
			if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
				return
			}
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		p.handle(buf[:n], time.Now())
	}
}

func (p *Provider) handle(b []byte, at time.Time) {
	m, err := wire.ParseMessage(b)
	if err != nil {
		p.count(&p.stats.Malformed)
		return
	}
	if m.Host == wire.AllHosts || p.node.observe(m.Header) {
		return
	}
	me := p.node.host()
	if me == 0 {
		return // negotiating: observe recorded the host
	}
	if m.Host == me {
		if m.Dest == me {
			p.count(&p.stats.Collisions)
			p.cfg.Logger.Warn("jetdrive: provider host ID collision, renegotiating", "host", me)
			p.wg.Add(1) // the read loop holds the group open, so Add cannot race Wait
			go p.renegotiate()
		}
		return
	}
	if m.Dest != me && m.Dest != wire.AllHosts {
		return
	}
	switch m.Key {
	case wire.KeyPing:
		ping, err := wire.DecodePing(&m)
		if err != nil {
			p.count(&p.stats.Malformed)
			return
		}
		if err := p.node.pong(m.Host, ping, at); err == nil {
			p.count(&p.stats.Pongs)
		}
	case wire.KeyRequestChannelInfo:
		p.count(&p.stats.Requests)
		select {
		case p.reply <- struct{}{}:
		default:
		}
	}
}

func (p *Provider) count(c *uint64) {
	p.mu.Lock()
	*c++
	p.mu.Unlock()
}

func (p *Provider) renegotiate() {
	defer p.wg.Done()
	if _, err := p.node.negotiate(p.ctx, p.cfg.NegotiateWindow); err != nil {
		return
	}
	if err := p.announce(); err != nil {
		p.cfg.Logger.Warn("jetdrive: provider announce", "err", err)
	}
}

func (p *Provider) controlLoop() {
	defer p.wg.Done()
	info := time.NewTicker(p.cfg.InfoInterval)
	defer info.Stop()
	var last time.Time
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-info.C:
			if err := p.SendInfo(); err != nil {
				p.cfg.Logger.Warn("jetdrive: provider info", "err", err)
			}
		case <-p.reply:
			if wait := p.cfg.ReplyInterval - time.Since(last); wait > 0 {
				select {
				case <-p.ctx.Done():
					return
				case <-time.After(wait):
				}
			}
			last = time.Now()
			if err := p.SendInfo(); err != nil {
				p.cfg.Logger.Warn("jetdrive: provider reply", "err", err)
			}
			p.count(&p.stats.Replies)
		}
	}
}

// sampleChannel pairs a channel announced by Stream with its Sample field.
type sampleChannel struct {
	def   wire.ChannelDef
	field Field
}

// sampleChannels returns the channels Stream announces for a source with
// layout l: DynoAI's names with SI JDUnits ("Engine RPM"/EngineSpeed,
// "MAP kPa"/Pressure, "Air/Fuel Ratio 1"/AFR, "Torque"/Torque in N·m,
// "Power"/Power in kW ...), IDs from 0 in field order, with their fields.
func sampleChannels(l dyno.Layout) []sampleChannel {
	cyl := min(max(l.Cylinders, 1), dyno.MaxCylinders)
	var out []sampleChannel
	add := func(f Field, name string, u wire.Unit) {
		out = append(out, sampleChannel{wire.ChannelDef{ID: uint16(len(out)), Name: name, Unit: u}, f})
	}
	perCyl := func(ch dyno.Channel, name string, u wire.Unit) {
		for i := 0; i < cyl; i++ {
			add(Field{Channel: ch, Cylinder: i}, fmt.Sprintf("%s %d", name, i+1), u)
		}
	}
	for _, ch := range l.Channels.List() {
		switch ch {
		case dyno.ChanRPM:
			add(Field{Channel: ch}, "Engine RPM", wire.UnitEngineSpeed)
		case dyno.ChanMAP:
			add(Field{Channel: ch}, "MAP kPa", wire.UnitPressure)
		case dyno.ChanTPS:
			add(Field{Channel: ch}, "TPS", wire.UnitPercentage)
		case dyno.ChanAFR:
			perCyl(ch, "Air/Fuel Ratio", wire.UnitAFR)
		case dyno.ChanAFRCommanded:
			perCyl(ch, "AFR Target", wire.UnitAFR)
		case dyno.ChanLambda:
			perCyl(ch, "Lambda", wire.UnitLambda)
		case dyno.ChanSpark:
			perCyl(ch, "Spark", wire.UnitNone)
		case dyno.ChanKnock:
			perCyl(ch, "Knock", wire.UnitNone)
		case dyno.ChanTorque:
			add(Field{Channel: ch}, "Torque", wire.UnitTorque)
		case dyno.ChanPower:
			add(Field{Channel: ch}, "Power", wire.UnitPower)
		case dyno.ChanIAT:
			add(Field{Channel: ch}, "IAT", wire.UnitTemperature)
		case dyno.ChanECT:
			add(Field{Channel: ch}, "ECT", wire.UnitTemperature)
		case dyno.ChanBaro:
			add(Field{Channel: ch}, "Barometric Pressure", wire.UnitPressure)
		case dyno.ChanDrumSpeed:
			add(Field{Channel: ch}, "Speed 1", wire.UnitSpeed)
		case dyno.ChanDrumForce:
			add(Field{Channel: ch}, "Force Drum 1", wire.UnitForce)
		}
	}
	return out
}

// StreamOptions pace Provider.Stream.
type StreamOptions struct {
	// Rate is the number of samples per second; 0 paces by Sample.Time
	// (original speed); a negative rate sends as fast as possible.
	Rate float64
}

// Stream announces the channels of src's layout (DynoAI's names with SI
// JDUnits: "Engine RPM", "MAP kPa", "Air/Fuel Ratio 1", "Torque" in N·m,
// "Power" in kW ..., IDs from 0 in field order) and
// publishes every sample of src, converted to JDUnits and stamped on the
// provider's clock, until src ends (nil) or ctx is cancelled. Missing
// fields are not sent.
func (p *Provider) Stream(ctx context.Context, src dyno.Source, opt StreamOptions) error {
	sc := sampleChannels(src.Layout())
	defs := make([]wire.ChannelDef, len(sc))
	for i, c := range sc {
		defs[i] = c.def
	}
	if err := p.SetChannels(defs); err != nil {
		return err
	}
	start := time.Now()
	startTS := p.node.clock(start)
	s := dyno.NewSample()
	vals := make([]wire.Value, 0, len(sc))
	var first time.Duration
	for i := 0; ; i++ {
		s.Reset()
		err := src.Next(ctx, &s)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if i == 0 {
			first = s.Time
		}
		var due time.Duration
		switch {
		case opt.Rate > 0:
			due = time.Duration(float64(i) / opt.Rate * float64(time.Second))
		case opt.Rate == 0:
			due = s.Time - first
		default:
			due = time.Since(start)
		}
		if wait := time.Until(start.Add(due)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-p.ctx.Done():
				t.Stop()
				return p.ctx.Err()
			case <-t.C:
			}
		}
		ts := startTS + uint32(due.Milliseconds())
		vals = vals[:0]
		for _, c := range sc {
			if v := c.field.Get(&s); dyno.Has(v) {
				vals = append(vals, wire.Value{Channel: c.def.ID, TS: ts, Value: float32(c.def.Unit.FromLibrary(v))})
			}
		}
		if err := p.Publish(vals); err != nil {
			// A -duration or SIGINT ends the provider's context while a
			// datagram is on its way: the stop path closes the transport
			// under it, and that is the end of the stream, not a failure.
			if cerr := cmp.Or(ctx.Err(), p.ctx.Err()); cerr != nil {
				return cerr
			}
			return err
		}
	}
}
