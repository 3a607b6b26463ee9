package jetdrive

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/dynoai/dynoai/jetdrive/wire"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// The multicast groups in use: DefaultGroup is the reference library's and
// Power Core's; AltGroup appears in DynoAI's deployment files.
var (
	DefaultGroup = netip.MustParseAddr("224.0.2.10")
	AltGroup     = netip.MustParseAddr("239.255.60.60")
)

// Transport carries whole datagrams. *MulticastConn is the network one;
// tests and replays provide others. ReadPacket blocks until a datagram
// arrives or the transport is closed (then it returns an error; io.EOF
// means a finite transport such as a replay has ended; a closed transport
// returns net.ErrClosed). Close unblocks ReadPacket. WritePacket sends one
// datagram to the group and is safe for concurrent use. Implementations run
// the conformance suite jetdrivetest.RunTransport.
type Transport interface {
	ReadPacket(b []byte) (n int, from netip.AddrPort, err error)
	WritePacket(b []byte) error
	Close() error
}

// NetConfig chooses where a node joins the JetDrive network. The zero value
// joins 224.0.2.10:22344 on the default-route interface with TTL 1.
type NetConfig struct {
	// Interface is an interface name ("eth0"), one of its IPv4 addresses,
	// "loopback" (the first up loopback interface) or "" / "default" (the
	// interface of the IPv4 default route).
	Interface string
	// Groups are the multicast groups to join; the first one is where the
	// node sends. Empty means DefaultGroup.
	Groups []netip.Addr
	// Port is the UDP port; 0 means DefaultPort.
	Port int
	// TTL of sent datagrams; 0 means 1 (same subnet), as in the reference.
	TTL int
	// ReadBuffer is the socket receive buffer in bytes; 0 means 4 MiB
	// (clamped by the kernel's limit). A large buffer absorbs bursts.
	ReadBuffer int
}

// ResolveInterface returns the interface named by spec (see
// NetConfig.Interface).
func ResolveInterface(spec string) (*net.Interface, error) {
	switch spec {
	case "", "default":
		name, err := defaultRouteInterface()
		if err != nil {
			return nil, fmt.Errorf("jetdrive: interface %q: %w", spec, err)
		}
		return net.InterfaceByName(name)
	case "loopback":
		ifs, err := net.Interfaces()
		if err != nil {
			return nil, fmt.Errorf("jetdrive: interface %q: %w", spec, err)
		}
		for i := range ifs {
			if ifs[i].Flags&net.FlagLoopback != 0 && ifs[i].Flags&net.FlagUp != 0 {
				return &ifs[i], nil
			}
		}
		return nil, fmt.Errorf("jetdrive: interface %q: no loopback interface is up", spec)
	}
	if ip, err := netip.ParseAddr(spec); err == nil {
		ifs, err := net.Interfaces()
		if err != nil {
			return nil, fmt.Errorf("jetdrive: interface %q: %w", spec, err)
		}
		for i := range ifs {
			addrs, _ := ifs[i].Addrs()
			for _, a := range addrs {
				if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr() == ip {
					return &ifs[i], nil
				}
			}
		}
		return nil, fmt.Errorf("jetdrive: interface %q: no interface has this address", spec)
	}
	ifi, err := net.InterfaceByName(spec)
	if err != nil {
		return nil, fmt.Errorf("jetdrive: interface %q: %w", spec, err)
	}
	return ifi, nil
}

// defaultRouteInterface reads the IPv4 default route from /proc/net/route.
// (The reference instead "connects" a UDP socket to a public address; that
// is left to callers who want it, by passing the address they get.)
func defaultRouteInterface() (string, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return "", fmt.Errorf("no default route known (pass an interface name or address): %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 2 && fields[1] == "00000000" && fields[0] != "Iface" {
			return fields[0], nil
		}
	}
	return "", errors.New("no IPv4 default route (pass an interface name, address or \"loopback\")")
}

// InterfaceInfo describes one interface JetDrive could use.
type InterfaceInfo struct {
	Name      string
	Addrs     []netip.Addr // IPv4 addresses
	Up        bool
	Multicast bool
	Loopback  bool
}

