// Package jetdrivetest provides test helpers for JetDrive over real
// multicast on the loopback interface: enabling multicast on lo, picking
// free ports so parallel tests do not hear each other, and a Relay that
// forwards datagrams between two ports while injecting loss, reordering
// and duplication, an in-memory Bus, and RunTransport, the conformance
// suite every jetdrive.Transport runs.
package jetdrivetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/dynoai/dynoai/jetdrive"
)

// EnsureLoopbackMulticast makes sure the loopback interface carries
// multicast. When it does not and the test runs as root, it runs
// "ip link set lo multicast on"; otherwise the test fails when
// DYNOAI_REQUIRE_MULTICAST=1 and is skipped with a message saying so.
func EnsureLoopbackMulticast(tb testing.TB) {
	tb.Helper()
	ifi, err := jetdrive.ResolveInterface("loopback")
	if err != nil {
		tb.Fatalf("jetdrivetest: %v", err)
	}
	if ifi.Flags&net.FlagMulticast != 0 {
		return
	}
	if os.Geteuid() == 0 {
		out, err := exec.Command("ip", "link", "set", ifi.Name, "multicast", "on").CombinedOutput()
		if err == nil {
			if ifi, err = net.InterfaceByName(ifi.Name); err == nil && ifi.Flags&net.FlagMulticast != 0 {
				return
			}
		}
		tb.Logf("jetdrivetest: ip link set %s multicast on: %v %s", ifi.Name, err, out)
	}
	msg := fmt.Sprintf("jetdrivetest: interface %s has multicast off; run `ip link set %s multicast on` as root", ifi.Name, ifi.Name)
	if os.Getenv("DYNOAI_REQUIRE_MULTICAST") == "1" {
		tb.Fatal(msg)
	}
	tb.Skip(msg + " (set DYNOAI_REQUIRE_MULTICAST=1 to make this a failure)")
}

// Port returns a UDP port that is free now, so that each test gets its own
// JetDrive network.
func Port(tb testing.TB) int {
	tb.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("jetdrivetest: %v", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// Net returns a NetConfig on the loopback interface and port.
func Net(port int) jetdrive.NetConfig {
	return jetdrive.NetConfig{Interface: "loopback", Port: port}
}

// Fault chooses what a Relay does to each datagram; probabilities are 0..1.
type Fault struct {
	Drop      float64 // the datagram is not forwarded
	Reorder   float64 // the datagram is held and sent after the next one
	Duplicate float64 // the datagram is sent twice
	Seed      uint64
}

// RelayStats counts what a Relay did.
type RelayStats struct {
	Forwarded, Dropped, Reordered, Duplicated int
}

// Relay forwards datagrams one way, from the JetDrive network on one port
// to the network on another, applying Fault.
type Relay struct {
	in, out *jetdrive.MulticastConn
	fault   Fault
	wg      sync.WaitGroup
	mu      sync.Mutex
	stats   RelayStats
}

// NewRelay starts a relay from port from to port to on loopback. Datagrams
// the relay itself sent (heard back on the out port) are not relayed.
func NewRelay(ctx context.Context, from, to int, f Fault) (*Relay, error) {
	in, err := jetdrive.Listen(ctx, Net(from))
	if err != nil {
		return nil, err
	}
	out, err := jetdrive.Listen(ctx, Net(to))
	if err != nil {
		in.Close()
		return nil, err
	}
	r := &Relay{in: in, out: out, fault: f}
	r.wg.Add(1)
	go r.run()
	return r, nil
}

func (r *Relay) run() {
	defer r.wg.Done()
	rng := rand.New(rand.NewPCG(r.fault.Seed, 1))
	buf := make([]byte, 65536)
	var held []byte
	for {
		n, _, err := r.in.ReadPacket(buf)
		if err != nil {
			return
		}
		d := append([]byte(nil), buf[:n]...)
		r.mu.Lock()
		sent := false
		switch x := rng.Float64(); {
		case x < r.fault.Drop:
			r.stats.Dropped++
		case x < r.fault.Drop+r.fault.Reorder && held == nil:
			held = d // sent after the next forwarded datagram
		case x < r.fault.Drop+r.fault.Reorder+r.fault.Duplicate:
			r.send(d)
			r.send(d)
			r.stats.Duplicated++
			sent = true
		default:
			r.send(d)
			sent = true
		}
		if sent && held != nil {
			r.send(held)
			r.stats.Reordered++
			held = nil
		}
		r.mu.Unlock()
	}
}

func (r *Relay) send(d []byte) {
	if r.out.WritePacket(d) == nil {
		r.stats.Forwarded++
	}
}

// Stats returns a copy of the relay's counters.
func (r *Relay) Stats() RelayStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Close stops the relay.
func (r *Relay) Close() error {
	r.in.Close()
	r.out.Close()
	r.wg.Wait()
	return nil
}

// Bus is an in-memory multicast network: every datagram written by one
// endpoint is delivered to every endpoint, the writer included (like
// multicast loopback). It needs no network; endpoints implement
// jetdrive.Transport.
type Bus struct {
	mu  sync.Mutex
	eps []*Endpoint
}

// Endpoint is one node's attachment to a Bus.
type Endpoint struct {
	bus    *Bus
	addr   netip.AddrPort
	ch     chan []byte
	once   sync.Once
	closed chan struct{}
}

// Endpoint attaches a new node; it queues up to 4096 datagrams and drops
// beyond, like a full socket buffer.
func (b *Bus) Endpoint() *Endpoint {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := &Endpoint{bus: b, ch: make(chan []byte, 4096), closed: make(chan struct{}),
		addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(30000+len(b.eps)))}
	b.eps = append(b.eps, e)
	return e
}

// ReadPacket returns the next datagram delivered to e.
func (e *Endpoint) ReadPacket(p []byte) (int, netip.AddrPort, error) {
	select {
	case d := <-e.ch:
		return copy(p, d), e.addr, nil
	case <-e.closed:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

// WritePacket delivers a copy of p to every open endpoint.
func (e *Endpoint) WritePacket(p []byte) error {
	select {
	case <-e.closed:
		return net.ErrClosed
	default:
	}
	d := append([]byte(nil), p...)
	e.bus.mu.Lock()
	defer e.bus.mu.Unlock()
	for _, o := range e.bus.eps {
		select {
		case o.ch <- d:
		default:
		}
	}
	return nil
}

// Close detaches e; ReadPacket returns net.ErrClosed.
func (e *Endpoint) Close() error {
	e.once.Do(func() { close(e.closed) })
	return nil
}
