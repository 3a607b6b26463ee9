package jetstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/dynoai/dynoai/dyno"
)

// Processor analyzes one run's samples. The Poller calls it with the run's
// metadata and a Source over its converted raw data; it returns what it
// produced. A Processor is called again for a run only when no earlier call
// for that run returned success (the earlier one failed, or the poller
// stopped or crashed mid-call), so it should keep its effects until it
// returns, or be idempotent by run id.
//
// An error wrapping ErrNetwork, ErrServer or ErrRateLimited (a download that
// broke off mid-stream reads that way) is retried later; any other error fails
// the run.
type Processor interface {
	Process(ctx context.Context, run RunMetadata, src dyno.Source) (Outcome, error)
}

// ProcessorFunc adapts a function to Processor.
type ProcessorFunc func(ctx context.Context, run RunMetadata, src dyno.Source) (Outcome, error)

// Process calls f.
func (f ProcessorFunc) Process(ctx context.Context, run RunMetadata, src dyno.Source) (Outcome, error) {
	return f(ctx, run, src)
}

// PollerOptions configures a Poller. The zero value polls every 30 s,
// processes two runs at a time and retries a run up to 5 times.
type PollerOptions struct {
	// Interval is the time between polls; 0 means 30 s.
	Interval time.Duration
	// MaxBackoff caps the wait between polls after consecutive list failures
	// (the interval doubles per failure); 0 means 5 minutes.
	MaxBackoff time.Duration
	// Overlap is how far before the cursor each list reaches back, so that a
	// run Jetstream shows late, with a timestamp older than runs already seen,
	// is still listed; already-recorded runs are recognised by id. 0 means
	// 10 minutes; a negative value means none.
	Overlap time.Duration
	// FullScanEvery, when positive, makes every FullScanEvery-th poll list
	// from the beginning (no since), which finds runs that appear later than
	// Overlap behind the newest; the first poll of a Poller is always one.
	// Already-recorded runs cost one store lookup each.
	FullScanEvery int
	// PageSize is the list page size asked for; 0 lets the server choose.
	PageSize int
	// Concurrency bounds the runs processed at once; 0 means 2.
	Concurrency int
	// Retry governs per-run retries after retryable failures: MaxAttempts
	// processing attempts (0 means 5), spaced by its backoff.
	Retry RetryPolicy
	// RecordOnly makes the poller record new runs as queued without
	// processing them (the predecessor's auto_process=false).
	RecordOnly bool
	// Convert turns a raw download into samples; nil means NewReader with
	// zero ReaderOptions.
	Convert func(r io.Reader, name string) (dyno.Source, error)
	// Logger receives progress and failures; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Sleep waits d or until ctx ends; nil means a real timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns uniform numbers in [0, 1) for jitter; nil means math/rand/v2.
	Rand func() float64
	// Hooks let an observer (metrics, an audit log) follow the poller.
	Hooks PollerHooks
}

// PollerHooks are called by a Poller as it works, so that observers such
// as metrics follow it without this package knowing them. They run
// synchronously on the poller's goroutines, several at once when runs are
// processed concurrently: they must be fast, safe for concurrent use, and
// must not call the Poller. A nil hook is skipped.
type PollerHooks struct {
	// Listed is called after each listing of runs (every page of one
	// poll) with the time it took and its outcome: nil, or the failure
	// that left the cursor where it was (a list request or the
	// StateStore). A listing cut short because the poll's context ended is
	// not reported.
	Listed func(d time.Duration, err error)
	// Event is called with every event, before subscribers receive it;
	// unlike a subscription it never misses one.
	Event func(Event)
}

// PollerStatus is a snapshot of a Poller. Its JSON form uses the
// predecessor's /status field names where they exist (connected, last_poll,
// next_poll, error).
type PollerStatus struct {
	Running             bool      `json:"running"`                  // Run is executing
	Connected           bool      `json:"connected"`                // the last list succeeded
	LastPoll            time.Time `json:"last_poll,omitzero"`       // end of the last successful list
	NextPoll            time.Time `json:"next_poll,omitzero"`       // when the next poll is due (zero when not running)
	Cursor              time.Time `json:"cursor,omitzero"`          // the durable cursor
	Error               string    `json:"error,omitempty"`          // the last list failure, empty after a success
	ConsecutiveFailures int       `json:"consecutive_failures"`     // list failures since the last success
	Queued              int       `json:"pending_runs"`             // runs waiting (at the last poll)
	Active              []string  `json:"processing_runs"`          // runs being processed now
	Done                int       `json:"done"`                     // runs this Poller finished since it was made
	Failed              int       `json:"failed"`                   // runs this Poller gave up on since it was made
	Retried             int       `json:"retried"`                  // retryable failures this Poller scheduled again
	Relisted            int       `json:"relisted"`                 // list items already recorded (overlap, duplicates)
	DroppedEvents       int       `json:"dropped_events,omitempty"` // events a slow subscriber missed
}

