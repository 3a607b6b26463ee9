package jetdrive

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dynoai/dynoai/jetdrive/wire"
)

// node is what clients and providers share: the transport, the encoder
// (host ID and sequence counter), a record of recently sent messages to
// recognise its own multicast echoes, the set of hosts heard (for host-ID
// negotiation) and the node's millisecond clock.
type node struct {
	tr   Transport
	log  *slog.Logger
	base time.Time

	mu    sync.Mutex
	enc   wire.Encoder
	sent  [256]sentMsg // indexed by sequence number
	heard map[uint16]struct{}
}

type sentMsg struct {
	valid  bool
	key    wire.Key
	host   uint16
	length uint16
}

func newNode(tr Transport, log *slog.Logger, host uint16, mtu int) *node {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &node{tr: tr, log: log, base: time.Now(), enc: wire.Encoder{Host: host, Seq: uint8(rand.UintN(256)), MTU: mtu},
		heard: map[uint16]struct{}{}}
}

// clock returns the node's clock in ms: the same clock stamps Pings, Pongs
// and sample timestamps, as the protocol requires.
func (n *node) clock(at time.Time) uint32 { return uint32(at.Sub(n.base).Milliseconds()) }

func (n *node) host() uint16 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.enc.Host
}

func (n *node) setHost(h uint16) {
	n.mu.Lock()
	n.enc.Host = h
	n.mu.Unlock()
}

// send encodes and transmits one message.
func (n *node) send(key wire.Key, dest uint16, value []byte) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	seq := n.enc.Seq
	d, err := n.enc.Append(nil, key, dest, value)
	if err != nil {
		return err
	}
	n.sent[seq] = sentMsg{valid: true, key: key, host: n.enc.Host, length: uint16(len(value))}
	return n.tr.WritePacket(d)
}

// sendBuilt transmits datagrams built by n.enc (under n.mu by the caller's
// build function), remembering each for echo detection.
func (n *node) sendBuilt(build func(e *wire.Encoder) ([][]byte, error)) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	ds, err := build(&n.enc)
	if err != nil {
		return err
	}
	for _, d := range ds {
		h, _ := wire.ParseHeader(d)
		n.sent[h.Seq] = sentMsg{valid: true, key: h.Key, host: h.Host, length: h.Length}
		if err := n.tr.WritePacket(d); err != nil {
			return err
		}
	}
	return nil
}

// observe records that h.Host was heard and reports whether the message is
// this node's own multicast echo (same host, key, sequence and length as a
// message it sent). The entry is consumed, so a second copy of a message
// addressed to this node from its own ID is a collision.
func (n *node) observe(h wire.Header) (own bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if h.Host != wire.AllHosts {
		n.heard[h.Host] = struct{}{}
	}
	s := &n.sent[h.Seq]
	if s.valid && s.host == h.Host && s.key == h.Key && s.length == h.Length {
		s.valid = false
		return true
	}
	return false
}

// negotiate runs the reference's avoid-then-claim procedure: become host 0,
// ping everybody, listen for window while the receive loop records every
// host heard, then take a random ID in 1..0xFFFE that nobody uses.
func (n *node) negotiate(ctx context.Context, window time.Duration) (uint16, error) {
	n.mu.Lock()
	n.enc.Host = 0
	n.heard = map[uint16]struct{}{}
	n.mu.Unlock()
	ping := wire.AppendPing(nil, wire.Ping{Version: wire.ProtocolVersion, HostTS: n.clock(time.Now())})
	if err := n.send(wire.KeyPing, wire.AllHosts, ping); err != nil {
		return 0, err
	}
	t := time.NewTimer(window)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-t.C:
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for {
		id := uint16(1 + rand.UintN(0xFFFE))
		if _, used := n.heard[id]; !used {
			n.enc.Host = id
			n.log.Debug("jetdrive: host ID negotiated", "host", id, "heard", len(n.heard))
			return id, nil
		}
	}
}

// pong answers p from host to.
func (n *node) pong(to uint16, p wire.Ping, at time.Time) error {
	return n.send(wire.KeyPong, to, wire.AppendPong(nil, wire.PongFor(p, n.clock(at))))
}
