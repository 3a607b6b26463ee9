package jetdrive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/jetdrive/wire"
)

// Client is a live JetDrive client: it joins the network, learns providers
// and channels, tracks their health, maps channels to dyno.Sample fields
// and yields merged samples as a dyno.Source. It is safe for concurrent use.
//
// Providers: a host becomes a provider when it sends ChannelInfo,
// ChannelValues or ClearChannelInfo; other nodes (clients that only ping or
// request channels) are counted in Stats.Peer and never listed. A provider
// is forgotten after GoneAfter of silence, after StaleAfter of silence
// once it cleared its channels, or at once when it reappears under a new
// host ID (same name, same address) while the old ID has gone quiet.
//
// Samples: a frame is a provider's records of one timestamp. The primary
// provider, the one whose channel feeds RPM (else the one feeding most
// fields, the lowest host ID on a tie), emits one sample per frame: the
// merged state, timed on the client's clock (provider clocks synchronised
// by Ping/Pong, else anchored at arrival). Frames of other providers only
// update the fields they feed, which the next sample carries; frames that
// feed no field are ignored. Records older than the provider's newest frame
// (late) or of a frame already emitted (duplicate) are dropped, so sample
// times strictly increase; see Stats.Discarded. A field keeps its last
// value until its channel goes stale (dyno.Missing). Samples wait in a
// bounded buffer; see ClientConfig.Overflow.
type Client struct {
	cfg   ClientConfig
	node  *node
	tr    Transport
	timed interface{ PacketTime() time.Time }

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	renego chan struct{}
	notify chan struct{}
	events chan Event
	done   chan struct{}

	mu       sync.Mutex
	space    *sync.Cond // signalled when Next frees room (Block policy)
	base     time.Time
	baseSet  bool
	lastAt   time.Time
	stats    Stats
	provs    map[uint16]*provState
	assign   []Assignment
	fieldAt  []time.Time
	cur      dyno.Sample
	ring     []dyno.Sample
	head, n  int
	endErr   error
	frameGen uint64
	primary  uint16        // the host whose frames emit samples
	emitted  bool          // a sample was emitted
	lastTime time.Duration // the time of the last sample
	clock    func() time.Time
	vals     []wire.Value
	info     wire.ChannelInfo
}

// NewClient starts a client. It runs until ctx is cancelled or Close is
// called; the host-ID negotiation runs in the background.
func NewClient(ctx context.Context, cfg ClientConfig) (*Client, error) {
	cfg.defaults()
	tr := cfg.Transport
	if tr == nil {
		mc, err := Listen(ctx, cfg.Net)
		if err != nil {
			return nil, err
		}
		tr = mc
	}
	c := newClient(ctx, cfg, tr)
	c.wg.Add(2)
	go c.readLoop()
	go c.controlLoop()
	go func() {
		<-c.ctx.Done()
		_ = tr.Close()
		c.mu.Lock()
		c.space.Broadcast()
		c.mu.Unlock()
		c.wg.Wait()
		c.mu.Lock()
		if c.endErr == nil {
			c.endErr = ctx.Err()
			if c.endErr == nil {
				c.endErr = io.EOF
			}
		}
		c.mu.Unlock()
		close(c.events)
		close(c.done)
	}()
	return c, nil
}

// newClient builds a client without starting its goroutines.
func newClient(ctx context.Context, cfg ClientConfig, tr Transport) *Client {
	cctx, cancel := context.WithCancel(ctx)
	c := &Client{
		cfg: cfg, tr: tr, ctx: cctx, cancel: cancel,
		node:   newNode(tr, cfg.Logger, cfg.HostID, wire.DefaultMTU),
		renego: make(chan struct{}, 1), notify: make(chan struct{}, 1), done: make(chan struct{}),
		events: make(chan Event, 256),
		provs:  map[uint16]*provState{},
		ring:   make([]dyno.Sample, cfg.Buffer), cur: dyno.NewSample(),
		vals: make([]wire.Value, 0, 1024),
	}
	c.space = sync.NewCond(&c.mu)
	c.timed, _ = tr.(interface{ PacketTime() time.Time })
	c.base = c.node.base
	c.baseSet = c.timed == nil
	return c
}

// Close stops the client and waits for its goroutines; buffered samples
// stay readable, then Next returns io.EOF.
func (c *Client) Close() error {
	c.cancel()
	<-c.done
	return nil
}

