package runstore

import (
	"cmp"
	"context"
	"slices"
	"time"
)

var _ JobQueue = (*Memory)(nil)

// Submit implements JobQueue.
func (m *Memory) Submit(ctx context.Context, n NewRun, j NewJob) (Submitted, error) {
	if err := n.Validate(); err != nil {
		return Submitted{}, err
	}
	if err := j.Validate(); err != nil {
		return Submitted{}, err
	}
	j = j.Normalized()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx); err != nil {
		return Submitted{}, err
	}
	now := stamp(m.clock)
	id, err := m.ids.Next(now)
	if err != nil {
		return Submitted{}, err
	}
	r := n.Build(id, now)
	m.nextFile++
	in := File{ID: m.nextFile, RunID: id, FileMeta: j.Input, CreatedAt: now}
	m.nextJob++
	job := Job{ID: m.nextJob, RunID: id, Kind: j.Kind, State: JobAvailable, MaxAttempts: j.MaxAttempts,
		RunAt: now, InputFile: in.ID, CreatedAt: now, UpdatedAt: now}
	m.runs[id] = &memRun{run: r, history: []StatusChange{{To: StatusQueued, At: now, Reason: "created"}},
		files: []File{in}, job: &job}
	return Submitted{Run: copyRun(r), Input: in, Job: job}, nil
}

// mutateLocked applies mu to mr's run, recording the status change.
func (m *Memory) mutateLocked(mr *memRun, mu Mutation, now time.Time) (Run, error) {
	r, ch, err := ApplyMutation(copyRun(mr.run), mu, now)
	if err != nil {
		return Run{}, err
	}
	mr.run = r
	if ch != nil {
		mr.history = append(mr.history, *ch)
	}
	return copyRun(r), nil
}

