package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// Wire constants of JetDrive (spec §1.1, §2).
const (
	// HeaderSize is the size of the KLHDV header that precedes every value.
	HeaderSize = 8
	// AllHosts is the broadcast destination host ID.
	AllHosts uint16 = 0xFFFF
	// DefaultPort is JetDrive's UDP port.
	DefaultPort = 22344
	// DefaultMTU is the value budget per message that Dynojet's reference and
	// Power Core use: 39 channel descriptions or 140 values per message.
	DefaultMTU = 1400
	// MaxValueLen is the largest value an encoder accepts: the u16 Length field.
	MaxValueLen = 65535
	// MaxDatagramValue is the largest value that fits in one IPv4 UDP datagram.
	MaxDatagramValue = 65499
	// ProtocolVersion is the version this package sends in Ping and Pong.
	ProtocolVersion = 1
	// MinVersion and MaxVersion bound the compatible Ping/Pong versions;
	// 10 and above is a breaking change.
	MinVersion = 1
	MaxVersion = 9

	// ProviderNameLen and ChannelNameLen are the fixed UTF-8 field sizes.
	ProviderNameLen = 50
	ChannelNameLen  = 30
	// ChannelDefSize and ValueSize are the record sizes of ChannelInfo and
	// ChannelValues.
	ChannelDefSize = 34
	ValueSize      = 10
)

// Key is the message type, the K of KLHDV.
type Key uint8

// The message keys (spec §2.4). The extended keys are defined by the Dynojet
// specification but implemented by nobody; responses are request + 0x10.
const (
	KeyChannelInfo                Key = 0x01
	KeyChannelValues              Key = 0x02
	KeyClearChannelInfo           Key = 0x03
	KeyPing                       Key = 0x04
	KeyPong                       Key = 0x05
	KeyRequestChannelInfo         Key = 0x06
	KeyRequestLogging             Key = 0x10
	KeyRequestLoadControl         Key = 0x11
	KeyRequestBrake               Key = 0x12
	KeyRequestLoggingResponse     Key = 0x20
	KeyRequestLoadControlResponse Key = 0x21
	KeyRequestBrakeResponse       Key = 0x22
)

var keyNames = map[Key]string{
	KeyChannelInfo: "ChannelInfo", KeyChannelValues: "ChannelValues",
	KeyClearChannelInfo: "ClearChannelInfo", KeyPing: "Ping", KeyPong: "Pong",
	KeyRequestChannelInfo: "RequestChannelInfo", KeyRequestLogging: "RequestLogging",
	KeyRequestLoadControl: "RequestLoadControl", KeyRequestBrake: "RequestBrake",
	KeyRequestLoggingResponse:     "RequestLoggingResponse",
	KeyRequestLoadControlResponse: "RequestLoadControlResponse",
	KeyRequestBrakeResponse:       "RequestBrakeResponse",
}

// String returns the key's name, or "Key(0x7f)" for an unknown key.
func (k Key) String() string {
	if s, ok := keyNames[k]; ok {
		return s
	}
	return "Key(0x" + strconv.FormatUint(uint64(k), 16) + ")"
}

// Known reports whether k is one of the keys the specification defines.
func (k Key) Known() bool { _, ok := keyNames[k]; return ok }

// Errors returned by the decoders and encoders. Decoding errors are
// *FormatError values that wrap one of these; test them with errors.Is.
var (
	// ErrShortHeader: the datagram is shorter than the 8-byte header.
	ErrShortHeader = errors.New("jetdrive: short header")
	// ErrTruncated: the datagram holds fewer than 8 + Length bytes.
	ErrTruncated = errors.New("jetdrive: truncated message")
	// ErrPayloadTooShort: a value is shorter than its key's minimum.
	ErrPayloadTooShort = errors.New("jetdrive: payload too short")
	// ErrValueTooLarge: an encoder was given more than 65,535 value bytes
	// or more than the MTU budget.
	ErrValueTooLarge = errors.New("jetdrive: value too large")
	// ErrBadVersion: a Ping or Pong carries a version outside 1..9.
	ErrBadVersion = errors.New("jetdrive: incompatible protocol version")
	// ErrWrongKey: a payload decoder was given a message of another key.
	ErrWrongKey = errors.New("jetdrive: wrong key")
)

// FormatError describes malformed input: what (Err), in which message (Key)
// and where (Offset, the byte offset in the datagram where the problem
// starts). For the length errors Need and Have are byte counts; for
// ErrBadVersion Have is the version byte found and Need the lowest
// compatible version; for ErrWrongKey Need is the expected key and Have the
// key found.
type FormatError struct {
	Err    error
	Key    Key
	Offset int
	Need   int
	Have   int
}

