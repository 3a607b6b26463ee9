// Package jetdrive implements JetDrive, Dynojet's live-data protocol: UDP
// multicast (224.0.2.10:22344 by default) of KLHDV messages in which dyno
// software such as Power Core publishes its channels.
//
// # Codec
//
// The KLHDV codec is package jetdrive/wire: it needs no network and is
// usable alone (decoding captures, writing another transport). The client
// and provider here are built on it, and their APIs speak its types
// (wire.ChannelDef, wire.Value, wire.Unit).
//
// # Client
//
// Client joins the network (MulticastConn: SO_REUSEADDR and SO_REUSEPORT,
// wildcard bind, explicit interface), negotiates a host ID, answers pings,
// requests and learns channels, synchronises each provider's clock by
// Ping/Pong, tracks per-provider and per-channel health (Stats), maps
// channels to dyno.Sample fields by name and unit (AutoMap, with
// Overrides) and is a dyno.Source of merged samples, one per frame of the
// primary provider, whose times strictly increase; Events reports providers
// coming and going. It never stops reading because of a datagram's
// content: every malformed, late, duplicate or unused datagram is counted
// by reason (Stats.Errors, Stats.Discarded). The client's files: client.go
// (lifecycle and the datagram handler), config.go, state.go (providers,
// channels, frames, the merged sample), stats.go (Stats and the health
// rules), clocksync.go (Ping/Pong), events.go.
//
// # Provider
//
// Provider is the other side: a dyno on the network. It publishes channels
// and values, answers Ping and RequestChannelInfo, and can stream any
// dyno.Source (Stream). However it stops (Close, or its context ending),
// it sends ClearChannelInfo. Package jetdrivetest has an in-memory bus, a
// lossy relay, loopback-multicast helpers and RunTransport, the
// conformance suite of Transport.
//
// # Capture format
//
// Record writes, and Replay and OpenReplay read, a capture file: the 8
// bytes "JDCAPv1\n", the capture start as int64 Unix
// nanoseconds (little-endian), then one record per datagram:
//
//	offset size field
//	0      8    receive time, int64 Unix nanoseconds, little-endian
//	8      4    source IPv4 address (0.0.0.0 when unknown)
//	12     2    source UDP port, little-endian
//	14     2    datagram length N, little-endian
//	16     N    the datagram, byte for byte
//
// A file ends after any whole record; a partial record is an error that
// names its byte offset.
package jetdrive
