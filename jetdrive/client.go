package jetdrive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/jetdrive/wire"
)

// OverflowPolicy says what a full sample buffer does with a new sample.
type OverflowPolicy int

const (
	// DropOldest discards the oldest buffered sample (live displays and
	// analysis want the freshest data). The default.
	DropOldest OverflowPolicy = iota
	// DropNewest discards the new sample, like the reference provider queue.
	DropNewest
	// Block makes the reader wait for room: nothing is discarded by the
	// client. For replays; on a live network the socket buffer then
	// overflows instead, which shows as sequence drops.
	Block
)

// EventKind says what an Event reports.
type EventKind uint8

// The events of a Client.
const (
	EventHostID       EventKind = iota + 1 // the client took host ID Host
	EventProviderUp                        // a new host was heard
	EventChannels                          // a provider's channel list or name changed (mapping redone)
	EventCleared                           // a provider sent ClearChannelInfo
	EventProviderGone                      // a provider was silent for GoneAfter and is forgotten
	EventCollision                         // another node uses our host ID; renegotiating
	EventBadVersion                        // a Ping or Pong with a version outside 1..9 (Err says which)
)

var eventNames = [...]string{"", "host-id", "provider-up", "channels", "cleared", "provider-gone", "collision", "bad-version"}

// String returns the kind's name, for example "provider-up".
func (k EventKind) String() string {
	if int(k) < len(eventNames) && k != 0 {
		return eventNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is something that happened to a Client, for applications that
// react (zero the gauges on EventCleared, warn on EventBadVersion).
type Event struct {
	Kind EventKind
	Host uint16 // the provider, or the client itself for EventHostID/EventCollision
	Name string // the provider name when known
	At   time.Time
	Err  error // for EventBadVersion
}

// ClientConfig configures a Client. The zero value is a transmitting client
// on the default-route interface with the documented defaults.
type ClientConfig struct {
	// Net chooses the interface, groups and port when Transport is nil.
	Net NetConfig
	// Transport, when set, replaces the network (a replay, a test relay).
	// The client closes it.
	Transport Transport
	// Passive makes the client silent: no host ID, no Ping, no Pong, no
	// RequestChannelInfo; it then learns channels only from the providers'
	// periodic ChannelInfo and times samples by arrival.
	Passive bool
	// HostID is a fixed host ID; 0 negotiates one.
	HostID uint16
	// NegotiateWindow is how long negotiation listens; 0 means 1 s.
	NegotiateWindow time.Duration
	// PingInterval re-synchronises each provider's clock; 0 means 30 s.
	PingInterval time.Duration
	// RequestInterval limits RequestChannelInfo to a provider whose values
	// arrive without channel names; 0 means 5 s.
	RequestInterval time.Duration
	// StaleAfter marks a channel or provider stale without values; 0 means 5 s.
	// A stale channel's field becomes dyno.Missing in new samples.
	StaleAfter time.Duration
	// GoneAfter forgets a provider that sent nothing at all; 0 means 75 s.
	GoneAfter time.Duration
	// FrozenAfter flags a channel whose value has not changed while values
	// keep arriving; 0 means 3 s.
	FrozenAfter time.Duration
	// OnlyAddressed ignores ChannelInfo, ChannelValues and ClearChannelInfo
	// addressed to another host. By default they are accepted, because the
	// reference provider addresses ChannelInfo to whoever requested it.
	OnlyAddressed bool
	// Buffer is the number of samples held for Next; 0 means 4096.
	Buffer int
	// Overflow is the policy of a full buffer; every discarded sample is
	// counted in Stats.Overflow.
	Overflow OverflowPolicy
	// Overrides map named channels to fields before auto-mapping.
	Overrides []Override
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
}

func (c *ClientConfig) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.NegotiateWindow, time.Second)
	def(&c.PingInterval, 30*time.Second)
	def(&c.RequestInterval, 5*time.Second)
	def(&c.StaleAfter, 5*time.Second)
	def(&c.GoneAfter, 75*time.Second)
	def(&c.FrozenAfter, 3*time.Second)
	if c.Buffer <= 0 {
		c.Buffer = 4096
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// ErrorCounts counts datagrams dropped as malformed or not acceptable, by
// kind (spec §6).
type ErrorCounts struct {
	ShortHeader     uint64 `json:"short_header"`      // < 8 bytes
	Truncated       uint64 `json:"truncated"`         // < 8 + Length bytes
	PayloadTooShort uint64 `json:"payload_too_short"` // below a key's minimum
	BadVersion      uint64 `json:"bad_version"`       // Ping/Pong version outside 1..9
	UnknownKey      uint64 `json:"unknown_key"`       // a key the spec does not define
	SourceAllHosts  uint64 `json:"source_all_hosts"`  // source host 0xFFFF
	Panics          uint64 `json:"panics"`            // recovered panics (a user Convert)
	// OverLimit counts messages from a host beyond MaxProviders, and values
	// of undescribed channels beyond MaxUnknownChannels per provider: a
	// flood of forged headers cannot grow the client's memory without bound.
	OverLimit uint64 `json:"over_limit"`
}

// Limits on the state a client keeps for what it hears.
const (
	MaxProviders       = 1024
	MaxUnknownChannels = 1024
)

// Stats is a snapshot of a Client's counters, taken by Client.Stats.
type Stats struct {
	HostID     uint16      `json:"host_id"`   // 0 while passive or negotiating
	Datagrams  uint64      `json:"datagrams"` // received, including own echoes
	Bytes      uint64      `json:"bytes"`     // received
	Errors     ErrorCounts `json:"errors"`
	OwnEchoes  uint64      `json:"own_echoes"`  // own multicast heard back, skipped
	NotForUs   uint64      `json:"not_for_us"`  // addressed to another host, ignored
	Ignored    uint64      `json:"ignored"`     // defined keys a client does not act on (extended commands)
	Values     uint64      `json:"values"`      // ChannelValues records decoded
	Unknown    uint64      `json:"unknown"`     // records for channels without ChannelInfo
	Samples    uint64      `json:"samples"`     // samples put into the buffer
	Overflow   uint64      `json:"overflow"`    // samples discarded because the buffer was full
	Buffered   int         `json:"buffered"`    // samples waiting for Next
	Collisions uint64      `json:"collisions"`  // host-ID collisions (renegotiated)
	ReadErrors uint64      `json:"read_errors"` // transport read errors survived
	// EventsDropped counts events discarded because nobody read Events
	// fast enough (its buffer holds 256).
	EventsDropped uint64          `json:"events_dropped"`
	Gone          uint64          `json:"gone"` // providers forgotten after GoneAfter
	Providers     []ProviderStats `json:"providers"`
}

// ProviderStats describes one provider (one source host ID).
type ProviderStats struct {
	Host     uint16         `json:"host"`
	Name     string         `json:"name"` // "" until a ChannelInfo arrived
	Addr     netip.AddrPort `json:"addr"` // source address of its last datagram
	Messages uint64         `json:"messages"`
	Seq      wire.SeqStats  `json:"seq"`
	// Errors counts its messages dropped as malformed (those whose header
	// was readable; the rest count only in Stats.Errors).
	Errors     ErrorCounts `json:"errors"`
	LastSeen   time.Time   `json:"last_seen"`
	LastInfo   time.Time   `json:"last_info"`
	LastValues time.Time   `json:"last_values"`
	Stale      bool        `json:"stale"`  // no values for StaleAfter
	Synced     bool        `json:"synced"` // clock synchronised by Ping/Pong
	// OffsetMS maps its timestamps to the client's clock: local = ts + OffsetMS.
	OffsetMS int64          `json:"offset_ms"`
	RTT      time.Duration  `json:"rtt"`
	Channels []ChannelStats `json:"channels"`
}

// ChannelStats describes one channel of a provider.
type ChannelStats struct {
	wire.ChannelDef
	Known  bool      `json:"known"` // described by a ChannelInfo
	Count  uint64    `json:"count"`
	Last   float32   `json:"last"`
	LastTS uint32    `json:"last_ts"`
	LastAt time.Time `json:"last_at"`
	RateHz float64   `json:"rate_hz"` // from provider timestamps, over the last full second (or since the first value)
	Stale  bool      `json:"stale"`
	Frozen bool      `json:"frozen"`
	Field  string    `json:"field"` // the Sample field it feeds, or ""
}

type chanState struct {
	def        wire.ChannelDef
	known      bool
	count      uint64
	last       float32
	lastTS     uint32
	lastAt     time.Time
	lastChange time.Time
	rateStart  int64
	rateN      int
	rate       float64
	rateFull   bool
	assign     int // index into Client.assign, -1 if unmapped
	frameGen   uint64
}

type pendingVal struct {
	assign int
	v      float64
}

type provState struct {
	host       uint16
	name       string
	addr       netip.AddrPort
	seq        wire.SeqTracker
	chans      map[uint16]*chanState
	dense      []*chanState // chans by index for IDs below denseIDs
	known      int
	messages   uint64
	lastSeen   time.Time
	lastInfo   time.Time
	lastValues time.Time
	lastReq    time.Time
	lastPing   time.Time
	unanswered int // pings since the last sync

	tsSeen  bool
	tsHigh  uint32
	tsWraps int64
	synced  bool
	anchor  bool
	offset  int64 // local ms = unwrapped ts + offset
	bestRTT uint32
	syncAt  time.Time

	errs ErrorCounts

	pending  bool
	pendTS   int64
	pendGen  uint64
	pendN    int
	pendSeen time.Time
	pend     []pendingVal
}

// denseIDs is how many low channel IDs are looked up by index rather than
// by map: providers number their channels from 0.
const denseIDs = 256

// channel returns the state of channel id, or nil.
func (p *provState) channel(id uint16) *chanState {
	if int(id) < len(p.dense) {
		if ch := p.dense[id]; ch != nil {
			return ch
		}
	}
	return p.chans[id]
}

func (p *provState) insert(id uint16, ch *chanState) {
	p.chans[id] = ch
	if id < denseIDs {
		if p.dense == nil {
			p.dense = make([]*chanState, denseIDs)
		}
		p.dense[id] = ch
	}
}

// unwrap extends a u32 millisecond timestamp to 64 bits across wraps.
func (p *provState) unwrap(ts uint32) int64 {
	if !p.tsSeen {
		p.tsSeen, p.tsHigh = true, ts
		return int64(ts)
	}
	d := ts - p.tsHigh
	switch {
	case d == 0:
	case d < 1<<31: // forward
		if ts < p.tsHigh {
			p.tsWraps++
		}
		p.tsHigh = ts
	default: // backward
		if ts > p.tsHigh { // from before the last wrap
			return int64(ts) + (p.tsWraps-1)<<32
		}
	}
	return int64(ts) + p.tsWraps<<32
}

// Client is a live JetDrive client: it joins the network, learns providers
// and channels, tracks their health, maps channels to dyno.Sample fields
// and yields merged samples as a dyno.Source. It is safe for concurrent use.
//
// Samples: each time a provider completes a frame (its records of one
// timestamp), the client updates the fields that frame's channels map to
// and emits a copy of the whole merged state, timed on the client's clock
// (provider clocks synchronised by Ping/Pong, else anchored at arrival). A
// field keeps its last value until its channel goes stale (dyno.Missing).
// Samples wait in a bounded buffer; see ClientConfig.Overflow.
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

// Stats returns a snapshot of the counters and of every provider and channel,
// sorted by host and channel ID. Staleness is evaluated now.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	st := c.stats
	st.HostID = c.node.host()
	st.Buffered = c.n
	st.Providers = make([]ProviderStats, 0, len(c.provs))
	for _, p := range c.provs {
		ps := ProviderStats{Host: p.host, Name: p.name, Addr: p.addr, Messages: p.messages, Seq: p.seq.Stats, Errors: p.errs,
			LastSeen: p.lastSeen, LastInfo: p.lastInfo, LastValues: p.lastValues,
			Stale:  p.lastValues.IsZero() || now.Sub(p.lastValues) > c.cfg.StaleAfter,
			Synced: p.synced, OffsetMS: p.offset, RTT: time.Duration(p.bestRTT) * time.Millisecond}
		for _, ch := range p.chans {
			cs := ChannelStats{ChannelDef: ch.def, Known: ch.known, Count: ch.count, Last: ch.last, LastTS: ch.lastTS,
				LastAt: ch.lastAt, RateHz: ch.rate,
				Stale: ch.count == 0 || now.Sub(ch.lastAt) > c.cfg.StaleAfter}
			cs.Frozen = !cs.Stale && ch.count > 2 && now.Sub(ch.lastChange) > c.cfg.FrozenAfter
			if ch.assign >= 0 {
				cs.Field = c.assign[ch.assign].Field.String()
			}
			ps.Channels = append(ps.Channels, cs)
		}
		sort.Slice(ps.Channels, func(i, j int) bool { return ps.Channels[i].ID < ps.Channels[j].ID })
		st.Providers = append(st.Providers, ps)
	}
	sort.Slice(st.Providers, func(i, j int) bool { return st.Providers[i].Host < st.Providers[j].Host })
	return st
}

// Mapping returns the current channel-to-field assignments.
func (c *Client) Mapping() []Assignment {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Assignment(nil), c.assign...)
}

