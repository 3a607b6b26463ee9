package jetdrive

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// captureMagic opens every capture file.
const captureMagic = "JDCAPv1\n"

// ErrBadCapture wraps every problem reading a capture file; the
// *CaptureError says where.
var ErrBadCapture = errors.New("jetdrive: bad capture file")

// CaptureError reports a malformed capture file and the byte offset of the
// problem.
type CaptureError struct {
	Offset int64
	Reason string
}

func (e *CaptureError) Error() string {
	return fmt.Sprintf("jetdrive: bad capture file at byte %d: %s", e.Offset, e.Reason)
}

// Unwrap returns ErrBadCapture.
func (e *CaptureError) Unwrap() error { return ErrBadCapture }

// Packet is one captured datagram.
type Packet struct {
	At   time.Time      // receive time
	From netip.AddrPort // sender (0.0.0.0:0 when unknown)
	Data []byte
}

// CaptureWriter writes the capture format (see the package documentation).
type CaptureWriter struct {
	w   *bufio.Writer
	hdr [16]byte
}

// NewCaptureWriter writes the file header (start is the capture's start
// time) and returns a writer. Call Flush when done; w is not closed.
func NewCaptureWriter(w io.Writer, start time.Time) (*CaptureWriter, error) {
	cw := &CaptureWriter{w: bufio.NewWriterSize(w, 64<<10)}
	cw.w.WriteString(captureMagic)
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(start.UnixNano()))
	if _, err := cw.w.Write(b[:]); err != nil {
		return nil, err
	}
	return cw, nil
}

// Write appends one datagram received at at from from.
func (cw *CaptureWriter) Write(p Packet) error {
	if len(p.Data) > 65535 {
		return fmt.Errorf("jetdrive: capture: datagram of %d bytes exceeds 65535", len(p.Data))
	}
	h := cw.hdr[:]
	binary.LittleEndian.PutUint64(h, uint64(p.At.UnixNano()))
	a := p.From.Addr().Unmap()
	if a.Is4() {
		ip := a.As4()
		copy(h[8:12], ip[:])
	} else {
		copy(h[8:12], []byte{0, 0, 0, 0})
	}
	binary.LittleEndian.PutUint16(h[12:], p.From.Port())
	binary.LittleEndian.PutUint16(h[14:], uint16(len(p.Data)))
	if _, err := cw.w.Write(h); err != nil {
		return err
	}
	_, err := cw.w.Write(p.Data)
	return err
}

// Flush writes buffered records to the underlying writer.
func (cw *CaptureWriter) Flush() error { return cw.w.Flush() }

// CaptureReader reads the capture format.
type CaptureReader struct {
	r     *bufio.Reader
	off   int64
	Start time.Time // the capture's start time from the header
	buf   []byte
}

// NewCaptureReader reads and checks the file header.
func NewCaptureReader(r io.Reader) (*CaptureReader, error) {
	cr := &CaptureReader{r: bufio.NewReaderSize(r, 64<<10), buf: make([]byte, 65536)}
	var h [16]byte
	n, err := io.ReadFull(cr.r, h[:])
	if err != nil {
		return nil, &CaptureError{Offset: int64(n), Reason: "file header: need 16 bytes"}
	}
	if string(h[:8]) != captureMagic {
		return nil, &CaptureError{Offset: 0, Reason: fmt.Sprintf("magic %q, want %q", h[:8], captureMagic)}
	}
	cr.Start = time.Unix(0, int64(binary.LittleEndian.Uint64(h[8:])))
	cr.off = 16
	return cr, nil
}

// Next returns the next packet; its Data is valid until the following call.
// It returns io.EOF at the clean end of the file and a *CaptureError for a
// truncated record.
func (cr *CaptureReader) Next() (Packet, error) {
	var h [16]byte
	n, err := io.ReadFull(cr.r, h[:])
	if err == io.EOF {
		return Packet{}, io.EOF
	}
	if err != nil {
		return Packet{}, &CaptureError{Offset: cr.off + int64(n), Reason: fmt.Sprintf("record header: need 16 bytes, have %d", n)}
	}
	size := int(binary.LittleEndian.Uint16(h[14:]))
	m, err := io.ReadFull(cr.r, cr.buf[:size])
	if err != nil {
		return Packet{}, &CaptureError{Offset: cr.off + 16 + int64(m), Reason: fmt.Sprintf("datagram: need %d bytes, have %d", size, m)}
	}
	p := Packet{
		At:   time.Unix(0, int64(binary.LittleEndian.Uint64(h[:]))),
		From: netip.AddrPortFrom(netip.AddrFrom4([4]byte(h[8:12])), binary.LittleEndian.Uint16(h[12:])),
		Data: cr.buf[:size],
	}
	cr.off += 16 + int64(size)
	return p, nil
}

