package jetdrive

import (
	"errors"
	"net/netip"
	"sort"
	"time"

	"github.com/dynoai/dynoai/jetdrive/wire"
)

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
	// PartialRecord counts ChannelValues whose length is not a multiple of
	// 10 and ChannelInfo whose channel list is not a multiple of 34 bytes:
	// the whole records are used, the partial one is ignored and counted.
	PartialRecord uint64 `json:"partial_record"`
	// OverLimit counts messages from a host beyond the 1,024 providers a
	// client keeps, and values of undescribed channels beyond 1,024 per
	// provider: a flood of forged headers cannot grow the client's memory
	// without bound.
	OverLimit uint64 `json:"over_limit"`
}

// DiscardCounts counts value records and frames that did not become
// samples although they decoded, by reason.
type DiscardCounts struct {
	// Late counts records older than their provider's newest frame (a
	// reordered datagram): they would make time go backwards.
	Late uint64 `json:"late"`
	// Duplicate counts records of a frame already emitted, or a second
	// value for a channel within one frame (a duplicated datagram).
	Duplicate uint64 `json:"duplicate"`
	// UnmappedFrames counts frames of providers none of whose channels is
	// mapped to a field: they are ignored.
	UnmappedFrames uint64 `json:"unmapped_frames"`
	// MergedFrames counts frames of secondary providers (see Client) whose
	// values were merged into the next sample instead of emitting one.
	MergedFrames uint64 `json:"merged_frames"`
	// Retimed counts samples whose time, after a clock re-synchronisation
	// or a change of primary provider, was not after the previous sample's
	// and was set 1 ms after it.
	Retimed uint64 `json:"retimed"`
}

// Stats is a snapshot of a Client's counters, taken by Client.Stats.
type Stats struct {
	HostID     uint16        `json:"host_id"`   // 0 while passive or negotiating
	Datagrams  uint64        `json:"datagrams"` // received, including own echoes
	Bytes      uint64        `json:"bytes"`     // received
	Errors     ErrorCounts   `json:"errors"`
	Discarded  DiscardCounts `json:"discarded"`
	OwnEchoes  uint64        `json:"own_echoes"`  // own multicast heard back, skipped
	NotForUs   uint64        `json:"not_for_us"`  // addressed to another host, ignored
	Ignored    uint64        `json:"ignored"`     // defined keys a client does not act on (extended commands)
	Peer       uint64        `json:"peer"`        // messages from hosts that are not providers (other clients' pings and requests)
	Values     uint64        `json:"values"`      // ChannelValues records decoded
	Unknown    uint64        `json:"unknown"`     // records for channels without ChannelInfo
	Samples    uint64        `json:"samples"`     // samples put into the buffer
	Overflow   uint64        `json:"overflow"`    // samples discarded because the buffer was full
	Buffered   int           `json:"buffered"`    // samples waiting for Next
	Collisions uint64        `json:"collisions"`  // host-ID collisions (renegotiated)
	ReadErrors uint64        `json:"read_errors"` // transport read errors survived
	// EventsDropped counts events discarded because nobody read Events
	// fast enough (its buffer holds 256).
	EventsDropped uint64 `json:"events_dropped"`
	Gone          uint64 `json:"gone"` // providers forgotten (see EventProviderGone)
	// Primary is the host whose frames emit samples (see Client), 0 when
	// no channel is mapped.
	Primary   uint16          `json:"primary"`
	Providers []ProviderStats `json:"providers"`
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
//
// Stale and Frozen never hold together. A channel is stale when no value
// arrived for StaleAfter. It is frozen when values keep arriving (the last
// one within three of its sampling intervals, at least 500 ms and at most
// StaleAfter) but none differed for FrozenAfter of arrivals: a stuck
// sensor. A channel whose provider stopped sending is therefore soon
// neither frozen nor live, and stale after StaleAfter.
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

// Stats returns a snapshot of the counters and of every provider and channel,
// sorted by host and channel ID. Staleness is evaluated now.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	st := c.stats
	st.HostID = c.node.host()
	st.Buffered = c.n
	st.Primary = c.primary
	st.Providers = make([]ProviderStats, 0, len(c.provs))
	for _, p := range c.provs {
		ps := ProviderStats{Host: p.host, Name: p.name, Addr: p.addr, Messages: p.messages, Seq: p.seq.Stats, Errors: p.errs,
			LastSeen: p.lastSeen, LastInfo: p.lastInfo, LastValues: p.lastValues,
			Stale:  p.lastValues.IsZero() || now.Sub(p.lastValues) > c.cfg.StaleAfter,
			Synced: p.synced, OffsetMS: p.offset, RTT: time.Duration(p.bestRTT) * time.Millisecond}
		for _, ch := range p.chans {
			cs := ChannelStats{ChannelDef: ch.def, Known: ch.known, Count: ch.count, Last: ch.last, LastTS: ch.lastTS,
				LastAt: ch.lastAt, RateHz: ch.rate}
			cs.Stale, cs.Frozen = ch.health(now, c.cfg.StaleAfter, c.cfg.FrozenAfter)
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

// health applies the rule documented on ChannelStats.
func (ch *chanState) health(now time.Time, staleAfter, frozenAfter time.Duration) (stale, frozen bool) {
	if ch.count == 0 || now.Sub(ch.lastAt) > staleAfter {
		return true, false
	}
	gap := time.Second
	if ch.rate > 0 {
		gap = time.Duration(3 * float64(time.Second) / ch.rate)
	}
	gap = min(max(gap, 500*time.Millisecond), staleAfter)
	arriving := now.Sub(ch.lastAt) <= gap
	return false, arriving && ch.count > 2 && ch.lastAt.Sub(ch.lastChange) >= frozenAfter
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

// countPartial counts a message with a partial trailing record.
func (c *Client) countPartial(p *provState) {
	c.stats.Errors.PartialRecord++
	p.errs.PartialRecord++
}
