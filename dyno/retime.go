package dyno

import (
	"context"
	"fmt"
	"time"
)

// Retimer is a Source that repairs the time base of another: loggers that
// stamp rows with coarse time (whole seconds), repeat a stamp over several
// rows, or restart their clock mid-log defeat every filter that measures a
// rate. Rows sharing a stamp are spread evenly from it towards the next one
// (at most the row period the log shows elsewhere), and a clock that goes
// backwards continues from where it was, one row period on. Logs whose
// stamps already increase row by row pass through unchanged.
//
// It holds the rows of one stamp at a time (at most maxRetimeGroup), so
// its memory does not depend on the log's length. Report says what it
// did.
type Retimer struct {
	src     Source
	queue   []Sample // rows of the current stamp, waiting for the next stamp
	head    int      // next queued row to hand out
	pending Sample   // the first row of the next stamp, read ahead
	next    Sample   // the row being read
	havePen bool
	err     error // the source's error, after the queue drains

	offset   time.Duration // added to stamps after a restart
	lastOut  time.Duration // the last time handed out
	haveOut  bool
	period   time.Duration // the typical row period, learned from distinct stamps
	periodN  int
	groups   int64 // stamps shared by more than one row
	spread   int64 // rows whose time was spread
	restarts int64
	maxGroup int
}

const maxRetimeGroup = 4096

// Retime returns src with its time base repaired (see Retimer).
func Retime(src Source) *Retimer { return &Retimer{src: src} }

// Layout returns the source's layout.
func (t *Retimer) Layout() Layout { return t.src.Layout() }

// ChannelReport forwards the source's report, when it has one.
func (t *Retimer) ChannelReport() *ChannelReport {
	if r, ok := t.src.(Reporter); ok {
		return r.ChannelReport()
	}
	return nil
}

// Next fills s with the next row and its repaired time.
func (t *Retimer) Next(ctx context.Context, s *Sample) error {
	if t.head >= len(t.queue) {
		if err := t.fill(ctx); err != nil {
			return err
		}
	}
	*s = t.queue[t.head]
	t.head++
	t.lastOut, t.haveOut = s.Time, true
	return nil
}

// fill reads the rows of the next stamp into the queue and gives them
// their times.
func (t *Retimer) fill(ctx context.Context) error {
	t.queue, t.head = t.queue[:0], 0
	if t.err != nil && !t.havePen {
		return t.err
	}
	if !t.havePen {
		if err := t.src.Next(ctx, &t.pending); err != nil {
			t.err = err
			return err
		}
		t.havePen = true
	}
	stamp := t.pending.Time
	t.queue = append(t.queue, t.pending)
	t.havePen = false
	// t.next, not a local: a Sample passed to an interface method escapes,
	// and a local would cost an allocation a row.
	for len(t.queue) < maxRetimeGroup {
		if err := t.src.Next(ctx, &t.next); err != nil {
			t.err = err
			break
		}
		if t.next.Time != stamp {
			t.pending, t.havePen = t.next, true
			break
		}
		t.queue = append(t.queue, t.next)
	}
	t.assign(stamp)
	return nil
}

// assign gives the queued rows of stamp ts their times.
func (t *Retimer) assign(ts time.Duration) {
	n := len(t.queue)
	base := ts + t.offset
	if t.haveOut && base <= t.lastOut-t.step() {
		// The clock went backwards (a restart, a stale first row): go on
		// from where the log was.
		t.restarts++
		t.offset += t.lastOut + t.step() - base
		base = t.lastOut + t.step()
	}
	if t.haveOut && base < t.lastOut {
		base = t.lastOut
	}
	if n > 1 {
		t.groups++
		t.spread += int64(n)
		t.maxGroup = max(t.maxGroup, n)
		// Spread towards the next stamp, at no more than the row period
		// seen elsewhere.
		span := t.period * time.Duration(n)
		if t.havePen {
			if gap := t.pending.Time + t.offset - base; gap > 0 && (span == 0 || gap < span) {
				span = gap
			}
		}
		if span <= 0 {
			span = time.Duration(n) * time.Millisecond
		}
		step := span / time.Duration(n)
		for k := range t.queue {
			t.queue[k].Time = base + time.Duration(k)*step
		}
		if t.periodN == 0 || step < t.period {
			t.learn(step)
		}
		return
	}
	t.queue[0].Time = base
	if t.haveOut {
		if d := base - t.lastOut; d > 0 {
			t.learn(d)
		}
	}
}

// learn keeps a running estimate of the row period: the median-like
// minimum of recent gaps, so pauses in a log do not stretch it.
func (t *Retimer) learn(d time.Duration) {
	switch {
	case t.periodN == 0 || d < t.period:
		t.period = d
	default:
		// Drift upward slowly, so one short gap does not fix it forever.
		t.period += (d - t.period) / 64
	}
	t.periodN++
}

func (t *Retimer) step() time.Duration {
	if t.period > 0 {
		return t.period
	}
	return time.Millisecond
}

// RetimeReport says what a Retimer changed.
type RetimeReport struct {
	SharedStamps int64         // stamps that several rows shared
	RowsSpread   int64         // rows whose time was spread out
	MaxRows      int           // the most rows one stamp carried
	Restarts     int64         // times the clock went backwards
	Period       time.Duration // the row period it settled on
}

// Report returns what the Retimer has done so far.
func (t *Retimer) Report() RetimeReport {
	return RetimeReport{SharedStamps: t.groups, RowsSpread: t.spread, MaxRows: t.maxGroup, Restarts: t.restarts, Period: t.period}
}

// Changed reports whether any time was changed.
func (r RetimeReport) Changed() bool { return r.RowsSpread > 0 || r.Restarts > 0 }

// String describes the repair in a sentence, or "" when nothing changed.
func (r RetimeReport) String() string {
	if !r.Changed() {
		return ""
	}
	s := ""
	if r.RowsSpread > 0 {
		s = fmt.Sprintf("time stamps shared by up to %d rows (%d rows in all) spread out at the log's row rate (%v)",
			r.MaxRows, r.RowsSpread, r.Period.Round(time.Microsecond))
	}
	if r.Restarts > 0 {
		if s != "" {
			s += "; "
		}
		s += fmt.Sprintf("the clock went backwards %d times: continued from where it was", r.Restarts)
	}
	return s
}

var _ Source = (*Retimer)(nil)
