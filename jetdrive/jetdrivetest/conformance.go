package jetdrivetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/dynoai/dynoai/jetdrive"
)

// TransportOpener returns two endpoints of one fresh network: what one
// writes, the other reads. The suite closes them.
type TransportOpener func(t *testing.T) (a, b jetdrive.Transport)

// RunTransport runs the conformance suite of jetdrive.Transport against the
// transports open returns: whole datagrams delivered byte for byte with a
// source address, concurrent writers, Close unblocking a pending read with
// net.ErrClosed (never io.EOF, which means a finite transport ended), and
// reads and writes failing after Close. Every implementation runs it, as
// the package's tests do for MulticastConn on loopback and for Bus.
func RunTransport(t *testing.T, open TransportOpener) {
	tests := []struct {
		name string
		f    func(t *testing.T, open TransportOpener)
	}{
		{"WholeDatagrams", testWholeDatagrams},
		{"ConcurrentWriters", testConcurrentWriters},
		{"CloseUnblocksRead", testCloseUnblocksRead},
		{"AfterClose", testAfterClose},
		{"CloseOneEndpoint", testCloseOneEndpoint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.f(t, open) })
	}
}

// readTimeout bounds every read of the suite; a transport that loses a
// datagram on an idle loopback fails rather than hangs.
const readTimeout = 10 * time.Second

type packet struct {
	data []byte
	err  error
}

// reader reads tr in the background until it fails.
func reader(tr jetdrive.Transport) <-chan packet {
	out := make(chan packet, 1024)
	go func() {
		defer close(out)
		buf := make([]byte, 65536)
		for {
			n, from, err := tr.ReadPacket(buf)
			if err != nil {
				out <- packet{err: err}
				return
			}
			if !from.IsValid() {
				out <- packet{err: fmt.Errorf("datagram of %d bytes without a source address", n)}
				return
			}
			out <- packet{data: append([]byte(nil), buf[:n]...)}
		}
	}()
	return out
}

// receive reads from in until want datagrams satisfying keep arrived.
func receive(t *testing.T, in <-chan packet, want int, keep func([]byte) bool) [][]byte {
	t.Helper()
	var got [][]byte
	deadline := time.After(readTimeout)
	for len(got) < want {
		select {
		case p, ok := <-in:
			if !ok {
				t.Fatalf("the reader stopped after %d of %d datagrams", len(got), want)
			}
			if p.err != nil {
				t.Fatalf("read after %d of %d datagrams: %v", len(got), want, p.err)
			}
			if keep(p.data) {
				got = append(got, p.data)
			}
		case <-deadline:
			t.Fatalf("%d of %d datagrams after %v", len(got), want, readTimeout)
		}
	}
	return got
}

// tagged returns a datagram of n bytes starting with tag (a marker that
// tells the suite's datagrams from any other traffic) and the index i.
func tagged(tag byte, i, n int) []byte {
	d := make([]byte, n)
	d[0], d[1], d[2] = tag, byte(i), byte(i>>8)
	for j := 3; j < n; j++ {
		d[j] = byte(i + j)
	}
	return d
}

func closeBoth(a, b jetdrive.Transport) {
	_ = a.Close()
	_ = b.Close()
}

func testWholeDatagrams(t *testing.T, open TransportOpener) {
	a, b := open(t)
	defer closeBoth(a, b)
	in := reader(b)
	sizes := []int{3, 8, 1408, 9000, 60000}
	for i, n := range sizes {
		if err := a.WritePacket(tagged(0xA1, i, n)); err != nil {
			t.Fatalf("write %d bytes: %v", n, err)
		}
	}
	got := receive(t, in, len(sizes), func(d []byte) bool { return len(d) >= 3 && d[0] == 0xA1 })
	seen := map[int]bool{}
	for _, d := range got {
		i := int(d[1]) | int(d[2])<<8
		if i >= len(sizes) || !bytes.Equal(d, tagged(0xA1, i, sizes[i])) {
			t.Fatalf("datagram %d of %d bytes is not what was written", i, len(d))
		}
		seen[i] = true
	}
	if len(seen) != len(sizes) {
		t.Fatalf("got datagrams %v, want each of %d once", seen, len(sizes))
	}
}

func testConcurrentWriters(t *testing.T, open TransportOpener) {
	a, b := open(t)
	defer closeBoth(a, b)
	in := reader(b)
	const writers, each = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := a.WritePacket(tagged(0xB0+byte(w), i, 64)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent write: %v", err)
	}
	got := receive(t, in, writers*each, func(d []byte) bool { return len(d) == 64 && d[0]&0xF0 == 0xB0 })
	seen := map[[2]int]bool{}
	for _, d := range got {
		w, i := int(d[0]-0xB0), int(d[1])|int(d[2])<<8
		if w >= writers || i >= each || !bytes.Equal(d, tagged(d[0], i, 64)) {
			t.Fatalf("a datagram was mixed with another: %x", d[:8])
		}
		seen[[2]int{w, i}] = true
	}
	if len(seen) != writers*each {
		t.Fatalf("%d distinct datagrams, want %d", len(seen), writers*each)
	}
}

func testCloseUnblocksRead(t *testing.T, open TransportOpener) {
	a, b := open(t)
	defer closeBoth(a, b)
	in := reader(b)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	deadline := time.After(readTimeout)
	for {
		select {
		case p := <-in:
			if p.err == nil {
				continue // a datagram that arrived before Close
			}
			if errors.Is(p.err, io.EOF) || !errors.Is(p.err, net.ErrClosed) {
				t.Fatalf("ReadPacket after Close: %v, want net.ErrClosed", p.err)
			}
			return
		case <-deadline:
			t.Fatal("ReadPacket still blocked after Close")
		}
	}
}

func testAfterClose(t *testing.T, open TransportOpener) {
	a, b := open(t)
	defer closeBoth(a, b)
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := a.WritePacket([]byte{1, 2, 3}); err == nil {
		t.Fatal("WritePacket after Close succeeded")
	}
	if _, _, err := a.ReadPacket(make([]byte, 16)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadPacket after Close: %v, want net.ErrClosed", err)
	}
	_ = a.Close() // a second Close must not panic
}

func testCloseOneEndpoint(t *testing.T, open TransportOpener) {
	a, b := open(t)
	defer closeBoth(a, b)
	in := reader(b)
	if err := a.WritePacket(tagged(0xC1, 0, 16)); err != nil {
		t.Fatal(err)
	}
	receive(t, in, 1, func(d []byte) bool { return len(d) == 16 && d[0] == 0xC1 })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-in:
		if p.err != nil {
			t.Fatalf("closing one endpoint failed the other: %v", p.err)
		}
	default:
	}
	if err := b.WritePacket(tagged(0xC2, 0, 16)); err != nil {
		t.Fatalf("the other endpoint cannot write: %v", err)
	}
	receive(t, in, 1, func(d []byte) bool { return len(d) == 16 && d[0] == 0xC2 }) // its own datagram, heard back
}
