// Package wire is the JetDrive KLHDV codec: message keys and headers, the
// payloads (ChannelInfo, ChannelValues, Ping, Pong and the extended
// commands), the JDUnit table and sequence-number tracking. It has no
// network or operating-system dependencies, so an integrator who decodes
// captured datagrams, or writes their own transport, imports only this
// package; package jetdrive builds the multicast client and provider on it.
//
// ParseMessage splits a datagram into its Header and Value without
// allocating; the payload decoders (DecodeChannelInfo, AppendValues,
// DecodePing, DecodePong, DecodeLogging, DecodeLoadControl, DecodeBrake)
// append into caller-provided buffers. Malformed input returns a
// *FormatError wrapping ErrShortHeader, ErrTruncated, ErrPayloadTooShort,
// ErrBadVersion or ErrWrongKey with the byte offset; nothing panics. An
// Encoder stamps host ID and sequence numbers and pages ChannelInfo (39
// channels) and ChannelValues (140 values) to the 1400-byte MTU budget.
// SeqTracker classifies sequence numbers modulo 256.
package wire