// Interfaces lists the interfaces with an IPv4 address, for a user to pick
// one. A loopback interface without Multicast cannot carry JetDrive until
// enabled (Linux: ip link set lo multicast on).
func Interfaces() ([]InterfaceInfo, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []InterfaceInfo
	for _, ifi := range ifs {
		info := InterfaceInfo{Name: ifi.Name, Up: ifi.Flags&net.FlagUp != 0,
			Multicast: ifi.Flags&net.FlagMulticast != 0, Loopback: ifi.Flags&net.FlagLoopback != 0}
		addrs, _ := ifi.Addrs()
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
				info.Addrs = append(info.Addrs, p.Addr())
			}
		}
		if len(info.Addrs) > 0 {
			out = append(out, info)
		}
	}
	return out, nil
}

// MulticastConn is a UDP socket joined to JetDrive groups on one interface:
// bound to the wildcard address with SO_REUSEADDR and SO_REUSEPORT (so
// several nodes share the port on one host), multicast loopback on, the
// outgoing interface set to the joined one. It implements Transport.
type MulticastConn struct {
	conn  net.PacketConn
	pc    *ipv4.PacketConn
	dst   *net.UDPAddr
	iface *net.Interface
}

// Listen opens a MulticastConn. ctx bounds only the set-up.
func Listen(ctx context.Context, cfg NetConfig) (*MulticastConn, error) {
	ifi, err := ResolveInterface(cfg.Interface)
	if err != nil {
		return nil, err
	}
	if ifi.Flags&net.FlagMulticast == 0 {
		return nil, fmt.Errorf("jetdrive: interface %s has multicast disabled (Linux: ip link set %s multicast on)", ifi.Name, ifi.Name)
	}
	groups := cfg.Groups
	if len(groups) == 0 {
		groups = []netip.Addr{DefaultGroup}
	}
	port := cfg.Port
	if port == 0 {
		port = wire.DefaultPort
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			if serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := lc.ListenPacket(ctx, "udp4", fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		return nil, fmt.Errorf("jetdrive: bind port %d: %w", port, err)
	}
	rb := cfg.ReadBuffer
	if rb <= 0 {
		rb = 4 << 20
	}
	if u, ok := c.(*net.UDPConn); ok {
		_ = u.SetReadBuffer(rb)
	}
	pc := ipv4.NewPacketConn(c)
	fail := func(what string, err error) (*MulticastConn, error) {
		c.Close()
		return nil, fmt.Errorf("jetdrive: %s on %s: %w", what, ifi.Name, err)
	}
	for _, g := range groups {
		if !g.Is4() || !g.IsMulticast() {
			return fail("join", fmt.Errorf("%v is not an IPv4 multicast group", g))
		}
		if err := pc.JoinGroup(ifi, &net.UDPAddr{IP: g.AsSlice()}); err != nil {
			return fail("join "+g.String(), err)
		}
	}
	if err := pc.SetMulticastInterface(ifi); err != nil {
		return fail("set multicast interface", err)
	}
	if err := pc.SetMulticastLoopback(true); err != nil {
		return fail("set multicast loopback", err)
	}
	ttl := cfg.TTL
	if ttl <= 0 {
		ttl = 1
	}
	if err := pc.SetMulticastTTL(ttl); err != nil {
		return fail("set multicast TTL", err)
	}
	return &MulticastConn{conn: c, pc: pc, iface: ifi,
		dst: &net.UDPAddr{IP: groups[0].AsSlice(), Port: port}}, nil
}

// ReadPacket reads one datagram; b should hold 65,536 bytes.
func (m *MulticastConn) ReadPacket(b []byte) (int, netip.AddrPort, error) {
	n, addr, err := m.conn.(*net.UDPConn).ReadFromUDPAddrPort(b)
	return n, addr, err
}

// WritePacket sends b to the first group.
func (m *MulticastConn) WritePacket(b []byte) error {
	_, err := m.pc.WriteTo(b, nil, m.dst)
	return err
}

// SetWriteDeadline bounds WritePacket calls; a zero time removes the bound.
func (m *MulticastConn) SetWriteDeadline(t time.Time) error { return m.conn.SetWriteDeadline(t) }

// Interface returns the joined interface.
func (m *MulticastConn) Interface() *net.Interface { return m.iface }

// LocalAddr returns the bound address.
func (m *MulticastConn) LocalAddr() net.Addr { return m.conn.LocalAddr() }

// Close leaves the groups and closes the socket.
func (m *MulticastConn) Close() error { return m.conn.Close() }