// Event reports a run changing status.
type Event struct {
	Time    time.Time `json:"time"`
	RunID   string    `json:"run_id"`
	Status  RunStatus `json:"status"`
	Attempt int       `json:"attempt,omitempty"`
	Err     string    `json:"error,omitempty"`   // the failure for failed runs and scheduled retries
	Outcome *Outcome  `json:"outcome,omitempty"` // set when Status is StatusDone
}

// PollResult is what one Poll did.
type PollResult struct {
	New       []string // runs recorded for the first time
	Processed []string // runs that reached done
	Failed    []string // runs that failed for good
	Retrying  []string // runs that failed and will be retried
}

// Poller discovers Jetstream runs and processes each exactly once.
//
// Exactly once means: every run Jetstream lists is recorded in the
// StateStore before the cursor moves past it, a recorded run is never
// recorded again, and a run becomes done (its Processor call returned
// success and the outcome was stored) at most once. A run whose processing
// is cut short by a failure, a cancellation or a crash is retried.
type Poller struct {
	client Client
	store  StateStore
	proc   Processor
	o      PollerOptions
	log    *slog.Logger

	pollMu sync.Mutex // one Poll at a time

	mu        sync.Mutex
	st        PollerStatus
	active    map[string]bool
	subs      map[int]chan Event
	nextSub   int
	recovered bool
	polls     int             // discoveries attempted, for FullScanEvery
	unmarked  map[string]bool // done runs Jetstream has not acknowledged
}

// NewPoller returns a Poller that lists runs with client, records them in
// store and processes them with proc (which may be nil only with
// RecordOnly).
func NewPoller(client Client, store StateStore, proc Processor, o PollerOptions) (*Poller, error) {
	if client == nil || store == nil {
		return nil, errors.New("jetstream: NewPoller needs a client and a store")
	}
	if proc == nil && !o.RecordOnly {
		return nil, errors.New("jetstream: NewPoller needs a processor unless RecordOnly is set")
	}
	if o.Interval <= 0 {
		o.Interval = 30 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	switch {
	case o.Overlap == 0:
		o.Overlap = 10 * time.Minute
	case o.Overlap < 0:
		o.Overlap = 0
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	if o.Retry.MaxAttempts <= 0 {
		o.Retry.MaxAttempts = 5
	}
	o.Retry = o.Retry.withDefaults()
	if o.Convert == nil {
		o.Convert = func(r io.Reader, name string) (dyno.Source, error) {
			return NewReader(r, ReaderOptions{Name: name})
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleepContext
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	lg := o.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Poller{client: client, store: store, proc: proc, o: o, log: lg,
		active: map[string]bool{}, subs: map[int]chan Event{}, unmarked: map[string]bool{}}, nil
}

// Status returns a snapshot of the poller.
func (p *Poller) Status() PollerStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.st
	s.Active = make([]string, 0, len(p.active))
	for id := range p.active {
		s.Active = append(s.Active, id)
	}
	slices.Sort(s.Active)
	return s
}

// Subscribe returns a channel of events with room for buffer of them and a
// func that ends the subscription and closes the channel. Events are never
// waited for: when the channel is full an event is dropped and counted in
// PollerStatus.DroppedEvents. The run's durable state is in the StateStore.
func (p *Poller) Subscribe(buffer int) (<-chan Event, func()) {
	ch := make(chan Event, max(buffer, 0))
	p.mu.Lock()
	id := p.nextSub
	p.nextSub++
	p.subs[id] = ch
	p.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			p.mu.Lock()
			delete(p.subs, id)
			p.mu.Unlock()
			close(ch)
		})
	}
}

func (p *Poller) emit(e Event) {
	e.Time = p.o.Now()
	if h := p.o.Hooks.Event; h != nil {
		h(e)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ch := range p.subs {
		select {
		case ch <- e:
		default:
			p.st.DroppedEvents++
		}
	}
}

// Run polls until ctx is cancelled, then waits for runs in progress to stop
// and returns nil. It returns early only if the StateStore fails. List
// failures are reported in Status and retried with backoff.
func (p *Poller) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.st.Running {
		p.mu.Unlock()
		return errors.New("jetstream: Poller.Run is already running")
	}
	p.st.Running = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.st.Running = false
		p.st.NextPoll = time.Time{}
		p.mu.Unlock()
	}()
	for {
		_, err := p.Poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var se *storeError
		if errors.As(err, &se) {
			return err
		}
		wait := p.o.Interval
		p.mu.Lock()
		if n := p.st.ConsecutiveFailures; n > 0 {
			wait = min(p.o.Interval<<min(n, 20), p.o.MaxBackoff)
			var je *Error
			if errors.As(err, &je) && je.RetryAfter > wait {
				wait = je.RetryAfter
			}
		}
		p.st.NextPoll = p.o.Now().Add(wait)
		p.mu.Unlock()
		if err := p.o.Sleep(ctx, wait); err != nil {
			return nil
		}
	}
}