// Record copies every datagram tr receives into w with its receive time
// until ctx is cancelled (then it closes tr and returns the count and nil)
// or tr fails.
func Record(ctx context.Context, tr Transport, w *CaptureWriter) (int, error) {
	stop := context.AfterFunc(ctx, func() { _ = tr.Close() })
	defer stop()
	buf := make([]byte, 65536)
	count := 0
	for {
		n, from, err := tr.ReadPacket(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
				return count, w.Flush()
			}
			return count, err
		}
		if err := w.Write(Packet{At: time.Now(), From: from, Data: buf[:n]}); err != nil {
			return count, err
		}
		count++
	}
}

// Replay sends every packet of r onto tr, spaced as recorded divided by
// speed (speed <= 0: as fast as possible), and returns the count sent.
func Replay(ctx context.Context, r *CaptureReader, tr Transport, speed float64) (int, error) {
	var first time.Time
	start := time.Now()
	count := 0
	for {
		p, err := r.Next()
		if err == io.EOF {
			return count, nil
		}
		if err != nil {
			return count, err
		}
		if first.IsZero() {
			first = p.At
		}
		if err := sleepUntil(ctx, nil, start, p.At.Sub(first), speed); err != nil {
			return count, err
		}
		if err := tr.WritePacket(p.Data); err != nil {
			return count, err
		}
		count++
	}
}

func sleepUntil(ctx context.Context, closed <-chan struct{}, start time.Time, offset time.Duration, speed float64) error {
	if speed <= 0 {
		return ctx.Err()
	}
	wait := time.Until(start.Add(time.Duration(float64(offset) / speed)))
	if wait <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-closed:
		return net.ErrClosed
	case <-t.C:
		return nil
	}
}

// replayTransport is a Transport that reads a capture: ReadPacket returns
// its datagrams in order, spaced as recorded divided by Speed (<= 0: as fast
// as possible), then io.EOF. PacketTime gives each datagram's recorded
// receive time, which a Client uses as its clock. Writes are discarded.
type replayTransport struct {
	r      *CaptureReader
	speed  float64
	first  time.Time
	start  time.Time
	at     time.Time
	once   sync.Once
	closed chan struct{}
}

// newReplayTransport returns a transport over r.
func newReplayTransport(r *CaptureReader, speed float64) *replayTransport {
	return &replayTransport{r: r, speed: speed, closed: make(chan struct{})}
}

// ReadPacket returns the next captured datagram.
func (t *replayTransport) ReadPacket(b []byte) (int, netip.AddrPort, error) {
	select {
	case <-t.closed:
		return 0, netip.AddrPort{}, net.ErrClosed
	default:
	}
	p, err := t.r.Next()
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	if t.first.IsZero() {
		t.first, t.start = p.At, time.Now()
	}
	if err := sleepUntil(context.Background(), t.closed, t.start, p.At.Sub(t.first), t.speed); err != nil {
		return 0, netip.AddrPort{}, err
	}
	t.at = p.At
	return copy(b, p.Data), p.From, nil
}

// PacketTime returns the recorded receive time of the last datagram read.
func (t *replayTransport) PacketTime() time.Time { return t.at }

// WritePacket discards b: a replay has no network.
func (t *replayTransport) WritePacket([]byte) error { return nil }

// Close makes ReadPacket return net.ErrClosed.
func (t *replayTransport) Close() error {
	t.once.Do(func() { close(t.closed) })
	return nil
}

// OpenReplay returns a passive Client over a capture: a dyno.Source that
// yields the recorded session's samples, at recorded speed times speed
// (speed <= 0: as fast as possible), then io.EOF. Backpressure blocks the
// replay instead of dropping samples.
func OpenReplay(ctx context.Context, r io.Reader, speed float64, cfg ClientConfig) (*Client, error) {
	cr, err := NewCaptureReader(r)
	if err != nil {
		return nil, err
	}
	cfg.Transport = newReplayTransport(cr, speed)
	cfg.Passive = true
	cfg.Overflow = Block
	return NewClient(ctx, cfg)
}
