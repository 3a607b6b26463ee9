package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/dynoai/dynoai/dyno/dynolog"
	"github.com/dynoai/dynoai/metrics"
	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/ve"
)

// Analyses run from the run store's durable queue (runstore.JobQueue), so
// that any replica sharing the store can run any accepted upload, and a
// replica that dies mid-analysis loses nothing: its lease expires and
// another worker (on any replica, or this one after a restart) takes the
// job again. Each of the Workers goroutines loops: claim a due job, keep its
// lease alive with heartbeats while analyzing, and end it with exactly one
// of CompleteJob, FailJob or ReleaseJob. Every one of those writes is
// checked against the lease's fencing token by the store, so a worker that
// stalled past its lease (a paused VM, a long GC) writes nothing when it
// wakes up.

// job is one leased analysis and what its run asks for.
type job struct {
	lease    runstore.Lease
	filename string
	opts     AnalysisOptions
	fileID   int64 // the input's file id in the run store
	size     int64 // the input's size, for progress
}

// errLeaseLost marks an analysis cancelled because its lease was lost.
var errLeaseLost = errors.New("httpapi: the job's lease was lost")

// defaultReplicaName names a replica that was not given a name: host name
// and process id, which are unique among live processes on a network.
func defaultReplicaName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "host"
	}
	return host + "-" + strconv.Itoa(os.Getpid())
}

// wake tells one idle worker that a job was queued here, so it does not
// wait for its next poll.
func (s *Server) wake() {
	select {
	case s.wakeup <- struct{}{}:
	default:
	}
}

// worker claims and runs jobs until the server drains.
func (s *Server) worker(n int) {
	defer s.workers.Done()
	name := s.cfg.Replica + "/" + strconv.Itoa(n)
	idle := time.NewTimer(0)
	defer idle.Stop()
	failures := 0
	for {
		select {
		case <-s.drained:
			return
		case <-s.workCtx.Done():
			return
		case <-idle.C:
		case <-s.wakeup:
		}
		for s.workCtx.Err() == nil && !s.isDraining() {
			l, err := s.cfg.Runs.Claim(s.workCtx, runstore.Claim{Worker: name, Lease: s.cfg.JobLease,
				Kinds: []string{runstore.JobKindAnalyze}})
			if errors.Is(err, runstore.ErrNoJob) {
				failures = 0
				break
			}
			if err != nil {
				if s.workCtx.Err() == nil {
					failures++
					s.cfg.Metrics.IncJobEvent(metrics.JobClaimError)
					if failures == 1 || failures%30 == 0 {
						s.log.Warn("claiming an analysis job failed", "worker", name, "failures", failures, "err", err)
					}
				}
				break
			}
			failures = 0
			s.cfg.Metrics.IncJobEvent(metrics.JobClaimed)
			if l.Job.Attempt > 1 {
				s.cfg.Metrics.IncJobEvent(metrics.JobRetried)
			}
			s.busy.Add(1)
			s.cfg.Metrics.AddBusyWorkers(1)
			s.runJob(l)
			s.cfg.Metrics.AddBusyWorkers(-1)
			s.busy.Add(-1)
		}
		idle.Reset(s.pollDelay(failures))
	}
}

// pollDelay is how long an idle worker waits before looking for jobs
// queued by other replicas: JobPoll, with up to a quarter of jitter so
// replicas' workers do not poll in step, longer after repeated failures.
func (s *Server) pollDelay(failures int) time.Duration {
	d := s.cfg.JobPoll
	for range min(failures, 5) {
		d *= 2
	}
	return d + time.Duration(rand.Int64N(int64(d/4)+1))
}