// storeError marks a StateStore failure, which stops Run: without its store
// the poller cannot keep its promise.
type storeError struct{ err error }

func (e *storeError) Error() string { return "jetstream: state store: " + e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

func storeErr(err error) error {
	if err == nil {
		return nil
	}
	return &storeError{err}
}

// Poll runs one cycle: it lists the runs since the cursor (every page),
// records the new ones, advances the cursor, then processes every queued run
// that is due, Concurrency at a time, and marks done runs processed on
// Jetstream. A list failure leaves the cursor where it was; queued runs are
// still processed. Poll may be called while Run is running (a manual sync);
// cycles do not overlap.
func (p *Poller) Poll(ctx context.Context) (PollResult, error) {
	p.pollMu.Lock()
	defer p.pollMu.Unlock()
	var res PollResult
	if !p.recovered {
		if err := p.recover(ctx); err != nil {
			return res, err
		}
		p.recovered = true
	}
	start := time.Now()
	newIDs, listErr := p.discover(ctx)
	if h := p.o.Hooks.Listed; h != nil && ctx.Err() == nil {
		h(time.Since(start), listErr)
	}
	res.New = newIDs
	var se *storeError
	if errors.As(listErr, &se) || ctx.Err() != nil {
		return res, listErr
	}
	if !p.o.RecordOnly {
		if err := p.processDue(ctx, &res); err != nil {
			return res, err
		}
	}
	if err := p.markPending(ctx); err != nil {
		return res, err
	}
	return res, listErr
}

// recover requeues runs a previous process left mid-pipeline.
func (p *Poller) recover(ctx context.Context) error {
	states, err := p.store.RunStates(ctx, StatusDownloading, StatusConverting, StatusAnalyzing)
	if err != nil {
		return storeErr(err)
	}
	for _, s := range states {
		p.log.InfoContext(ctx, "jetstream: requeueing a run interrupted mid-pipeline", "run", s.Run.ID, "status", s.Status)
		s.Status = StatusQueued
		s.UpdatedAt = p.o.Now()
		if err := p.store.PutRunState(ctx, s); err != nil {
			return storeErr(err)
		}
	}
	done, err := p.store.RunStates(ctx, StatusDone)
	if err != nil {
		return storeErr(err)
	}
	for _, s := range done {
		if !s.Marked {
			p.unmarked[s.Run.ID] = true
		}
	}
	return nil
}

func (p *Poller) discover(ctx context.Context) ([]string, error) {
	cursor, err := p.store.Cursor(ctx)
	if err != nil {
		return nil, storeErr(err)
	}
	req := ListRequest{Limit: p.o.PageSize}
	full := p.o.FullScanEvery > 0 && p.polls%p.o.FullScanEvery == 0
	p.polls++
	if !cursor.IsZero() && !full {
		req.Since = cursor.Add(-p.o.Overlap)
	}
	newest := cursor
	var newIDs []string
	seenCursors := map[string]bool{}
	for {
		page, err := p.client.ListRuns(ctx, req)
		if err != nil {
			p.listFailed(err)
			return newIDs, err
		}
		for _, r := range page.Runs {
			created, err := p.record(ctx, r)
			if err != nil {
				return newIDs, err
			}
			if created {
				newIDs = append(newIDs, r.ID)
			}
			if r.Timestamp.After(newest) {
				newest = r.Timestamp
			}
		}
		if page.Next == "" {
			break
		}
		if seenCursors[page.Next] {
			err := &Error{Op: "list runs", Kind: ErrBadResponse, Err: fmt.Errorf("page cursor %q repeats", page.Next)}
			p.listFailed(err)
			return newIDs, err
		}
		seenCursors[page.Next] = true
		req.Cursor = page.Next
	}
	// Every listed run is recorded: only now may the cursor move past them.
	if newest.After(cursor) {
		if err := p.store.SetCursor(ctx, newest); err != nil {
			return newIDs, storeErr(err)
		}
	}
	queued, err := p.store.RunStates(ctx, StatusQueued)
	if err != nil {
		return newIDs, storeErr(err)
	}
	p.mu.Lock()
	p.st.Connected, p.st.Error, p.st.ConsecutiveFailures = true, "", 0
	p.st.LastPoll = p.o.Now()
	p.st.Cursor = newest
	p.st.Queued = len(queued)
	p.mu.Unlock()
	return newIDs, nil
}

func (p *Poller) listFailed(err error) {
	p.log.Warn("jetstream: listing runs failed; the cursor stays", "err", err.Error())
	p.mu.Lock()
	p.st.Connected = false
	p.st.Error = err.Error()
	p.st.ConsecutiveFailures++
	p.mu.Unlock()
}

// record stores a listed run unless it is already known. It reports whether
// the run is new.
func (p *Poller) record(ctx context.Context, r Run) (bool, error) {
	s, ok, err := p.store.RunState(ctx, r.ID)
	if err != nil {
		return false, storeErr(err)
	}
	now := p.o.Now()
	if ok {
		p.mu.Lock()
		p.st.Relisted++
		if s.Status == StatusDone && !r.Processed {
			// Jetstream still shows it unprocessed: the mark was lost (a
			// crash, or a store that cannot keep the ack). Mark again;
			// never process again.
			p.unmarked[r.ID] = true
		}
		p.mu.Unlock()
		return false, nil
	}
	s = RunState{Run: r, Status: StatusQueued, CreatedAt: now, UpdatedAt: now}
	if r.Processed {
		s.Status, s.Marked = StatusSkipped, true
	}
	if err := p.store.PutRunState(ctx, s); err != nil {
		return false, storeErr(err)
	}
	p.emit(Event{RunID: r.ID, Status: s.Status})
	return s.Status == StatusQueued, nil
}

func (p *Poller) processDue(ctx context.Context, res *PollResult) error {
	queued, err := p.store.RunStates(ctx, StatusQueued)
	if err != nil {
		return storeErr(err)
	}
	now := p.o.Now()
	sem := make(chan struct{}, p.o.Concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstStoreErr error
	for _, s := range queued {
		if s.NextAttempt.After(now) {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(s RunState) {
			defer wg.Done()
			defer func() { <-sem }()
			final, err := p.process(ctx, s)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstStoreErr == nil {
					firstStoreErr = err
				}
				return
			}
			switch {
			case final.Status == StatusDone:
				res.Processed = append(res.Processed, s.Run.ID)
			case final.Status == StatusFailed:
				res.Failed = append(res.Failed, s.Run.ID)
			case final.Error != nil:
				res.Retrying = append(res.Retrying, s.Run.ID)
			}
		}(s)
	}
	wg.Wait()
	slices.Sort(res.Processed)
	slices.Sort(res.Failed)
	slices.Sort(res.Retrying)
	return firstStoreErr
}

// process takes one run through the pipeline. It returns the run's final
// state for this attempt; an error only when the store failed.
func (p *Poller) process(ctx context.Context, s RunState) (RunState, error) {
	id := s.Run.ID
	p.mu.Lock()
	p.active[id] = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.active, id)
		p.mu.Unlock()
	}()
	// State writes that close an attempt survive cancellation: a result the
	// processor returned must be recorded, and an aborted attempt requeued.
	wctx := context.WithoutCancel(ctx)
	set := func(st RunStatus) error {
		s.Status, s.UpdatedAt = st, p.o.Now()
		if err := p.store.PutRunState(wctx, s); err != nil {
			return storeErr(err)
		}
		p.emit(Event{RunID: id, Status: st, Attempt: s.Attempts})
		return nil
	}
	s.Attempts++
	s.NextAttempt = time.Time{}
	if err := set(StatusDownloading); err != nil {
		return s, err
	}
	outcome, stage, err := p.pipeline(ctx, s.Run, set)
	if err == nil {
		s.Outcome, s.Error = &outcome, nil
		s.Status, s.UpdatedAt = StatusDone, p.o.Now()
		if err := p.store.PutRunState(wctx, s); err != nil {
			return s, storeErr(err)
		}
		p.mu.Lock()
		p.st.Done++
		p.unmarked[id] = true
		p.mu.Unlock()
		p.emit(Event{RunID: id, Status: StatusDone, Attempt: s.Attempts, Outcome: &outcome})
		p.log.InfoContext(ctx, "jetstream: run done", "run", id, "rows", outcome.Rows, "attempt", s.Attempts)
		return s, nil
	}
	var se *storeError
	if errors.As(err, &se) {
		return s, err
	}
	now := p.o.Now()
	s.UpdatedAt = now
	if ctx.Err() != nil {
		// Stopped, not failed: the attempt does not count against the run.
		s.Attempts--
		s.Status = StatusQueued
		s.Error = &RunError{Stage: stage, Message: "interrupted: " + err.Error(), Retry: true}
		return s, storeErr(p.store.PutRunState(wctx, s))
	}
	retry := Retryable(err) && s.Attempts < p.o.Retry.MaxAttempts
	s.Error = &RunError{Stage: stage, Message: err.Error(), Retry: retry}
	if retry {
		wait := p.o.Retry.Backoff(s.Attempts, p.o.Rand)
		var je *Error
		if errors.As(err, &je) && je.RetryAfter > wait {
			wait = je.RetryAfter
		}
		s.Status, s.NextAttempt = StatusQueued, now.Add(wait)
		p.mu.Lock()
		p.st.Retried++
		p.mu.Unlock()
		p.log.InfoContext(ctx, "jetstream: run will be retried", "run", id, "stage", stage, "attempt", s.Attempts, "wait", wait, "err", err.Error())
	} else {
		s.Status = StatusFailed
		p.mu.Lock()
		p.st.Failed++
		p.mu.Unlock()
		p.log.WarnContext(ctx, "jetstream: run failed", "run", id, "stage", stage, "attempt", s.Attempts, "err", err.Error())
	}
	if err := p.store.PutRunState(wctx, s); err != nil {
		return s, storeErr(err)
	}
	p.emit(Event{RunID: id, Status: s.Status, Attempt: s.Attempts, Err: err.Error()})
	return s, nil
}