func (e *FormatError) Error() string {
	switch {
	case errors.Is(e.Err, ErrBadVersion):
		return fmt.Sprintf("%v: %v version byte at byte %d is %d, want %d..%d", e.Err, e.Key, e.Offset, e.Have, MinVersion, MaxVersion)
	case errors.Is(e.Err, ErrWrongKey):
		return fmt.Sprintf("%v: %v at byte %d, want %v", e.Err, Key(e.Have), e.Offset, Key(e.Need))
	}
	return fmt.Sprintf("%v: %v at byte %d: need %d bytes, have %d", e.Err, e.Key, e.Offset, e.Need, e.Have)
}

// Unwrap returns the sentinel error.
func (e *FormatError) Unwrap() error { return e.Err }

// Header is the 8-byte KLHDV header. On the wire the order is Key, Length,
// Host, Seq, Destination, all little-endian.
type Header struct {
	Key    Key
	Length uint16 // bytes of value, header excluded
	Host   uint16 // sender's host ID
	Seq    uint8  // sender's sequence number
	Dest   uint16 // destination host ID, or AllHosts
}

// Message is one decoded datagram: the header, the value (aliasing the
// datagram, so copy it to keep it) and the count of trailing bytes after
// 8 + Length, which the protocol ignores.
type Message struct {
	Header
	Value    []byte
	Trailing int
}

// ParseHeader decodes the header of b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		k := Key(0)
		if len(b) > 0 {
			k = Key(b[0])
		}
		return Header{}, &FormatError{Err: ErrShortHeader, Key: k, Offset: 0, Need: HeaderSize, Have: len(b)}
	}
	return Header{
		Key:    Key(b[0]),
		Length: binary.LittleEndian.Uint16(b[1:]),
		Host:   binary.LittleEndian.Uint16(b[3:]),
		Seq:    b[5],
		Dest:   binary.LittleEndian.Uint16(b[6:]),
	}, nil
}

// ParseMessage decodes one datagram. It does not allocate on success: Value
// aliases b. It returns ErrShortHeader (fewer than 8 bytes) or ErrTruncated
// (fewer than 8 + Length); trailing bytes, including a second message, are
// counted in Trailing and otherwise ignored, as every implementation does.
func ParseMessage(b []byte) (Message, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Message{}, err
	}
	end := HeaderSize + int(h.Length)
	if len(b) < end {
		return Message{}, &FormatError{Err: ErrTruncated, Key: h.Key, Offset: HeaderSize, Need: end, Have: len(b)}
	}
	return Message{Header: h, Value: b[HeaderSize:end:end], Trailing: len(b) - end}, nil
}

// AppendMessage appends the datagram h + value to dst, setting the Length
// field from len(value). It fails with ErrValueTooLarge beyond 65,535 bytes.
func AppendMessage(dst []byte, h Header, value []byte) ([]byte, error) {
	if len(value) > MaxValueLen {
		return dst, &FormatError{Err: ErrValueTooLarge, Key: h.Key, Offset: HeaderSize, Need: len(value), Have: MaxValueLen}
	}
	dst = append(dst, byte(h.Key))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(value)))
	dst = binary.LittleEndian.AppendUint16(dst, h.Host)
	dst = append(dst, h.Seq)
	dst = binary.LittleEndian.AppendUint16(dst, h.Dest)
	return append(dst, value...), nil
}

func need(m *Message, key Key, n int) error {
	if m.Key != key {
		return &FormatError{Err: ErrWrongKey, Key: m.Key, Offset: 0, Need: int(key), Have: int(m.Key)}
	}
	if len(m.Value) < n {
		return &FormatError{Err: ErrPayloadTooShort, Key: m.Key, Offset: HeaderSize, Need: n, Have: len(m.Value)}
	}
	return nil
}

// ChannelDef describes one channel in a ChannelInfo message.
type ChannelDef struct {
	ID     uint16 // provider-local channel ID, the key of ChannelValues
	Vendor uint8  // vendor-specific byte; the reference writes 0
	Name   string // at most 30 UTF-8 bytes on the wire
	Unit   Unit
}

// ChannelInfo is the payload of a ChannelInfo message (one page of a
// provider's channels; receivers merge pages).
type ChannelInfo struct {
	Provider string
	Channels []ChannelDef
	// Remainder counts the bytes of a partial trailing entry, ignored.
	Remainder int
}