// Layout describes the client's stream: format "jetdrive", two cylinders,
// and the channels currently mapped.
func (c *Client) Layout() dyno.Layout {
	c.mu.Lock()
	defer c.mu.Unlock()
	var set dyno.ChannelSet = dyno.NewChannelSet(dyno.ChanTime)
	cyl := 1
	for _, a := range c.assign {
		set = set.With(a.Field.Channel)
		cyl = max(cyl, a.Field.Cylinder+1)
	}
	return dyno.Layout{Name: "jetdrive", Format: "jetdrive", Cylinders: max(cyl, 2), Channels: set}
}

// Next waits for the next merged sample. It returns ctx's error when ctx is
// cancelled, io.EOF once the client was closed (or a replay ended) and the
// buffer is drained, or the context error of the ctx given to NewClient.
// Samples go to one consumer: concurrent callers share the stream.
func (c *Client) Next(ctx context.Context, s *dyno.Sample) error {
	for {
		c.mu.Lock()
		if c.n > 0 {
			*s = c.ring[c.head]
			c.head = (c.head + 1) % len(c.ring)
			c.n--
			c.space.Signal()
			c.mu.Unlock()
			return nil
		}
		end := c.endErr
		c.mu.Unlock()
		if end != nil {
			return end
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.notify:
		case <-c.done:
		}
	}
}

// Mapping returns the current channel-to-field assignments.
func (c *Client) Mapping() []Assignment {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Assignment(nil), c.assign...)
}

// HostID returns the client's host ID, 0 while passive or negotiating.
func (c *Client) HostID() uint16 { return c.node.host() }

// now is the client's clock: the recorded time of the last datagram of a
// replay, a test's clock, or the wall clock.
func (c *Client) now() time.Time {
	switch {
	case c.timed != nil:
		return c.lastAt
	case c.clock != nil:
		return c.clock()
	}
	return time.Now()
}

func (c *Client) localMS(at time.Time) int64 { return at.Sub(c.base).Milliseconds() }

func (c *Client) readLoop() {
	defer c.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := c.tr.ReadPacket(buf)
		if err != nil {
			if c.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, io.EOF) {
				c.mu.Lock()
				c.flushAll()
				c.endErr = io.EOF
				c.mu.Unlock()
				c.wake()
				return
			}
			c.mu.Lock()
			c.stats.ReadErrors++
			c.mu.Unlock()
			c.cfg.Logger.Warn("jetdrive: read error", "err", err)
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		at := time.Now()
		if c.timed != nil {
			at = c.timed.PacketTime()
		}
		c.handleSafe(buf[:n], from, at)
	}
}

// handleSafe runs handle and survives any panic (a user Convert): the read
// loop never dies because of a datagram.
func (c *Client) handleSafe(b []byte, from netip.AddrPort, at time.Time) {
	defer func() {
		if r := recover(); r != nil {
			c.mu.Lock()
			c.stats.Errors.Panics++
			c.mu.Unlock()
			c.cfg.Logger.Error("jetdrive: recovered panic while handling a datagram", "panic", r)
		}
	}()
	c.handle(b, from, at)
}

func (c *Client) handle(b []byte, from netip.AddrPort, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.baseSet {
		c.base, c.baseSet = at, true
	}
	c.lastAt = at
	c.stats.Datagrams++
	c.stats.Bytes += uint64(len(b))
	m, err := wire.ParseMessage(b)
	if err != nil {
		c.countErr(nil, err)
		return
	}
	if m.Host == wire.AllHosts {
		c.stats.Errors.SourceAllHosts++
		return
	}
	if c.node.observe(m.Header) {
		c.stats.OwnEchoes++
		return
	}
	me := c.node.host()
	if me != 0 && m.Host == me {
		if m.Dest == me && !c.cfg.Passive {
			c.stats.Collisions++
			c.emit(Event{Kind: EventCollision, Host: me, At: at})
			c.cfg.Logger.Warn("jetdrive: host ID collision, renegotiating", "host", me)
			select {
			case c.renego <- struct{}{}:
			default:
			}
		}
		return
	}
	addressed := m.Dest == wire.AllHosts || m.Dest == me
	if m.Host == 0 { // a node negotiating its ID: it only pings
		if m.Key == wire.KeyPing && addressed {
			c.handlePing(&m, nil, at)
		}
		return
	}
	providerMsg := m.Key == wire.KeyChannelInfo || m.Key == wire.KeyChannelValues || m.Key == wire.KeyClearChannelInfo
	p := c.provs[m.Host]
	if p == nil && providerMsg {
		if p = c.provider(m.Host, from, at); p == nil {
			c.stats.Errors.OverLimit++
			return
		}
	}
	if p == nil {
		c.peer(&m, addressed, at)
		return
	}
	p.addr = from
	p.messages++
	p.lastSeen = at
	if m.Key == wire.KeyClearChannelInfo {
		p.seq.Reset() // a provider that restarted with the same ID
	}
	p.seq.Observe(m.Seq)
	switch m.Key {
	case wire.KeyChannelInfo, wire.KeyChannelValues, wire.KeyClearChannelInfo:
		if !addressed && c.cfg.OnlyAddressed {
			c.stats.NotForUs++
			return
		}
		p.cleared = m.Key == wire.KeyClearChannelInfo
	case wire.KeyPing, wire.KeyRequestChannelInfo:
		if !addressed {
			c.stats.NotForUs++
			return
		}
	case wire.KeyPong:
		if me == 0 || m.Dest != me { // to ALL_HOSTS is invalid; to 0 is negotiation
			c.stats.NotForUs++
			return
		}
	}
	switch m.Key {
	case wire.KeyChannelInfo:
		if err := wire.DecodeChannelInfo(&m, &c.info); err != nil {
			c.countErr(p, err)
			return
		}
		if c.info.Remainder != 0 {
			c.countPartial(p)
		}
		c.learn(p, &c.info, at)
	case wire.KeyChannelValues:
		c.values(p, &m, at)
	case wire.KeyClearChannelInfo:
		name := p.name
		c.clear(p)
		p.restartClock()
		c.emit(Event{Kind: EventCleared, Host: p.host, Name: name, At: at})
	case wire.KeyPing:
		c.handlePing(&m, p, at)
	case wire.KeyPong:
		pong, err := wire.DecodePong(&m)
		if err != nil {
			c.countErr(p, err)
			return
		}
		c.sync(p, pong, at)
	default:
		if m.Key.Known() {
			c.stats.Ignored++
		} else {
			c.stats.Errors.UnknownKey++
			p.errs.UnknownKey++
		}
	}
}

