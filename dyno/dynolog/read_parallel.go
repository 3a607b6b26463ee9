package dynolog

import (
	"runtime"
	"sync"

	"github.com/dynoai/dynoai/dyno"
)

// Parallel decoding (ReadOptions.Parallel): a producer goroutine reads lines
// into batches, workers parse whole batches into samples on copies of the
// Reader's immutable column bindings, and Next takes the batches in file
// order, applying everything sequential (time fill, derived channels, the
// bad-row policy, statistics) exactly as sequential reading does.

const (
	parBatchLines = 512
	parWorkers    = 2
	parInFlight   = 6 // batches between the producer and Next
)

type parBatch struct {
	buf     []byte
	ends    []int
	lines   []int64 // line number of each row
	offs    []int64 // byte offset of each row
	samples []dyno.Sample
	perrs   []*ParseError
	reasons []int
	timeSet []bool

	// Per row: the lines, blank lines and MARK lines read since the previous
	// row (this one included), and its missing cells; tail* count those
	// after the last row. Next adds them row by row, so statistics match
	// sequential reading even when an error stops the stream mid-batch.
	rowLines, rowBlank, rowMarkers, rowMissing []int64
	tailLines, tailBlank, tailMarkers          int64

	err  error // the read error after the batch's last row (io.EOF at the end)
	done chan struct{}
}

type parallelState struct {
	jobs    chan *parBatch
	ordered chan *parBatch
	free    chan *parBatch
	stop    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup

	cur *parBatch
	pos int
}

// parallelOK reports whether r's rows can be parsed independently.
func (r *Reader) parallelOK() bool {
	if r.proxy != nil || r.mlg != nil || runtime.GOMAXPROCS(0) < 2 {
		return false
	}
	for i := range r.binds {
		if r.binds[i].conv == convWallclock {
			return false // the first time stamp anchors the rest
		}
	}
	return true
}

func (r *Reader) startParallel() {
	p := &parallelState{
		jobs:    make(chan *parBatch, parInFlight),
		ordered: make(chan *parBatch, parInFlight),
		free:    make(chan *parBatch, parInFlight+1),
		stop:    make(chan struct{}),
	}
	for range parInFlight + 1 {
		p.free <- &parBatch{}
	}
	r.par = p
	p.wg.Add(1 + parWorkers)
	go p.produce(r)
	for range parWorkers {
		w := r.parseCopy()
		go p.work(w)
	}
}

// parseCopy returns a Reader that shares r's read-only column bindings and
// has its own scratch space, for a worker's parseRow calls.
func (r *Reader) parseCopy() *Reader {
	return &Reader{name: r.name, opts: r.opts, binds: r.binds, colBind: r.colBind, timeBind: r.timeBind,
		minField: r.minField, delim: r.delim, decComma: r.decComma, stoich: r.stoich, format: r.format, layout: r.layout}
}

func (p *parallelState) produce(r *Reader) {
	defer p.wg.Done()
	defer close(p.jobs)
	defer close(p.ordered)
	for {
		var b *parBatch
		select {
		case b = <-p.free:
		case <-p.stop:
			return
		}
		b.buf, b.ends, b.lines, b.offs = b.buf[:0], b.ends[:0], b.lines[:0], b.offs[:0]
		b.rowLines, b.rowBlank, b.rowMarkers = b.rowLines[:0], b.rowBlank[:0], b.rowMarkers[:0]
		b.err = nil
		b.done = make(chan struct{})
		var lines, blank, markers int64
		for len(b.ends) < parBatchLines {
			l, err := r.readLine()
			if err != nil {
				b.err = err
				break
			}
			lines++
			if isBlank(l) {
				blank++
				continue
			}
			if r.skipLine(l) {
				markers++
				continue
			}
			b.buf = append(b.buf, l...)
			b.ends = append(b.ends, len(b.buf))
			b.lines = append(b.lines, r.line)
			b.offs = append(b.offs, r.lineOff)
			b.rowLines = append(b.rowLines, lines)
			b.rowBlank = append(b.rowBlank, blank)
			b.rowMarkers = append(b.rowMarkers, markers)
			lines, blank, markers = 0, 0, 0
		}
		b.tailLines, b.tailBlank, b.tailMarkers = lines, blank, markers
		// ordered first: Next waits on it in file order; jobs feed the workers.
		select {
		case p.ordered <- b:
		case <-p.stop:
			return
		}
		select {
		case p.jobs <- b:
		case <-p.stop:
			return
		}
		if b.err != nil {
			return
		}
	}
}

func (p *parallelState) work(w *Reader) {
	defer p.wg.Done()
	for b := range p.jobs {
		n := len(b.ends)
		if cap(b.samples) < n {
			b.samples = make([]dyno.Sample, parBatchLines)
			b.perrs = make([]*ParseError, parBatchLines)
			b.reasons = make([]int, parBatchLines)
			b.timeSet = make([]bool, parBatchLines)
			b.rowMissing = make([]int64, parBatchLines)
		}
		start := 0
		for i := 0; i < n; i++ {
			w.line, w.lineOff = b.lines[i], b.offs[i]
			before := w.stats.MissingCells
			perr, reason, ts := w.parseRow(b.buf[start:b.ends[i]], &b.samples[i])
			b.perrs[i], b.reasons[i], b.timeSet[i] = perr, reason, ts
			b.rowMissing[i] = w.stats.MissingCells - before
			start = b.ends[i]
		}
		close(b.done)
	}
}

// shutdown stops the goroutines and waits for them; the source is not read
// after it returns.
func (p *parallelState) shutdown() {
	p.once.Do(func() { close(p.stop) })
	p.wg.Wait()
}

// nextParallel is nextCSV over the parsed batches.
func (r *Reader) nextParallel(s *dyno.Sample) error {
	p := r.par
	for {
		if b := p.cur; b != nil && p.pos < len(b.ends) {
			i := p.pos
			p.pos++
			// r.line and r.lineOff belong to the producer now; the row's
			// own position is in perr.
			r.stats.Lines += b.rowLines[i]
			r.stats.Blank += b.rowBlank[i]
			r.stats.Markers += b.rowMarkers[i]
			r.stats.MissingCells += b.rowMissing[i]
			if perr := b.perrs[i]; perr != nil {
				if err := r.badRow(perr, b.reasons[i]); err != nil {
					return err
				}
				continue
			}
			*s = b.samples[i]
			r.finishRow(s, b.timeSet[i])
			return nil
		}
		if b := p.cur; b != nil {
			r.stats.Lines += b.tailLines
			r.stats.Blank += b.tailBlank
			r.stats.Markers += b.tailMarkers
			b.tailLines, b.tailBlank, b.tailMarkers = 0, 0, 0
			if b.err != nil {
				return b.err
			}
			p.cur = nil
			p.free <- b
		}
		b, ok := <-p.ordered
		if !ok {
			return errParallelStopped
		}
		<-b.done
		p.cur, p.pos = b, 0
	}
}