func (s *Server) isDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// runJob runs one leased job to exactly one of complete, fail, retry,
// release, or nothing when its lease was lost.
func (s *Server) runJob(l runstore.Lease) {
	start := time.Now()
	j := &job{lease: l, filename: l.Run.Filename, fileID: l.Job.InputFile, size: l.Run.InputSize, opts: DefaultAnalysisOptions()}
	ctx, cancel := context.WithCancelCause(s.workCtx)
	defer cancel(nil)
	hb := s.keepLease(ctx, cancel, j)
	defer hb.stop()

	res, stats, err := s.safeAnalyze(ctx, j, hb)
	if err == nil {
		err = s.storeResult(ctx, j, hb, res, stats)
	}
	hb.stop()
	switch {
	case err == nil:
		s.cfg.Metrics.ObserveAnalysis(metrics.StatusSuccess, metrics.SourceUpload, time.Since(start))
		s.cfg.Metrics.IncJobEvent(metrics.JobCompleted)
		if stats.CorrectedCells != nil && stats.MaxCorrectionPct != nil {
			s.cfg.Metrics.ObserveVECorrections(int(*stats.CorrectedCells), *stats.MaxCorrectionPct)
		}
	case errors.Is(err, runstore.ErrLeaseLost) || errors.Is(context.Cause(ctx), errLeaseLost):
		// Another worker holds the job now; it writes the result.
		s.log.Warn("analysis abandoned: its lease was lost", "run_id", l.Run.ID, "worker", l.Job.Worker, "err", err)
		s.cfg.Metrics.IncJobEvent(metrics.JobLeaseLost)
	case s.workCtx.Err() != nil:
		// Shutting down: give the job back whole; another replica, or
		// this one after its restart, runs it again.
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer rcancel()
		if rerr := s.cfg.Runs.ReleaseJob(rctx, hb.current(), "the server that was analyzing it shut down"); rerr != nil {
			s.log.Warn("could not release an analysis job; its lease will expire", "run_id", l.Run.ID, "err", rerr)
		} else {
			s.cfg.Metrics.IncJobEvent(metrics.JobReleased)
		}
	default:
		e, retry := s.classify(err)
		s.log.Warn("analysis failed", "run_id", l.Run.ID, "attempt", l.Job.Attempt, "code", e.Code, "retry", retry, "err", err)
		fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer fcancel()
		run, ferr := s.cfg.Runs.FailJob(fctx, hb.current(), e, retry)
		switch {
		case errors.Is(ferr, runstore.ErrLeaseLost):
			s.cfg.Metrics.IncJobEvent(metrics.JobLeaseLost)
		case ferr != nil:
			s.log.Error("could not record a failed analysis; its lease will expire and it will run again", "run_id", l.Run.ID, "err", ferr)
		case run.Status == runstore.StatusFailed:
			s.cfg.Metrics.ObserveAnalysis(metrics.StatusError, metrics.SourceUpload, time.Since(start))
			s.cfg.Metrics.IncJobEvent(metrics.JobFailed)
		default:
			s.cfg.Metrics.IncJobEvent(metrics.JobRetryScheduled)
		}
	}
}

// safeAnalyze reads the job's options and analyzes its input, turning a
// panic (an analyzer bug) into an error instead of a dead server.
func (s *Server) safeAnalyze(ctx context.Context, j *job, hb *heartbeat) (res *ve.Result, stats runstore.Stats, err error) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("analysis panicked", "run_id", j.lease.Run.ID, "panic", v)
			err = &panicError{v: v}
		}
	}()
	if len(j.lease.Run.Settings) > 0 {
		if err := json.Unmarshal(j.lease.Run.Settings, &j.opts); err != nil {
			return nil, stats, fmt.Errorf("%w: the run's settings are not analysis options: %v", errBadSettings, err)
		}
	}
	actx, cancel := context.WithTimeout(ctx, s.cfg.AnalysisTimeout)
	defer cancel()
	return s.analyze(actx, j, hb.progress)
}

type panicError struct{ v any }

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.v) }

var errBadSettings = errors.New("httpapi: bad run settings")

