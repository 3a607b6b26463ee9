package runstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// JobQueue is the durable analysis queue that every RunStore also is. A job
// is a row in the store written in the same transaction as its run and input
// file (Submit), so an accepted upload is never lost: after any crash its
// job is still there. Workers on any number of processes claim jobs with a
// lease (Claim), renew it while they work (Heartbeat), and end it with
// CompleteJob, FailJob or ReleaseJob.
//
// Leases, attempts and fencing:
//   - A claim hands out a job that is available (and due), or one whose
//     lease expired (its worker died or stalled), and raises the job's
//     fencing token. Two workers never hold the same job at once: on
//     PostgreSQL the claim locks the row with FOR UPDATE SKIP LOCKED; SQLite
//     has a single writer.
//   - Every write a worker makes with its lease (Heartbeat, CompleteJob,
//     FailJob, ReleaseJob) checks the lease's token in the same transaction.
//     A worker whose lease expired and was claimed again gets ErrLeaseLost
//     and writes nothing; the store counts such refused late writes
//     (Job.LateWrites).
//   - A job has at most MaxAttempts attempts. An attempt ends with the
//     worker's verdict (FailJob with retry, after a back-off) or with its
//     lease expiring; a run is failed only after its last attempt, with the
//     reason. ReleaseJob (a graceful shutdown) gives the job back without
//     using up the attempt.
//   - Results are written once: CompleteJob stores the run's result and its
//     output files in one transaction with the token check, so a re-run
//     after a crash replaces nothing and duplicates nothing.
//
// Times (run_at, lease expiry) come from the store's clock, so the
// processes sharing a store need clocks within a small fraction of the
// lease of each other (NTP is plenty).
type JobQueue interface {
	// Submit creates a run in status queued, records its input file and
	// queues its job, in one transaction. The input's contents must
	// already be durable in the file store.
	Submit(ctx context.Context, n NewRun, j NewJob) (Submitted, error)
	// Claim leases the next due job to c.Worker for c.Lease, moving its
	// run to processing. It returns ErrNoJob when no job is due. A job
	// whose lease expired on its last attempt is not handed out again: its
	// run is failed with the reason (Claim does it, so no separate janitor
	// is needed).
	Claim(ctx context.Context, c Claim) (Lease, error)
	// Heartbeat extends a lease by d from now, or fails with ErrLeaseLost.
	Heartbeat(ctx context.Context, l Lease, d time.Duration) (Lease, error)
	// CompleteJob completes the lease's run with r and records its output
	// files, checking the lease in the same transaction (else
	// ErrLeaseLost, counted in Job.LateWrites). The files' contents must
	// already be durable in the file store.
	CompleteJob(ctx context.Context, l Lease, r Result, files []FileMeta) (Run, error)
	// FailJob ends the lease's attempt with e. When retry is true and the
	// job has attempts left it becomes available again after
	// RetryDelay(attempt) and its run stays processing; otherwise the job
	// and its run fail with e.
	FailJob(ctx context.Context, l Lease, e RunError, retry bool) (Run, error)
	// ReleaseJob gives the lease's job back without using up the attempt
	// (a graceful shutdown): it is due again at once, for any worker.
	ReleaseJob(ctx context.Context, l Lease, reason string) error
	// Job returns the job of a run, or ErrNotFound.
	Job(ctx context.Context, runID string) (Job, error)
	// JobCounts counts jobs by state, for back-pressure and metrics.
	JobCounts(ctx context.Context) (JobCounts, error)
}

// ErrNoJob is returned by Claim when no job is due.
var ErrNoJob = errors.New("runstore: no job is due")

// ErrLeaseLost is returned by a write made with a lease that is no longer
// the job's current one: it expired and another worker claimed the job, or
// the job ended. Nothing was written.
var ErrLeaseLost = errors.New("runstore: the job's lease was lost")

// JobState is where a job is in its life.
type JobState string

// The job states. A job is available until claimed, running while leased,
// and ends completed, failed or cancelled (its run was cancelled).
const (
	JobAvailable JobState = "available"
	JobRunning   JobState = "running"
	JobCompleted JobState = "completed"
	JobFailed    JobState = "failed"
	JobCancelled JobState = "cancelled"
)

