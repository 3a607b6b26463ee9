package ve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/dynoai/dynoai/dyno"
)

// ErrSessionClosed is returned by Session.Add after Close.
var ErrSessionClosed = errors.New("ve: session closed")

// SessionLearnPrefix is how much of a session's stream (by time) the
// wideband delay is learned from when Options.LearnDelayOptions.Prefix is
// zero. An Analyze reads up to ten minutes of a log first; a live session
// cannot wait that long before its first snapshot, so it learns from the
// first half minute (the first pull or two) and undoes that delay on
// everything after.
const SessionLearnPrefix = 30 * time.Second

// sessionQueue is the number of samples Add may run ahead of the
// analysis before it blocks (a few seconds of a fast log).
const sessionQueue = 1024

// Session is an analysis fed one sample at a time, for as long as samples
// arrive, that reports what it has found so far at any moment: the live
// counterpart of Analyzer.Analyze. It runs the same pipeline (time base,
// delay, conditioner, accumulation on the grid) and the same fit, so a
// session's final snapshot equals Analyze over the same samples except
// that the grid is never trimmed. Memory is bounded by the grid (its
// accumulators), the conditioner's window, the delay learner's prefix and
// a queue of sessionQueue samples, whatever the stream's length.
//
// A snapshot reflects the samples the pipeline has released: the
// conditioner holds back about a second (its smoothing span and decel
// guard), and until the delay is learned (SessionLearnPrefix) nothing is
// released. Close releases everything.
//
// A Session is safe for concurrent use: Add from one goroutine (samples
// are ordered), Snapshot from any.
type Session struct {
	in     chan dyno.Sample
	stop   chan struct{}
	done   chan struct{}
	closed bool
	addMu  sync.Mutex

	mu   sync.Mutex // guards p and err
	p    *pass
	err  error
	seen uint64 // samples handed to the pipeline
}

// NewSession starts a session analyzing samples of the given layout (the
// channels the stream carries, its cylinders; a report may be passed with
// it through a source implementing dyno.Reporter, see NewSessionFrom).
// Options are those of New; see SessionLearnPrefix for the delay.
func NewSession(opts Options, layout dyno.Layout) (*Session, error) {
	return NewSessionFrom(opts, layout, nil)
}

// NewSessionFrom is NewSession with the channel report of the stream, which
// lets the analyzer choose the load axis and name the target as it does for
// a log.
func NewSessionFrom(opts Options, layout dyno.Layout, report *dyno.ChannelReport) (*Session, error) {
	if opts.LearnDelayOptions.Prefix == 0 {
		opts.LearnDelayOptions.Prefix = SessionLearnPrefix
	}
	o, err := opts.resolved()
	if err != nil {
		return nil, err
	}
	a := &analyzer{opts: o}
	s := &Session{in: make(chan dyno.Sample, sessionQueue), stop: make(chan struct{}), done: make(chan struct{})}
	p, err := a.begin(&sessionSource{s: s, layout: layout, report: report})
	if err != nil {
		return nil, err
	}
	p.reuse = true
	s.p = p
	go s.run()
	return s, nil
}

// sessionSource is the pipeline's head: the samples Add queued.
type sessionSource struct {
	s      *Session
	layout dyno.Layout
	report *dyno.ChannelReport
}

func (q *sessionSource) Layout() dyno.Layout { return q.layout }

// ChannelReport returns the report the session was started with.
func (q *sessionSource) ChannelReport() *dyno.ChannelReport { return q.report }

func (q *sessionSource) Next(ctx context.Context, dst *dyno.Sample) error {
	select {
	case s, ok := <-q.s.in:
		if !ok {
			return io.EOF
		}
		*dst = s
		return nil
	case <-q.s.stop:
		return io.EOF
	}
}

// run reads the pipeline to its end, accumulating each sample it releases.
func (s *Session) run() {
	defer close(s.done)
	ctx := context.Background() // the pipeline's only blocking read is sessionSource's
	for {
		var smp dyno.Sample
		err := s.p.src.Next(ctx, &smp)
		s.mu.Lock()
		if err != nil {
			if err != io.EOF {
				s.err = err
			}
			s.p.drain()
			s.p.observe()
			s.p.reuse = false // the final snapshot chooses as Analyze does
			s.mu.Unlock()
			return
		}
		s.p.feed(&smp)
		s.p.observe()
		s.mu.Unlock()
	}
}

// Add queues a sample for the analysis. It blocks only while the analysis
// is more than sessionQueue samples behind, and returns ctx's error if ctx
// ends first, ErrSessionClosed after Close, or the error that stopped the
// pipeline.
func (s *Session) Add(ctx context.Context, smp *dyno.Sample) error {
	s.addMu.Lock()
	defer s.addMu.Unlock()
	if s.closed {
		return ErrSessionClosed
	}
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	if err != nil {
		return err
	}
	select {
	case s.in <- *smp:
		s.mu.Lock()
		s.seen++
		s.mu.Unlock()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return ErrSessionClosed
	}
}

// Snapshot returns the corrections, hits, coverage and confidence of every
// sample the pipeline has released so far, fitted as Analyze fits them. Its
// cost is the fit's, bounded by the grid, not by the samples seen (see
// BenchmarkSessionSnapshot): while samples arrive, a cylinder's fit reuses
// the smoothness it last chose from the data until the cylinder's accepted
// samples have grown by a tenth, which spares choosing it again (a dozen
// factorizations) on every snapshot. After Close the snapshot chooses it
// afresh, as Analyze does.
func (s *Session) Snapshot() (*Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	return s.p.result()
}

// Samples returns how many samples were added and how many the analysis
// has taken in so far.
func (s *Session) Samples() (added, analyzed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.seen), s.p.samples
}

// Close ends the stream: the samples queued and held are analyzed, and the
// final snapshot is available from Snapshot. It waits for that, or for ctx.
// Close is idempotent.
func (s *Session) Close(ctx context.Context) error {
	s.addMu.Lock()
	if !s.closed {
		s.closed = true
		close(s.in)
	}
	s.addMu.Unlock()
	select {
	case <-s.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return fmt.Errorf("ve: session: %w", s.err)
	}
	return s.p.check()
}

// Abort stops the session without waiting for the samples queued.
func (s *Session) Abort() {
	s.addMu.Lock()
	if !s.closed {
		s.closed = true
		close(s.stop)
	}
	s.addMu.Unlock()
	<-s.done
}
