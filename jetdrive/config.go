package jetdrive

import (
	"log/slog"
	"time"
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
	// A stale channel's field becomes dyno.Missing in new samples. A
	// provider that cleared its channels and then sent nothing for
	// StaleAfter is forgotten.
	StaleAfter time.Duration
	// GoneAfter forgets a provider that sent nothing at all; 0 means 75 s.
	GoneAfter time.Duration
	// FrozenAfter flags a channel whose values keep arriving but have not
	// changed for this long; 0 means 3 s. See ChannelStats for the rule.
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
