package jetdrive

import (
	"context"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const (
	v4 = `0176002b1a04ffff4a455444524956452044656d6f2050726f7669646572000000000000000000000000000000000000000000000000000000000000005465
73742052504d20310000000000000000000000000000000000000000080100005465737420506f776572000000000000000000000000000000000000000004`
	v5  = `021e002b1a05ffff0000d007000000c05a450100d007000000002a4200003408000000845b45`
	v12 = `0198002b1a09ffff50726f76c3a9000000000000000000000000000000000000000000000000000000000000000000000000000000000000000007000041465
2fffe310000000000000000000000000000000000000000000000000b0800004d4150006b5061000000000000000000000000000000000000000000000007
0900002054505320e282000000000000000000000000000000000000000000000010`
)

var fuzzSeeds = []string{
	"040500000001ffff01e8030000", "0600002b1a02ffff", "0300002b1a03ffff", v4, v5,
	"0509004d3c2a000001e803000040e20100", "0408004d3c2b2b1a0188130000414243",
	"040c004d3c2b2b1a018813000041424344454647",
	"021e002b1a05ffff0000d007000000c05a450100d007000000002a4200003408000000",
	"021e002b1a", "0300002b1a03ff", "7f02002b1a07ffff0102",
	"0214002b1a08ffff0000b80b00000000c07f0100b80b00000000807f", v12, "0300002b1a03ffffdead",
	"020e002b1a0affff0100a00f00000000803f01020304", "010a002b1a0bffff53686f72744e616d6500",
	"0509002b1a112b1a01e803000040e20100", "0300002b1a03ffff0600002b1a02ffff", "1201004d3c302b1a02",
	"0504004d3c312b1a01e80300", "0400004d3c32ffff", "0509004d3c332b1a0ae803000005000000",
	"020a00ffff01ffff0000010000000000803f", "0132002b1a0cffff50" + strings.Repeat("00", 49),
	"2007002b1a0cffff01000078563412", "1106002b1a0cffff01040000803f",
}

// FuzzClientHandle feeds arbitrary datagrams to a client's datagram
// handler: whatever arrives, the handler must not panic (a panic would be
// counted in Errors.Panics, which this checks), and the samples it emits
// never go back in time.
func FuzzClientHandle(f *testing.F) {
	for _, s := range fuzzSeeds {
		b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	cfg := ClientConfig{Buffer: 16, Overflow: DropOldest}
	cfg.defaults()
	c := newClient(context.Background(), cfg, nopTransport{})
	c.node.setHost(0x1A2B)
	from := netip.MustParseAddrPort("127.0.0.1:22344")
	var last time.Duration
	emitted := false
	f.Fuzz(func(t *testing.T, b []byte) {
		c.handleSafe(b, from, time.Now())
		if st := c.Stats(); st.Errors.Panics != 0 {
			t.Fatalf("the handler panicked on %x", b)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		for ; c.n > 0; c.n-- {
			s := c.ring[c.head]
			c.head = (c.head + 1) % len(c.ring)
			if emitted && s.Time <= last {
				t.Fatalf("sample time %v after %v, on %x", s.Time, last, b)
			}
			last, emitted = s.Time, true
		}
	})
}

type nopTransport struct{}

func (nopTransport) ReadPacket([]byte) (int, netip.AddrPort, error) {
	return 0, netip.AddrPort{}, errors.New("nop")
}
func (nopTransport) WritePacket([]byte) error { return nil }
func (nopTransport) Close() error             { return nil }
