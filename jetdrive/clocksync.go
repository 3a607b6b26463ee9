package jetdrive

import (
	"time"

	"github.com/dynoai/dynoai/jetdrive/wire"
)

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