// DecodeChannelInfo decodes m's value into dst, reusing dst.Channels.
// Names are cut at the first NUL and invalid UTF-8 becomes U+FFFD; a value
// shorter than the 50-byte provider name is ErrPayloadTooShort.
func DecodeChannelInfo(m *Message, dst *ChannelInfo) error {
	if err := need(m, KeyChannelInfo, ProviderNameLen); err != nil {
		return err
	}
	v := m.Value
	dst.Provider = decodeName(v[:ProviderNameLen])
	dst.Channels = dst.Channels[:0]
	body := v[ProviderNameLen:]
	n := len(body) / ChannelDefSize
	for i := 0; i < n; i++ {
		e := body[i*ChannelDefSize : (i+1)*ChannelDefSize]
		dst.Channels = append(dst.Channels, ChannelDef{
			ID:     binary.LittleEndian.Uint16(e),
			Vendor: e[2],
			Name:   decodeName(e[3 : 3+ChannelNameLen]),
			Unit:   Unit(e[33]),
		})
	}
	dst.Remainder = len(body) % ChannelDefSize
	return nil
}

// decodeName cuts b at its first NUL and replaces every invalid UTF-8 byte
// with U+FFFD.
func decodeName(b []byte) string {
	for i, c := range b {
		if c == 0 {
			b = b[:i]
			break
		}
	}
	if utf8.Valid(b) {
		return string(b)
	}
	out := make([]byte, 0, len(b)+8)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size <= 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
			b = b[1:]
			continue
		}
		out = append(out, b[:size]...)
		b = b[size:]
	}
	return string(out)
}

// appendName appends s truncated at a rune boundary to at most n bytes,
// zero-padded to exactly n bytes.
func appendName(dst []byte, s string, n int) []byte {
	if len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	dst = append(dst, s...)
	for i := len(s); i < n; i++ {
		dst = append(dst, 0)
	}
	return dst
}

// AppendChannelInfo appends the value of one ChannelInfo page to dst.
// Names longer than their field are truncated at a rune boundary.
func AppendChannelInfo(dst []byte, provider string, chans []ChannelDef) ([]byte, error) {
	if n := ProviderNameLen + len(chans)*ChannelDefSize; n > MaxValueLen {
		return dst, &FormatError{Err: ErrValueTooLarge, Key: KeyChannelInfo, Offset: HeaderSize, Need: n, Have: MaxValueLen}
	}
	dst = appendName(dst, provider, ProviderNameLen)
	for _, c := range chans {
		dst = binary.LittleEndian.AppendUint16(dst, c.ID)
		dst = append(dst, c.Vendor)
		dst = appendName(dst, c.Name, ChannelNameLen)
		dst = append(dst, byte(c.Unit))
	}
	return dst, nil
}

// ChannelsPerPage returns how many channel descriptions fit in one
// ChannelInfo message with an mtu-byte value budget (39 at 1400).
func ChannelsPerPage(mtu int) int {
	if mtu <= 0 {
		mtu = DefaultMTU
	}
	return max(0, (mtu-ProviderNameLen)/ChannelDefSize)
}

// ValuesPerMessage returns how many values fit in one ChannelValues message
// with an mtu-byte value budget (140 at 1400).
func ValuesPerMessage(mtu int) int {
	if mtu <= 0 {
		mtu = DefaultMTU
	}
	return mtu / ValueSize
}

// Value is one record of a ChannelValues message.
type Value struct {
	Channel uint16
	TS      uint32 // provider clock, milliseconds
	Value   float32
}

// AppendValues decodes m's records and appends them to dst: it allocates
// nothing when dst has room. Remainder is the size of a partial trailing
// record, which is ignored. Floats are kept bit-exact (NaN, ±Inf).
func AppendValues(dst []Value, m *Message) (out []Value, remainder int, err error) {
	if err := need(m, KeyChannelValues, 0); err != nil {
		return dst, 0, err
	}
	v := m.Value
	n := len(v) / ValueSize
	for i := 0; i < n; i++ {
		r := v[i*ValueSize : i*ValueSize+ValueSize]
		dst = append(dst, Value{
			Channel: binary.LittleEndian.Uint16(r),
			TS:      binary.LittleEndian.Uint32(r[2:]),
			Value:   math.Float32frombits(binary.LittleEndian.Uint32(r[6:])),
		})
	}
	return dst, len(v) % ValueSize, nil
}