// Claim implements JobQueue.
func (m *Memory) Claim(ctx context.Context, c Claim) (Lease, error) {
	if err := c.Validate(); err != nil {
		return Lease{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx); err != nil {
		return Lease{}, err
	}
	now := stamp(m.clock)
	var due []*memRun
	for _, mr := range m.runs {
		j := mr.job
		if j == nil || (len(c.Kinds) > 0 && !slices.Contains(c.Kinds, j.Kind)) {
			continue
		}
		if j.State == JobAvailable && !j.RunAt.After(now) || j.State == JobRunning && j.LeaseUntil.Before(now) {
			due = append(due, mr)
		}
	}
	slices.SortFunc(due, func(a, b *memRun) int {
		return cmp.Or(a.job.RunAt.Compare(b.job.RunAt), cmp.Compare(a.job.ID, b.job.ID))
	})
	for _, mr := range due {
		j := mr.job
		rescued := j.State == JobRunning
		if mr.run.Status.Terminal() {
			j.State, j.UpdatedAt = JobCancelled, now
			continue
		}
		if rescued && j.Attempt >= j.MaxAttempts {
			if _, err := m.mutateLocked(mr, FailMutation(0, ExhaustedError(*j)), now); err != nil {
				return Lease{}, err
			}
			j.State, j.LastError, j.UpdatedAt = JobFailed, "lease expired on the last attempt", now
			continue
		}
		next := *j
		next.State, next.Attempt, next.Token = JobRunning, j.Attempt+1, j.Token+1
		next.Worker, next.LeaseUntil, next.UpdatedAt = c.Worker, now.Add(c.Lease), now
		if rescued {
			next.LastError = ErrorText(RunError{Code: "LEASE_EXPIRED", Message: "the lease of " + j.Worker + " expired"})
		}
		run, err := m.mutateLocked(mr, ClaimMutation(next, rescued), now)
		if err != nil {
			return Lease{}, err
		}
		*j = next
		return Lease{Job: next, Run: run}, nil
	}
	return Lease{}, ErrNoJob
}

// leased returns the run and job l holds, counting a late write when the
// lease is no longer current.
func (m *Memory) leased(ctx context.Context, l Lease) (*memRun, error) {
	if err := CheckLease(l); err != nil {
		return nil, err
	}
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	mr, ok := m.runs[l.Job.RunID]
	if !ok || mr.job == nil || mr.job.ID != l.Job.ID {
		return nil, ErrLeaseLost
	}
	if mr.job.Token != l.Job.Token || mr.job.State != JobRunning {
		mr.job.LateWrites++
		return nil, ErrLeaseLost
	}
	return mr, nil
}

// Heartbeat implements JobQueue.
func (m *Memory) Heartbeat(ctx context.Context, l Lease, d time.Duration) (Lease, error) {
	if err := CheckLeaseFor(d); err != nil {
		return Lease{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mr, err := m.leased(ctx, l)
	if err != nil {
		return Lease{}, err
	}
	now := stamp(m.clock)
	mr.job.LeaseUntil, mr.job.UpdatedAt = now.Add(d), now
	return Lease{Job: *mr.job, Run: copyRun(mr.run)}, nil
}

// CompleteJob implements JobQueue.
func (m *Memory) CompleteJob(ctx context.Context, l Lease, r Result, files []FileMeta) (Run, error) {
	if err := r.Validate(); err != nil {
		return Run{}, err
	}
	for _, f := range files {
		if err := f.Validate(); err != nil {
			return Run{}, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mr, err := m.leased(ctx, l)
	if err != nil {
		return Run{}, err
	}
	now := stamp(m.clock)
	run, err := m.mutateLocked(mr, CompleteMutation(mr.run.Version, r), now)
	if err != nil {
		return Run{}, err
	}
	for _, fm := range files {
		m.attachLocked(mr, fm, now)
	}
	mr.job.State, mr.job.UpdatedAt, mr.job.LastError = JobCompleted, now, ""
	return run, nil
}

// FailJob implements JobQueue.
func (m *Memory) FailJob(ctx context.Context, l Lease, e RunError, retry bool) (Run, error) {
	if err := e.Validate(); err != nil {
		return Run{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mr, err := m.leased(ctx, l)
	if err != nil {
		return Run{}, err
	}
	now := stamp(m.clock)
	j := mr.job
	if retry && j.Attempt < j.MaxAttempts {
		at := now.Add(RetryDelay(j.Attempt))
		run, err := m.mutateLocked(mr, RetryMutation(*j, e, at), now)
		if err != nil {
			return Run{}, err
		}
		j.State, j.RunAt, j.LastError, j.UpdatedAt = JobAvailable, at, ErrorText(e), now
		return run, nil
	}
	run, err := m.mutateLocked(mr, FailMutation(0, e), now)
	if err != nil {
		return Run{}, err
	}
	j.State, j.LastError, j.UpdatedAt = JobFailed, ErrorText(e), now
	return run, nil
}

// ReleaseJob implements JobQueue.
func (m *Memory) ReleaseJob(ctx context.Context, l Lease, reason string) error {
	if err := CheckReason(reason); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mr, err := m.leased(ctx, l)
	if err != nil {
		return err
	}
	now := stamp(m.clock)
	if _, err := m.mutateLocked(mr, ReleaseMutation(reason), now); err != nil {
		return err
	}
	j := mr.job
	j.State, j.Attempt, j.RunAt, j.LeaseUntil, j.UpdatedAt = JobAvailable, j.Attempt-1, now, time.Time{}, now
	return nil
}

// Job implements JobQueue.
func (m *Memory) Job(ctx context.Context, runID string) (Job, error) {
	if err := CheckID("run_id", runID); err != nil {
		return Job{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	mr, err := m.lookup(ctx, runID)
	if err != nil {
		return Job{}, err
	}
	if mr.job == nil {
		return Job{}, notFound("job of run", runID)
	}
	return *mr.job, nil
}

// JobCounts implements JobQueue.
func (m *Memory) JobCounts(ctx context.Context) (JobCounts, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.check(ctx); err != nil {
		return JobCounts{}, err
	}
	now := stamp(m.clock)
	var c JobCounts
	for _, mr := range m.runs {
		if mr.job != nil {
			c.add(*mr.job, now)
		}
	}
	return c, nil
}

// add counts j, as it stands at now.
func (c *JobCounts) add(j Job, now time.Time) {
	switch j.State {
	case JobAvailable:
		c.Available++
		if !j.RunAt.After(now) {
			c.Due++
		}
	case JobRunning:
		c.Running++
		if j.LeaseUntil.Before(now) {
			c.Expired++
		}
	case JobCompleted:
		c.Completed++
	case JobFailed:
		c.Failed++
	case JobCancelled:
		c.Cancelled++
	}
}
