package wire

// SeqFlags are the reference library's per-message sequence verdicts, kept
// for compatibility but computed with modular arithmetic (spec §2.7).
type SeqFlags uint8

// The sequence flags.
const (
	SeqOutOfOrder SeqFlags = 0x1 // late or duplicate
	SeqDropped    SeqFlags = 0x2 // messages were skipped before this one
	SeqFirst      SeqFlags = 0x4 // first message from this host
)

// SeqStats counts one sender's sequence history, measured against the
// highest sequence number seen (so a reordered pair is one Reordered, not a
// drop). Dropped counts messages never received so far: a late arrival that
// fills a gap decrements it.
type SeqStats struct {
	Received   uint64 `json:"received"`
	Dropped    uint64 `json:"dropped"`
	Reordered  uint64 `json:"reordered"`
	Duplicates uint64 `json:"duplicates"`
}

// SeqTracker follows one sender's u8 sequence numbers. The zero value is
// ready; it is not safe for concurrent use.
type SeqTracker struct {
	seen   bool
	last   uint8
	high   uint8
	window [4]uint64 // which of the last 256 sequence numbers were received
	Stats  SeqStats
}

func (t *SeqTracker) bit(s uint8) (int, uint64) { return int(s >> 6), 1 << (s & 63) }
func (t *SeqTracker) set(s uint8)               { i, m := t.bit(s); t.window[i] |= m }
func (t *SeqTracker) clear(s uint8)             { i, m := t.bit(s); t.window[i] &^= m }
func (t *SeqTracker) has(s uint8) bool          { i, m := t.bit(s); return t.window[i]&m != 0 }

// Observe records seq and returns the message's verdict relative to the
// previous message (as the reference does: the stored "last" follows every
// message, late ones included): flags, and gap, the number of messages
// skipped (SeqDropped) or 0.
func (t *SeqTracker) Observe(seq uint8) (flags SeqFlags, gap int) {
	t.Stats.Received++
	if !t.seen {
		t.seen, t.last, t.high = true, seq, seq
		t.window = [4]uint64{}
		t.set(seq)
		return SeqFirst, 0
	}
	d := seq - (t.last + 1)
	switch {
	case d == 0:
	case d < 128:
		flags, gap = SeqDropped, int(d)
	default:
		flags = SeqOutOfOrder
	}
	t.last = seq
	// Statistics against the highest sequence number.
	if h := seq - t.high; h != 0 && h < 128 {
		for s := t.high + 1; s != seq; s++ {
			t.clear(s)
		}
		t.Stats.Dropped += uint64(h - 1)
		t.high = seq
		t.set(seq)
	} else if t.has(seq) {
		t.Stats.Duplicates++
	} else {
		t.set(seq)
		t.Stats.Reordered++
		if t.Stats.Dropped > 0 {
			t.Stats.Dropped--
		}
	}
	return flags, gap
}

// Reset forgets the history (kept statistics stay), so the next message is
// treated as the first: for a sender that restarted.
func (t *SeqTracker) Reset() { t.seen = false }