// pipeline downloads, converts and analyzes one run. It returns the stage
// that failed with the error.
func (p *Poller) pipeline(ctx context.Context, run Run, set func(RunStatus) error) (Outcome, RunStatus, error) {
	meta, err := p.client.Run(ctx, run.ID)
	if err != nil {
		return Outcome{}, StatusDownloading, err
	}
	body, err := p.client.Download(ctx, run.ID)
	if err != nil {
		return Outcome{}, StatusDownloading, err
	}
	defer body.Close()
	if err := set(StatusConverting); err != nil {
		return Outcome{}, StatusConverting, err
	}
	src, err := p.o.Convert(body, run.ID)
	if err != nil {
		return Outcome{}, StatusConverting, err
	}
	counted := &countingSource{src: src}
	if err := set(StatusAnalyzing); err != nil {
		return Outcome{}, StatusAnalyzing, err
	}
	out, err := p.proc.Process(ctx, meta, counted)
	if err != nil {
		return Outcome{}, StatusAnalyzing, err
	}
	// A processor may stop reading early; the run is only done if its data
	// arrived whole, so read what is left to find a broken download.
	if !counted.eof {
		var s dyno.Sample
		for {
			if err := counted.Next(ctx, &s); err == io.EOF {
				break
			} else if err != nil {
				return Outcome{}, StatusAnalyzing, err
			}
		}
	}
	out.Rows = counted.rows
	return out, StatusAnalyzing, nil
}