// AppendChannelValues appends the value of a ChannelValues message holding
// vals to dst.
func AppendChannelValues(dst []byte, vals []Value) ([]byte, error) {
	if n := len(vals) * ValueSize; n > MaxValueLen {
		return dst, &FormatError{Err: ErrValueTooLarge, Key: KeyChannelValues, Offset: HeaderSize, Need: n, Have: MaxValueLen}
	}
	for _, x := range vals {
		dst = binary.LittleEndian.AppendUint16(dst, x.Channel)
		dst = binary.LittleEndian.AppendUint32(dst, x.TS)
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(x.Value))
	}
	return dst, nil
}

// Ping is the payload of a Ping message. Data is echoed by the Pong.
type Ping struct {
	Version uint8
	HostTS  uint32 // the pinger's clock, ms
	Data    []byte // aliases the message
}

// DecodePing decodes m's value (at least 5 bytes). A version outside
// 1..9 is returned with the decoded Ping and an error wrapping ErrBadVersion.
func DecodePing(m *Message) (Ping, error) {
	if err := need(m, KeyPing, 5); err != nil {
		return Ping{}, err
	}
	v := m.Value
	p := Ping{Version: v[0], HostTS: binary.LittleEndian.Uint32(v[1:]), Data: v[5:]}
	return p, checkVersion(m.Key, p.Version)
}

func checkVersion(k Key, v uint8) error {
	if v < MinVersion || v > MaxVersion {
		return &FormatError{Err: ErrBadVersion, Key: k, Offset: HeaderSize, Need: MinVersion, Have: int(v)}
	}
	return nil
}

// AppendPing appends the value of p to dst.
func AppendPing(dst []byte, p Ping) []byte {
	dst = append(dst, p.Version)
	dst = binary.LittleEndian.AppendUint32(dst, p.HostTS)
	return append(dst, p.Data...)
}

// Pong is the payload of a Pong message.
type Pong struct {
	Version  uint8
	HostTS   uint32 // copied from the Ping
	RemoteTS uint32 // the responder's clock when answering, ms
	Data     []byte // echo of the Ping's data; aliases the message
}

// DecodePong decodes m's value (at least 9 bytes); see DecodePing for the
// version check.
func DecodePong(m *Message) (Pong, error) {
	if err := need(m, KeyPong, 9); err != nil {
		return Pong{}, err
	}
	v := m.Value
	p := Pong{Version: v[0], HostTS: binary.LittleEndian.Uint32(v[1:]), RemoteTS: binary.LittleEndian.Uint32(v[5:]), Data: v[9:]}
	return p, checkVersion(m.Key, p.Version)
}

// AppendPong appends the value of p to dst.
func AppendPong(dst []byte, p Pong) []byte {
	dst = append(dst, p.Version)
	dst = binary.LittleEndian.AppendUint32(dst, p.HostTS)
	dst = binary.LittleEndian.AppendUint32(dst, p.RemoteTS)
	return append(dst, p.Data...)
}

// PongFor returns the spec-correct answer to p: the version of this package,
// host_ts copied, remote_ts = now, and the data echoed from offset 5 (the
// reference library echoes from the wrong offset).
func PongFor(p Ping, now uint32) Pong {
	return Pong{Version: ProtocolVersion, HostTS: p.HostTS, RemoteTS: now, Data: p.Data}
}

// Logging is the payload of RequestLogging (State: 0 end, 1 begin, 2 cancel,
// 3 get state) and of RequestLoggingResponse (State: 0 stopped, 1 started;
// StartTS at offset 3, as the Dynojet document lays it out).
type Logging struct {
	State   uint8
	StartTS uint32
}

// LoadControl is the payload of RequestLoadControl and its response.
// Enable: 0 disable, 1 enable, 2 get (response: 2 not equipped); Type: 0 RPM,
// 1 speed, 2 acceleration, 3 brake %, 4 torque; Value in JDUnit units.
type LoadControl struct {
	Enable uint8
	Type   uint8
	Value  float32
}

// Brake is the payload of RequestBrake and its response: 0 disable(d),
// 1 enable(d), 2 get status (response: not equipped).
type Brake struct{ Enable uint8 }

// DecodeLogging decodes a RequestLogging (1 byte) or RequestLoggingResponse
// (7 bytes) value.
func DecodeLogging(m *Message) (Logging, error) {
	if m.Key == KeyRequestLoggingResponse {
		if err := need(m, m.Key, 7); err != nil {
			return Logging{}, err
		}
		return Logging{State: m.Value[0], StartTS: binary.LittleEndian.Uint32(m.Value[3:])}, nil
	}
	if err := need(m, KeyRequestLogging, 1); err != nil {
		return Logging{}, err
	}
	return Logging{State: m.Value[0]}, nil
}