// Events returns the client's events. Reading them is optional: when the
// 256-event buffer is full, new events are dropped and counted
// (Stats.EventsDropped); the reader is never blocked. The channel is closed
// when the client stops.
func (c *Client) Events() <-chan Event { return c.events }

// emit queues an event; c.mu is held.
func (c *Client) emit(ev Event) {
	select {
	case c.events <- ev:
	default:
		c.stats.EventsDropped++
	}
}

// HostID returns the client's host ID, 0 while passive or negotiating.
func (c *Client) HostID() uint16 { return c.node.host() }

func (c *Client) now() time.Time {
	if c.timed != nil {
		return c.lastAt
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
	p := c.provider(m.Host, from, at)
	if p == nil {
		c.stats.Errors.OverLimit++
		return
	}
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
		c.learn(p, &c.info, at)
	case wire.KeyChannelValues:
		c.values(p, &m, at)
	case wire.KeyClearChannelInfo:
		name := p.name
		c.clear(p)
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

// add counts err by kind.
func (e *ErrorCounts) add(err error) {
	switch {
	case errors.Is(err, wire.ErrShortHeader):
		e.ShortHeader++
	case errors.Is(err, wire.ErrTruncated):
		e.Truncated++
	case errors.Is(err, wire.ErrPayloadTooShort):
		e.PayloadTooShort++
	case errors.Is(err, wire.ErrBadVersion):
		e.BadVersion++
	}
}

// countErr counts a dropped datagram, also against its provider when the
// header was readable.
func (c *Client) countErr(p *provState, err error) {
	c.stats.Errors.add(err)
	if p != nil {
		p.errs.add(err)
	}
	if errors.Is(err, wire.ErrBadVersion) {
		// Unlike the reference, which then drops all traffic, only this
		// message is ignored.
		c.cfg.Logger.Warn("jetdrive: incompatible protocol version", "err", err)
		ev := Event{Kind: EventBadVersion, At: c.lastAt, Err: err}
		if p != nil {
			ev.Host, ev.Name = p.host, p.name
		}
		c.emit(ev)
		return
	}
	c.cfg.Logger.Debug("jetdrive: dropped datagram", "err", err)
}

func (c *Client) provider(host uint16, from netip.AddrPort, at time.Time) *provState {
	p := c.provs[host]
	if p == nil {
		if len(c.provs) >= MaxProviders {
			return nil
		}
		p = &provState{host: host, chans: map[uint16]*chanState{}}
		c.provs[host] = p
		c.cfg.Logger.Info("jetdrive: provider seen", "host", fmt.Sprintf("0x%04X", host), "addr", from)
		c.emit(Event{Kind: EventProviderUp, Host: host, At: at})
	}
	p.addr = from
	p.messages++
	p.lastSeen = at
	return p
}

func (c *Client) handlePing(m *wire.Message, p *provState, at time.Time) {
	ping, err := wire.DecodePing(m)
	if err != nil {
		c.countErr(p, err)
		return
	}
	if c.cfg.Passive || c.node.host() == 0 {
		return
	}
	if err := c.node.pong(m.Host, ping, at); err != nil {
		c.cfg.Logger.Warn("jetdrive: pong", "err", err)
	}
	if p != nil && !p.synced {
		c.ping(p, at)
	}
}

func (c *Client) ping(p *provState, at time.Time) {
	every := time.Second
	if p.unanswered >= 5 { // a provider that does not answer pings
		every = c.cfg.PingInterval
	}
	if c.cfg.Passive || c.node.host() == 0 || (!p.lastPing.IsZero() && at.Sub(p.lastPing) < every) {
		return
	}
	p.lastPing = at
	p.unanswered++
	v := wire.AppendPing(nil, wire.Ping{Version: wire.ProtocolVersion, HostTS: c.node.clock(at)})
	if err := c.node.send(wire.KeyPing, p.host, v); err != nil {
		c.cfg.Logger.Warn("jetdrive: ping", "err", err)
	}
}

// sync applies Cristian's algorithm with the lowest-RTT exchange (offset and
// latency from the same round trip), refreshed after two ping intervals.
func (c *Client) sync(p *provState, pong wire.Pong, at time.Time) {
	now := c.node.clock(at)
	rtt := now - pong.HostTS
	if rtt > 10_000 {
		return // not an answer to a recent ping of ours
	}
	remote := p.unwrap(pong.RemoteTS)
	p.unanswered = 0
	if p.synced && rtt > p.bestRTT && at.Sub(p.syncAt) < 2*c.cfg.PingInterval {
		return
	}
	// The client clock in ms since c.base; node.clock counts from node.base.
	local := int64(now) + c.node.base.Sub(c.base).Milliseconds()
	p.offset = local - remote - int64(rtt/2)
	p.synced, p.anchor, p.bestRTT, p.syncAt, p.unanswered = true, true, rtt, at, 0
}

func (c *Client) learn(p *provState, info *wire.ChannelInfo, at time.Time) {
	changed := p.name != info.Provider // overrides may select by provider name
	p.name = info.Provider
	p.lastInfo = at
	for _, d := range info.Channels {
		ch := p.channel(d.ID)
		if ch == nil {
			ch = &chanState{assign: -1}
			p.insert(d.ID, ch)
		}
		if !ch.known {
			p.known++
		}
		if !ch.known || ch.def != d {
			changed = true
		}
		ch.def, ch.known = d, true
	}
	if changed {
		c.remap()
		c.emit(Event{Kind: EventChannels, Host: p.host, Name: p.name, At: at})
	}
}

func (c *Client) clear(p *provState) {
	c.commit(p)
	p.name = ""
	p.chans = map[uint16]*chanState{}
	p.dense = nil
	p.known = 0
	c.remap()
}

// remap recomputes the assignments from every known channel, keeping the
// held value of a field whose source did not change.
func (c *Client) remap() {
	var refs []ChannelRef
	hosts := make([]uint16, 0, len(c.provs))
	for h := range c.provs {
		hosts = append(hosts, h)
	}
	sort.Slice(hosts, func(i, j int) bool { return hosts[i] < hosts[j] })
	for _, h := range hosts {
		p := c.provs[h]
		ids := make([]int, 0, len(p.chans))
		for id, ch := range p.chans {
			ch.assign = -1
			if ch.known {
				ids = append(ids, int(id))
			}
		}
		sort.Ints(ids)
		for _, id := range ids {
			ch := p.chans[uint16(id)]
			refs = append(refs, ChannelRef{Host: h, Provider: p.name, ID: ch.def.ID, Name: ch.def.Name, Unit: ch.def.Unit})
		}
	}
	type prev struct {
		src ChannelRef
		at  time.Time
	}
	old := map[Field]prev{}
	for i, a := range c.assign {
		old[a.Field] = prev{a.Source, c.fieldAt[i]}
	}
	c.assign = AutoMap(refs, c.cfg.Overrides)
	c.fieldAt = make([]time.Time, len(c.assign))
	next := dyno.NewSample()
	next.Time = c.cur.Time
	for i, a := range c.assign {
		c.provs[a.Source.Host].chans[a.Source.ID].assign = i
		if o, ok := old[a.Field]; ok && o.src == a.Source {
			a.Field.Set(&next, a.Field.Get(&c.cur))
			c.fieldAt[i] = o.at
		}
	}
	c.cur = next
	c.cfg.Logger.Info("jetdrive: channel mapping updated", "fields", len(c.assign))
}

func (c *Client) values(p *provState, m *wire.Message, at time.Time) {
	c.vals, _, _ = wire.AppendValues(c.vals[:0], m)
	p.lastValues = at
	arrival := c.localMS(at)
	for _, v := range c.vals {
		c.stats.Values++
		ts := p.unwrap(v.TS)
		if !p.synced {
			// Anchor the provider clock at arrival; a sample cannot arrive
			// before it was taken, so an early-looking one lowers the
			// offset, and a lag beyond 2 s (a restarted clock) re-anchors.
			if d := arrival - (ts + p.offset); !p.anchor || d < 0 || d > 2000 {
				p.offset, p.anchor = arrival-ts, true
			}
		}
		if p.pending && ts != p.pendTS {
			c.commit(p)
		}
		ch := p.channel(v.Channel)
		if ch == nil {
			if len(p.chans)-p.known >= MaxUnknownChannels {
				c.stats.Unknown++
				c.stats.Errors.OverLimit++
				continue
			}
			ch = &chanState{def: wire.ChannelDef{ID: v.Channel, Unit: wire.UnitNone}, assign: -1}
			p.insert(v.Channel, ch)
		}
		if !ch.known {
			c.stats.Unknown++
		}
		if ch.count == 0 || math.Float32bits(ch.last) != math.Float32bits(v.Value) {
			ch.lastChange = at
		}
		ch.count++
		ch.last, ch.lastTS, ch.lastAt = v.Value, v.TS, at
		if ch.rateN == 0 {
			ch.rateStart = ts
		}
		ch.rateN++
		if span := ts - ch.rateStart; span >= 1000 {
			ch.rate = float64(ch.rateN-1) * 1000 / float64(span)
			ch.rateStart, ch.rateN, ch.rateFull = ts, 1, true
		} else if !ch.rateFull && span > 0 {
			ch.rate = float64(ch.rateN-1) * 1000 / float64(span) // until a full second
		}
		if !p.pending {
			c.frameGen++
			p.pending, p.pendTS, p.pendGen, p.pendN, p.pendSeen = true, ts, c.frameGen, 0, at
			p.pend = p.pend[:0]
		}
		if ch.frameGen != p.pendGen {
			ch.frameGen = p.pendGen
			p.pendN++
		}
		if ch.assign >= 0 {
			a := &c.assign[ch.assign]
			fv := float64(v.Value)
			if a.Convert != nil {
				fv = a.Convert(fv)
			} else {
				fv = a.Source.Unit.ToLibrary(fv)
			}
			p.pend = append(p.pend, pendingVal{ch.assign, fv})
		}
	}
	if p.pending && p.known > 0 && p.pendN >= p.known {
		c.commit(p)
	}
}

// commit applies p's pending frame to the merged state and emits a sample.
func (c *Client) commit(p *provState) {
	if !p.pending {
		return
	}
	p.pending = false
	now := c.now()
	c.cur.Time = time.Duration(p.pendTS+p.offset) * time.Millisecond
	for _, pv := range p.pend {
		c.assign[pv.assign].Field.Set(&c.cur, pv.v)
		c.fieldAt[pv.assign] = now
	}
	for i, a := range c.assign {
		if !c.fieldAt[i].IsZero() && now.Sub(c.fieldAt[i]) > c.cfg.StaleAfter {
			a.Field.Set(&c.cur, dyno.Missing)
			c.fieldAt[i] = time.Time{}
		}
	}
	s := c.cur // push may wait (Block) while another commit changes c.cur
	c.push(&s)
}

func (c *Client) flushAll() {
	for _, p := range c.provs {
		c.commit(p)
	}
}

// push puts a copy of s in the ring buffer, applying the overflow policy.
func (c *Client) push(s *dyno.Sample) {
	c.stats.Samples++
	for c.cfg.Overflow == Block && c.n == len(c.ring) && c.ctx.Err() == nil {
		c.space.Wait()
	}
	if c.n == len(c.ring) {
		c.stats.Overflow++
		if c.cfg.Overflow == DropNewest {
			return
		}
		c.head = (c.head + 1) % len(c.ring)
		c.n--
	}
	c.ring[(c.head+c.n)%len(c.ring)] = *s
	c.n++
	c.wake()
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
	for h, p := range c.provs {
		if p.pending && now.Sub(p.pendSeen) > 100*time.Millisecond {
			c.commit(p)
		}
		if now.Sub(p.lastSeen) > c.cfg.GoneAfter {
			c.cfg.Logger.Info("jetdrive: provider gone", "host", fmt.Sprintf("0x%04X", h), "name", p.name)
			c.emit(Event{Kind: EventProviderGone, Host: h, Name: p.name, At: now})
			c.clear(p)
			delete(c.provs, h)
			c.stats.Gone++
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
