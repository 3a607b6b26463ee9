package jetdrive

import (
	"fmt"
	"math"
	"net/netip"
	"sort"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/jetdrive/wire"
)

// Limits on the state a client keeps for what it hears (ErrorCounts.OverLimit).
const (
	maxProviders       = 1024
	maxUnknownChannels = 1024
)

// denseIDs is how many low channel IDs are looked up by index rather than
// by map: providers number their channels from 0.
const denseIDs = 256

// chanState is what the client knows of one channel of one provider.
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

// provState is what the client knows of one provider (one source host ID
// that sent ChannelInfo, ChannelValues or ClearChannelInfo): its channels,
// its clock, and the frame being assembled.
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
	unanswered int  // pings since the last sync
	cleared    bool // its last provider message was ClearChannelInfo

	tsSeen  bool
	tsHigh  uint32
	tsWraps int64
	synced  bool
	anchor  bool
	offset  int64 // local ms = unwrapped ts + offset
	bestRTT uint32
	syncAt  time.Time

	errs ErrorCounts

	// framed and frameTS: the newest frame already committed.
	framed  bool
	frameTS int64

	pending  bool
	pendTS   int64
	pendGen  uint64
	pendN    int
	pendSeen time.Time
	pend     []pendingVal
}

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

// restartClock forgets the provider's clock: after ClearChannelInfo the
// provider may have restarted, and its timestamps with it.
func (p *provState) restartClock() {
	p.tsSeen, p.tsHigh, p.tsWraps = false, 0, 0
	p.synced, p.anchor, p.bestRTT, p.unanswered = false, false, 0, 0
	p.framed, p.pending = false, false
}

// provider returns the state of host, creating it for a provider message;
// nil beyond maxProviders.
func (c *Client) provider(host uint16, from netip.AddrPort, at time.Time) *provState {
	p := c.provs[host]
	if p == nil {
		if len(c.provs) >= maxProviders {
			return nil
		}
		p = &provState{host: host, chans: map[uint16]*chanState{}}
		c.provs[host] = p
		c.cfg.Logger.Info("jetdrive: provider seen", "host", fmt.Sprintf("0x%04X", host), "addr", from)
		c.emit(Event{Kind: EventProviderUp, Host: host, At: at})
	}
	return p
}

// forget removes provider p and says why.
func (c *Client) forget(p *provState, at time.Time, why string) {
	c.cfg.Logger.Info("jetdrive: provider gone", "host", fmt.Sprintf("0x%04X", p.host), "name", p.name, "why", why)
	c.emit(Event{Kind: EventProviderGone, Host: p.host, Name: p.name, At: at})
	c.clear(p)
	delete(c.provs, p.host)
	c.stats.Gone++
	c.remap()
}

// quiet reports whether p has stopped: it cleared its channels, or sent
// nothing for StaleAfter.
func (c *Client) quiet(p *provState, now time.Time) bool {
	return p.cleared || now.Sub(p.lastSeen) > c.cfg.StaleAfter
}

// dedupe forgets quiet providers that another live host replaces: the same
// provider name from the same address, which is a provider restarted under
// a new host ID.
func (c *Client) dedupe(now time.Time) {
	for _, p := range c.provs {
		if p.name == "" || c.quiet(p, now) {
			continue
		}
		for _, o := range c.provs {
			if o != p && c.quiet(o, now) && o.addr.Addr() == p.addr.Addr() && (o.name == p.name || o.name == "") && o.lastSeen.Before(p.lastSeen) {
				c.forget(o, now, fmt.Sprintf("replaced by 0x%04X", p.host))
			}
		}
	}
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
	c.dedupe(at)
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
// held value of a field whose source did not change, and chooses the
// primary provider.
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
	fields := map[uint16]int{}
	c.primary = 0
	for i, a := range c.assign {
		c.provs[a.Source.Host].chans[a.Source.ID].assign = i
		if o, ok := old[a.Field]; ok && o.src == a.Source {
			a.Field.Set(&next, a.Field.Get(&c.cur))
			c.fieldAt[i] = o.at
		}
		fields[a.Source.Host]++
		if a.Field.Channel == dyno.ChanRPM && a.Field.Cylinder == 0 {
			c.primary = a.Source.Host
		}
	}
	if c.primary == 0 {
		for _, h := range hosts {
			if fields[h] > fields[c.primary] {
				c.primary = h
			}
		}
	}
	c.cur = next
	c.cfg.Logger.Info("jetdrive: channel mapping updated", "fields", len(c.assign), "primary", fmt.Sprintf("0x%04X", c.primary))
}

// values decodes a ChannelValues message of p into the frame being
// assembled. A frame is a provider's records of one timestamp; a record
// older than the newest frame is late, one of a frame already committed (or
// a second value for a channel in the pending frame) is a duplicate: both
// are counted and dropped, so samples never go back in time or repeat.
func (c *Client) values(p *provState, m *wire.Message, at time.Time) {
	var rem int
	c.vals, rem, _ = wire.AppendValues(c.vals[:0], m)
	if rem != 0 {
		c.countPartial(p)
	}
	p.lastValues = at
	arrival := c.localMS(at)
	for _, v := range c.vals {
		c.stats.Values++
		ts := p.unwrap(v.TS)
		switch {
		case p.pending && ts < p.pendTS, !p.pending && p.framed && ts < p.frameTS:
			c.stats.Discarded.Late++
			continue
		case !p.pending && p.framed && ts == p.frameTS:
			c.stats.Discarded.Duplicate++
			continue
		}
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
			if len(p.chans)-p.known >= maxUnknownChannels {
				c.stats.Unknown++
				c.stats.Errors.OverLimit++
				continue
			}
			ch = &chanState{def: wire.ChannelDef{ID: v.Channel, Unit: wire.UnitNone}, assign: -1}
			p.insert(v.Channel, ch)
		}
		if p.pending && ch.frameGen == p.pendGen {
			c.stats.Discarded.Duplicate++
			continue
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
		ch.frameGen = p.pendGen
		p.pendN++
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

// commit applies p's pending frame to the merged state. A frame of the
// primary provider emits a sample; a secondary provider's mapped values
// wait in the merged state for the next one; a frame with no mapped value
// is ignored. All three are counted.
func (c *Client) commit(p *provState) {
	if !p.pending {
		return
	}
	p.pending = false
	p.framed, p.frameTS = true, p.pendTS
	now := c.now()
	for _, pv := range p.pend {
		c.assign[pv.assign].Field.Set(&c.cur, pv.v)
		c.fieldAt[pv.assign] = now
	}
	if p.host != c.primary || c.primary == 0 {
		if len(p.pend) == 0 {
			c.stats.Discarded.UnmappedFrames++
		} else {
			c.stats.Discarded.MergedFrames++
		}
		return
	}
	for i, a := range c.assign {
		if !c.fieldAt[i].IsZero() && now.Sub(c.fieldAt[i]) > c.cfg.StaleAfter {
			a.Field.Set(&c.cur, dyno.Missing)
			c.fieldAt[i] = time.Time{}
		}
	}
	c.cur.Time = time.Duration(p.pendTS+p.offset) * time.Millisecond
	if c.emitted && c.cur.Time <= c.lastTime {
		c.cur.Time = c.lastTime + time.Millisecond
		c.stats.Discarded.Retimed++
	}
	c.emitted, c.lastTime = true, c.cur.Time
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