// AppendLogging appends a Logging value for key (request: 1 byte; response:
// 7 bytes) to dst.
func AppendLogging(dst []byte, key Key, l Logging) []byte {
	dst = append(dst, l.State)
	if key == KeyRequestLoggingResponse {
		dst = append(dst, 0, 0)
		dst = binary.LittleEndian.AppendUint32(dst, l.StartTS)
	}
	return dst
}

// DecodeLoadControl decodes a RequestLoadControl or its response (6 bytes).
func DecodeLoadControl(m *Message) (LoadControl, error) {
	k := KeyRequestLoadControl
	if m.Key == KeyRequestLoadControlResponse {
		k = m.Key
	}
	if err := need(m, k, 6); err != nil {
		return LoadControl{}, err
	}
	v := m.Value
	return LoadControl{Enable: v[0], Type: v[1], Value: math.Float32frombits(binary.LittleEndian.Uint32(v[2:]))}, nil
}

// AppendLoadControl appends a LoadControl value to dst.
func AppendLoadControl(dst []byte, l LoadControl) []byte {
	dst = append(dst, l.Enable, l.Type)
	return binary.LittleEndian.AppendUint32(dst, math.Float32bits(l.Value))
}

// DecodeBrake decodes a RequestBrake or its response (1 byte).
func DecodeBrake(m *Message) (Brake, error) {
	k := KeyRequestBrake
	if m.Key == KeyRequestBrakeResponse {
		k = m.Key
	}
	if err := need(m, k, 1); err != nil {
		return Brake{}, err
	}
	return Brake{Enable: m.Value[0]}, nil
}

// AppendBrake appends a Brake value to dst.
func AppendBrake(dst []byte, b Brake) []byte { return append(dst, b.Enable) }

// Encoder builds datagrams for one host: it stamps the source host ID and
// the node's sequence number (one counter for all keys, mod 256) and pages
// payloads to the MTU budget. The zero value sends from host 0 with a
// 1400-byte budget. An Encoder is not safe for concurrent use.
type Encoder struct {
	Host uint16
	Seq  uint8 // the sequence number of the next message
	MTU  int   // value budget per message; 0 means DefaultMTU
	buf  []byte
}

func (e *Encoder) mtu() int {
	if e.MTU <= 0 {
		return DefaultMTU
	}
	return min(e.MTU, MaxDatagramValue)
}

// Append appends one datagram to dst and advances Seq. The value must fit
// the MTU budget (ErrValueTooLarge otherwise).
func (e *Encoder) Append(dst []byte, key Key, dest uint16, value []byte) ([]byte, error) {
	if len(value) > e.mtu() {
		return dst, &FormatError{Err: ErrValueTooLarge, Key: key, Offset: HeaderSize, Need: len(value), Have: e.mtu()}
	}
	out, err := AppendMessage(dst, Header{Key: key, Host: e.Host, Seq: e.Seq, Dest: dest}, value)
	if err == nil {
		e.Seq++
	}
	return out, err
}

// ChannelInfo returns the datagrams of a provider's channel list, paged
// ChannelsPerPage(MTU) channels per message, each repeating the provider
// name. An empty list yields one message with the name only.
func (e *Encoder) ChannelInfo(dest uint16, provider string, chans []ChannelDef) ([][]byte, error) {
	per := ChannelsPerPage(e.mtu())
	if per == 0 {
		return nil, &FormatError{Err: ErrValueTooLarge, Key: KeyChannelInfo, Offset: HeaderSize, Need: ProviderNameLen + ChannelDefSize, Have: e.mtu()}
	}
	var out [][]byte
	for first := true; first || len(chans) > 0; first = false {
		page := chans[:min(per, len(chans))]
		chans = chans[len(page):]
		e.buf, _ = AppendChannelInfo(e.buf[:0], provider, page)
		d, err := e.Append(nil, KeyChannelInfo, dest, e.buf)
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Values appends to dst the datagrams (each one a separate []byte) of vals,
// ValuesPerMessage(MTU) records per message, in order.
func (e *Encoder) Values(dst [][]byte, dest uint16, vals []Value) ([][]byte, error) {
	per := ValuesPerMessage(e.mtu())
	for len(vals) > 0 {
		page := vals[:min(per, len(vals))]
		vals = vals[len(page):]
		e.buf, _ = AppendChannelValues(e.buf[:0], page)
		d, err := e.Append(nil, KeyChannelValues, dest, e.buf)
		if err != nil {
			return dst, err
		}
		dst = append(dst, d)
	}
	return dst, nil
}