// classify turns an analysis error into the run's error and whether
// another attempt could succeed: a broken log, a bug or a timeout fails the
// same way every time; a store that refused a write may not.
func (s *Server) classify(err error) (runstore.RunError, bool) {
	e := runstore.RunError{Stage: "analysis", Code: "ANALYSIS_ERROR", Message: "the analysis failed", Detail: err.Error()}
	var pe *dynolog.ParseError
	var pan *panicError
	switch {
	case errors.As(err, &pan):
		e.Code, e.Message = CodeInternal, "the analysis failed unexpectedly"
		return e, false
	case errors.Is(err, context.DeadlineExceeded):
		e.Code, e.Message = "TIMEOUT", fmt.Sprintf("the analysis took longer than %v", s.cfg.AnalysisTimeout)
		return e, false
	case errors.As(err, &pe) || errors.Is(err, dynolog.ErrMissingColumns):
		e.Code, e.Message = CodeCSVParsing, err.Error() // names the client's file, line, column, offset
		return e, false
	case errors.Is(err, runstore.ErrChecksum):
		e.Code, e.Message = CodeChecksum, "the stored upload failed its checksum; upload the log again"
		return e, false
	case errors.Is(err, ve.ErrMissingChannel) || errors.Is(err, ve.ErrShape) || errors.Is(err, ve.ErrAxis) || errors.Is(err, errBadSettings):
		e.Message = err.Error()
		return e, false
	case errors.Is(err, runstore.ErrNotFound):
		e.Stage, e.Code, e.Message = "reading", "INPUT_MISSING", "the uploaded log is no longer stored; upload it again"
		return e, false
	case errors.Is(err, runstore.ErrUnavailable):
		e.Stage, e.Code, e.Message = "storage", "STORE_ERROR", "the storage refused a read or write"
		return e, true
	}
	// Anything else (an I/O error reading the input, say) may pass.
	return e, true
}

// heartbeat keeps a job's lease alive and carries the analysis's progress,
// which is written with the lease's run version.
type heartbeat struct {
	s        *Server
	progress *progress
	done     chan struct{}
	stopped  chan struct{}
	mu       sync.Mutex
	latest   runstore.Lease
}

// keepLease starts renewing j's lease every JobHeartbeat. When the store
// says the lease is lost, or no renewal succeeded for a whole lease, it
// cancels ctx with errLeaseLost: the job is someone else's now.
func (s *Server) keepLease(ctx context.Context, cancel context.CancelCauseFunc, j *job) *heartbeat {
	hb := &heartbeat{s: s, done: make(chan struct{}), stopped: make(chan struct{}), latest: j.lease}
	hb.progress = &progress{s: s, run: j.lease.Run, total: j.size}
	go func() {
		defer close(hb.stopped)
		t := time.NewTicker(s.cfg.JobHeartbeat)
		defer t.Stop()
		renewed := time.Now()
		for {
			select {
			case <-hb.done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			l := hb.current()
			hctx, hcancel := context.WithTimeout(ctx, s.cfg.JobHeartbeat)
			nl, err := s.cfg.Runs.Heartbeat(hctx, l, s.cfg.JobLease)
			hcancel()
			switch {
			case err == nil:
				renewed = time.Now()
				hb.mu.Lock()
				hb.latest = nl
				hb.mu.Unlock()
			case errors.Is(err, runstore.ErrLeaseLost):
				cancel(errLeaseLost)
				return
			case time.Since(renewed) >= s.cfg.JobLease:
				s.log.Warn("could not renew an analysis lease for a whole lease; abandoning it", "run_id", l.Run.ID, "err", err)
				cancel(errLeaseLost)
				return
			default:
				s.log.Warn("renewing an analysis lease failed; retrying", "run_id", l.Run.ID, "err", err)
			}
		}
	}()
	return hb
}

// current returns the latest lease.
func (h *heartbeat) current() runstore.Lease {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.latest
}

// stop ends the renewals and waits for the renewing goroutine; it may be
// called more than once.
func (h *heartbeat) stop() {
	select {
	case <-h.done:
	default:
		close(h.done)
	}
	<-h.stopped
}