// peer handles a message from a host that is not a provider (another
// client): it answers its pings and otherwise only counts it.
func (c *Client) peer(m *wire.Message, addressed bool, at time.Time) {
	c.stats.Peer++
	switch {
	case m.Key == wire.KeyPing && addressed:
		c.handlePing(m, nil, at)
	case m.Key == wire.KeyPong:
		if _, err := wire.DecodePong(m); err != nil {
			c.countErr(nil, err)
		}
	case !m.Key.Known():
		c.stats.Errors.UnknownKey++
	}
}

func (c *Client) wake() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *Client) controlLoop() {
	defer c.wg.Done()
	transmit := !c.cfg.Passive && c.timed == nil
	negotiate := func() bool {
		id, err := c.node.negotiate(c.ctx, c.cfg.NegotiateWindow)
		if err != nil {
			if c.ctx.Err() == nil {
				c.cfg.Logger.Error("jetdrive: host-ID negotiation failed", "err", err)
			}
			return false
		}
		c.cfg.Logger.Info("jetdrive: host ID", "host", fmt.Sprintf("0x%04X", id))
		c.mu.Lock()
		c.emit(Event{Kind: EventHostID, Host: id, At: time.Now()})
		c.mu.Unlock()
		if err := c.node.send(wire.KeyRequestChannelInfo, wire.AllHosts, nil); err != nil {
			c.cfg.Logger.Warn("jetdrive: request channel info", "err", err)
		}
		return true
	}
	if transmit {
		if c.cfg.HostID == 0 {
			if !negotiate() {
				return
			}
		} else if err := c.node.send(wire.KeyRequestChannelInfo, wire.AllHosts, nil); err != nil {
			c.cfg.Logger.Warn("jetdrive: request channel info", "err", err)
		}
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.renego:
			if transmit && !negotiate() {
				return
			}
		case <-t.C:
			c.tick(transmit)
		}
	}
}

func (c *Client) tick(transmit bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.dedupe(now)
	for h, p := range c.provs {
		if p.pending && now.Sub(p.pendSeen) > 100*time.Millisecond {
			c.commit(p)
		}
		switch {
		case now.Sub(p.lastSeen) > c.cfg.GoneAfter:
			c.forget(p, now, "silent")
			continue
		case p.cleared && now.Sub(p.lastSeen) > c.cfg.StaleAfter:
			c.forget(p, now, "cleared")
			continue
		}
		if !transmit || c.node.host() == 0 {
			continue
		}
		if now.Sub(p.lastSeen) < c.cfg.StaleAfter && (!p.synced || now.Sub(p.syncAt) > c.cfg.PingInterval) {
			c.ping(p, now)
		}
		if p.known == 0 && len(p.chans) > 0 && now.Sub(p.lastReq) > c.cfg.RequestInterval {
			p.lastReq = now
			if err := c.node.send(wire.KeyRequestChannelInfo, h, nil); err != nil {
				c.cfg.Logger.Warn("jetdrive: request channel info", "err", err)
			}
		}
	}
}