type countingSource struct {
	src  dyno.Source
	rows int
	eof  bool
}

func (c *countingSource) Layout() dyno.Layout { return c.src.Layout() }

func (c *countingSource) Next(ctx context.Context, s *dyno.Sample) error {
	if c.eof {
		return io.EOF
	}
	err := c.src.Next(ctx, s)
	switch err {
	case nil:
		c.rows++
	case io.EOF:
		c.eof = true
	}
	return err
}

// markPending tells Jetstream about done runs it has not acknowledged yet.
// A failure is logged and retried at the next poll; it never reprocesses.
func (p *Poller) markPending(ctx context.Context) error {
	p.mu.Lock()
	ids := make([]string, 0, len(p.unmarked))
	for id := range p.unmarked {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	slices.Sort(ids)
	for _, id := range ids {
		if ctx.Err() != nil {
			return nil
		}
		if err := p.client.MarkProcessed(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
			// ErrNotFound: the run is gone from Jetstream, nothing left to mark.
			p.log.WarnContext(ctx, "jetstream: marking a run processed failed; will retry", "run", id, "err", err.Error())
			continue
		}
		s, ok, err := p.store.RunState(ctx, id)
		if err != nil {
			return storeErr(err)
		}
		if ok {
			s.Marked, s.UpdatedAt = true, p.o.Now()
			if err := p.store.PutRunState(context.WithoutCancel(ctx), s); err != nil {
				return storeErr(err)
			}
		}
		p.mu.Lock()
		delete(p.unmarked, id)
		p.mu.Unlock()
	}
	return nil
}
