package ve

import (
	"context"
	"sync"

	"github.com/dynoai/dynoai/dyno"
)

// prefetchBatch is the number of samples handed over at once: big enough
// that the handover costs nothing per sample, small enough (about 100 KiB)
// to stay in cache.
const prefetchBatch = 256

// prefetchDepth is the number of batches in flight.
const prefetchDepth = 4

type batch struct {
	samples [prefetchBatch]dyno.Sample
	n       int
	err     error // set on the last batch: io.EOF or the source's error
}

// prefetcher reads a Source on its own goroutine, so that parsing a log and
// analyzing it run on two cores at once. Memory is bounded by
// prefetchDepth batches whatever the log's length.
type prefetcher struct {
	full  chan *batch
	empty chan *batch
	stop  chan struct{}
	wg    sync.WaitGroup
	cur   *batch
	pos   int
}

func newPrefetcher(ctx context.Context, src dyno.Source) *prefetcher {
	p := &prefetcher{
		full:  make(chan *batch, prefetchDepth),
		empty: make(chan *batch, prefetchDepth),
		stop:  make(chan struct{}),
	}
	for range prefetchDepth {
		p.empty <- new(batch)
	}
	p.wg.Add(1)
	go p.run(ctx, src)
	return p
}

func (p *prefetcher) run(ctx context.Context, src dyno.Source) {
	defer p.wg.Done()
	for {
		var b *batch
		select {
		case b = <-p.empty:
		case <-p.stop:
			return
		}
		b.n, b.err = 0, nil
		for b.n < prefetchBatch {
			if err := src.Next(ctx, &b.samples[b.n]); err != nil {
				b.err = err
				break
			}
			b.n++
		}
		select {
		case p.full <- b:
		case <-p.stop:
			return
		}
		if b.err != nil {
			return
		}
	}
}

// next returns the next sample (valid until the following call), or the
// stream's final error (io.EOF at the end).
func (p *prefetcher) next() (*dyno.Sample, error) {
	for {
		if p.cur != nil && p.pos < p.cur.n {
			s := &p.cur.samples[p.pos]
			p.pos++
			return s, nil
		}
		if p.cur != nil {
			if p.cur.err != nil {
				return nil, p.cur.err
			}
			p.empty <- p.cur
		}
		p.cur, p.pos = <-p.full, 0
	}
}

// close stops the reading goroutine and waits for it: the source is never
// touched after close returns.
func (p *prefetcher) close() {
	close(p.stop)
	p.wg.Wait()
}
