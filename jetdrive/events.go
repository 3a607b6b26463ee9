package jetdrive

import (
	"fmt"
	"time"
)

// EventKind says what an Event reports.
type EventKind uint8

// The events of a Client.
const (
	EventHostID       EventKind = iota + 1 // the client took host ID Host
	EventProviderUp                        // a host sent its first provider message (ChannelInfo, ChannelValues, ClearChannelInfo)
	EventChannels                          // a provider's channel list or name changed (mapping redone)
	EventCleared                           // a provider sent ClearChannelInfo
	EventProviderGone                      // a provider was forgotten: silent for GoneAfter, cleared and silent for StaleAfter, or replaced by its restart under a new host ID
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