// Terminal reports whether a job in state s is over.
func (s JobState) Terminal() bool {
	return s == JobCompleted || s == JobFailed || s == JobCancelled
}

// JobKindAnalyze is the kind of the jobs that analyze an uploaded log.
const JobKindAnalyze = "analyze"

// DefaultMaxAttempts is NewJob.MaxAttempts when zero.
const DefaultMaxAttempts = 3

// MaxMaxAttempts bounds NewJob.MaxAttempts.
const MaxMaxAttempts = 25

// NewJob is what Submit queues with a run.
type NewJob struct {
	Kind        string   // "" means JobKindAnalyze
	MaxAttempts int      // 0 means DefaultMaxAttempts; at most MaxMaxAttempts
	Input       FileMeta // the run's input file, recorded with the run
}

// Submitted is what Submit stored.
type Submitted struct {
	Run   Run
	Input File
	Job   Job
}

// Job is a run's durable unit of work.
type Job struct {
	ID          int64     `json:"id"`
	RunID       string    `json:"run_id"`
	Kind        string    `json:"kind"`
	State       JobState  `json:"state"`
	Attempt     int       `json:"attempt"` // attempts started so far
	MaxAttempts int       `json:"max_attempts"`
	Token       int64     `json:"token"`            // the fencing token of the latest claim; raised by every claim
	Worker      string    `json:"worker,omitempty"` // the holder of the latest lease
	LeaseUntil  time.Time `json:"lease_until,omitzero"`
	RunAt       time.Time `json:"run_at"` // not claimed before this time
	InputFile   int64     `json:"input_file"`
	LastError   string    `json:"last_error,omitempty"` // why the latest attempt ended, if it failed
	LateWrites  int64     `json:"late_writes"`          // writes refused because their lease was lost
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Claim asks for a job.
type Claim struct {
	Worker string        // who claims: a replica's name and worker number; required
	Lease  time.Duration // how long the lease lasts without a heartbeat; > 0
	Kinds  []string      // only these kinds; empty means any
}

// Lease is a worker's hold on a job: its run (as the claim left it) and
// the token every later write is checked against.
type Lease struct {
	Job Job
	Run Run
}

// JobCounts counts jobs by state. Due counts the available jobs whose
// time has come; Expired the running jobs whose lease has run out.
type JobCounts struct {
	Available, Due, Running, Expired, Completed, Failed, Cancelled int64
}

// Backlog is the number of jobs waiting for a worker.
func (c JobCounts) Backlog() int64 { return c.Available + c.Expired }

// Validate checks j as Submit does, with n.
func (j NewJob) Validate() error {
	if j.Kind != "" && (len(j.Kind) > 32 || !isToken(j.Kind)) {
		return invalid("job.kind", "%q: want at most 32 lowercase letters, digits, '-' or '_'", truncate(j.Kind, 40))
	}
	if j.MaxAttempts < 0 || j.MaxAttempts > MaxMaxAttempts {
		return invalid("job.max_attempts", "%d is outside 0..%d", j.MaxAttempts, MaxMaxAttempts)
	}
	if err := j.Input.Validate(); err != nil {
		return err
	}
	return nil
}

// Normalized returns j with its defaults filled in.
func (j NewJob) Normalized() NewJob {
	if j.Kind == "" {
		j.Kind = JobKindAnalyze
	}
	if j.MaxAttempts == 0 {
		j.MaxAttempts = DefaultMaxAttempts
	}
	return j
}

// Validate checks c as Claim does.
func (c Claim) Validate() error {
	if c.Worker == "" || len(c.Worker) > 200 {
		return invalid("claim.worker", "want a name of 1 to 200 bytes")
	}
	if err := checkText("claim.worker", c.Worker, 200, true); err != nil {
		return err
	}
	if c.Lease <= 0 || c.Lease > 24*time.Hour {
		return invalid("claim.lease", "%v is outside (0, 24h]", c.Lease)
	}
	for _, k := range c.Kinds {
		if !isToken(k) {
			return invalid("claim.kinds", "%q is not a job kind", truncate(k, 40))
		}
	}
	return nil
}

// CheckLeaseFor returns an *InvalidError unless d can extend a lease.
func CheckLeaseFor(d time.Duration) error {
	if d <= 0 || d > 24*time.Hour {
		return invalid("lease", "%v is outside (0, 24h]", d)
	}
	return nil
}

// CheckLease returns an *InvalidError unless l came from Claim.
func CheckLease(l Lease) error {
	if l.Job.ID <= 0 || l.Job.Token <= 0 || !ValidID(l.Job.RunID) {
		return invalid("lease", "not a lease returned by Claim")
	}
	return nil
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// RetryDelay is how long a job waits after its attempt-th attempt failed
// with retry: 2 s, 4 s, 8 s, ... at most 5 minutes.
func RetryDelay(attempt int) time.Duration {
	d := 2 * time.Second
	for i := 1; i < attempt && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}

// ExhaustedError is the run error recorded when a job's lease expires on
// its last attempt: its workers kept dying or stalling on it (a log that
// crashes the process, a machine that keeps failing).
func ExhaustedError(j Job) RunError {
	msg := fmt.Sprintf("the analysis was interrupted %d times (its worker stopped or stalled each time); giving up", j.Attempt)
	detail := fmt.Sprintf("the lease of %s expired at %s", j.Worker, j.LeaseUntil.Format(time.RFC3339Nano))
	if j.LastError != "" {
		detail += "; earlier: " + j.LastError
	}
	return RunError{Stage: "queue", Code: "ATTEMPTS_EXHAUSTED", Message: msg, Detail: truncate(detail, 2000)}
}

// ClaimMutation is the change a claim makes to a job's run: a queued run
// starts processing; a run whose earlier attempt was cut short says so.
// Every claim is recorded in the run's history ("claimed by W (attempt a
// of m)"), a later attempt as a change from processing to processing.
func ClaimMutation(j Job, rescued bool) Mutation {
	return func(r *Run, now time.Time) (*StatusChange, error) {
		if r.Status.Terminal() {
			return nil, conflict("run %s is %s", r.ID, r.Status)
		}
		reason := fmt.Sprintf("claimed by %s (attempt %d of %d)", j.Worker, j.Attempt, j.MaxAttempts)
		ch, err := transition(r, StatusProcessing, reason, now)
		if err != nil {
			return nil, err
		}
		if ch == nil {
			// A later attempt of a run already processing: the history
			// still records who took it and when.
			ch = &StatusChange{From: r.Status, To: r.Status, At: now, Reason: reason}
		}
		r.Stage, r.Progress = "queued", 0
		r.Message = fmt.Sprintf("attempt %d of %d started", j.Attempt, j.MaxAttempts)
		if rescued {
			r.Message = fmt.Sprintf("attempt %d of %d started after the previous worker stopped", j.Attempt, j.MaxAttempts)
		}
		return ch, nil
	}
}

// RetryMutation is the change FailJob with retry makes to the run: it stays
// processing and says when it will be tried again.
func RetryMutation(j Job, e RunError, at time.Time) Mutation {
	return func(r *Run, now time.Time) (*StatusChange, error) {
		if r.Status.Terminal() {
			return nil, conflict("run %s is %s", r.ID, r.Status)
		}
		r.Stage = "retrying"
		r.Message = truncate(fmt.Sprintf("attempt %d of %d failed (%s); trying again at %s", j.Attempt, j.MaxAttempts,
			e.Message, at.Format(time.RFC3339)), maxShortText)
		return nil, nil
	}
}

// ReleaseMutation is the change ReleaseJob makes to the run: back to
// waiting, with the reason.
func ReleaseMutation(reason string) Mutation {
	return func(r *Run, now time.Time) (*StatusChange, error) {
		if r.Status.Terminal() {
			return nil, conflict("run %s is %s", r.ID, r.Status)
		}
		r.Stage, r.Progress = "queued", 0
		r.Message = truncate("waiting for a worker: "+reason, maxShortText)
		return nil, nil
	}
}

// ErrorText is how FailJob keeps e in Job.LastError.
func ErrorText(e RunError) string {
	s := e.Message
	if e.Code != "" {
		s = e.Code + ": " + s
	}
	return truncate(s, 2000)
}

// CheckReason returns an *InvalidError unless reason can be recorded.
func CheckReason(reason string) error { return checkText("reason", reason, maxMessage, false) }
