package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dynoai/dynoai/runstore"
)

var _ runstore.JobQueue = (*Store)(nil)

type jobRow struct {
	ID           int64  `db:"id"`
	RunID        string `db:"run_id"`
	Kind         string `db:"kind"`
	State        string `db:"state"`
	Attempt      int    `db:"attempt"`
	MaxAttempts  int    `db:"max_attempts"`
	Token        int64  `db:"token"`
	Worker       string `db:"worker"`
	LeaseUntilUS int64  `db:"lease_until_us"`
	RunAtUS      int64  `db:"run_at_us"`
	InputFileID  int64  `db:"input_file_id"`
	LastError    string `db:"last_error"`
	LateWrites   int64  `db:"late_writes"`
	CreatedUS    int64  `db:"created_us"`
	UpdatedUS    int64  `db:"updated_us"`
}

const jobColumns = `id, run_id, kind, state, attempt, max_attempts, token, worker, lease_until_us, run_at_us,
	input_file_id, last_error, late_writes, created_us, updated_us`

func (r jobRow) job() runstore.Job {
	j := runstore.Job{ID: r.ID, RunID: r.RunID, Kind: r.Kind, State: runstore.JobState(r.State), Attempt: r.Attempt,
		MaxAttempts: r.MaxAttempts, Token: r.Token, Worker: r.Worker, RunAt: fromMicros(r.RunAtUS),
		InputFile: r.InputFileID, LastError: r.LastError, LateWrites: r.LateWrites,
		CreatedAt: fromMicros(r.CreatedUS), UpdatedAt: fromMicros(r.UpdatedUS)}
	if r.LeaseUntilUS != 0 {
		j.LeaseUntil = fromMicros(r.LeaseUntilUS)
	}
	return j
}

// forUpdate locks the selected rows on PostgreSQL; SQLite's write
// transactions are already exclusive (BEGIN IMMEDIATE).
func (s *Store) forUpdate(skipLocked bool) string {
	if s.dialect != Postgres {
		return ""
	}
	if skipLocked {
		return " FOR UPDATE SKIP LOCKED"
	}
	return " FOR UPDATE"
}

// Submit implements runstore.JobQueue.
func (s *Store) Submit(ctx context.Context, n runstore.NewRun, j runstore.NewJob) (runstore.Submitted, error) {
	if err := n.Validate(); err != nil {
		return runstore.Submitted{}, err
	}
	if err := j.Validate(); err != nil {
		return runstore.Submitted{}, err
	}
	j = j.Normalized()
	now := stamp(s.clock)
	id, err := s.ids.Next(now)
	if err != nil {
		return runstore.Submitted{}, err
	}
	out := runstore.Submitted{Run: n.Build(id, now)}
	r := out.Run
	err = s.tx(ctx, func(tx *txn) error {
		if err := s.insertRun(ctx, tx, r); err != nil {
			return err
		}
		in, err := s.insertFile(ctx, tx, r.ID, j.Input, now)
		if err != nil {
			return err
		}
		out.Input = in
		out.Job = runstore.Job{RunID: r.ID, Kind: j.Kind, State: runstore.JobAvailable, MaxAttempts: j.MaxAttempts,
			RunAt: now, InputFile: in.ID, CreatedAt: now, UpdatedAt: now}
		return tx.GetContext(ctx, &out.Job.ID, tx.Rebind(`INSERT INTO run_jobs (run_id, kind, state, attempt, max_attempts, token, run_at_us, input_file_id, created_us, updated_us)
			VALUES (?, ?, ?, 0, ?, 0, ?, ?, ?, ?) RETURNING id`),
			r.ID, j.Kind, string(runstore.JobAvailable), j.MaxAttempts, toMicros(now), in.ID, toMicros(now), toMicros(now))
	})
	if err != nil {
		return runstore.Submitted{}, fmt.Errorf("sqlstore: submit: %w", err)
	}
	return out, nil
}

func (s *Store) insertFile(ctx context.Context, tx *txn, runID string, m runstore.FileMeta, now time.Time) (runstore.File, error) {
	f := runstore.File{RunID: runID, FileMeta: m, CreatedAt: now}
	err := tx.GetContext(ctx, &f.ID, tx.Rebind(`INSERT INTO run_files (run_id, name, content_type, size_bytes, sha256, storage_key, created_us)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`), runID, m.Name, m.ContentType, m.Size, m.SHA256, m.StorageKey, toMicros(now))
	if isForeignKey(err) {
		return f, notFound("run", runID)
	}
	if err != nil {
		return f, fmt.Errorf("sqlstore: add file to run %s: %w", runID, err)
	}
	return f, nil
}

// setJob writes j's mutable columns.
func setJob(ctx context.Context, tx *txn, j runstore.Job) error {
	lease := int64(0)
	if !j.LeaseUntil.IsZero() {
		lease = toMicros(j.LeaseUntil)
	}
	_, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE run_jobs SET state = ?, attempt = ?, token = ?, worker = ?, lease_until_us = ?,
		run_at_us = ?, last_error = ?, updated_us = ? WHERE id = ?`),
		string(j.State), j.Attempt, j.Token, j.Worker, lease, toMicros(j.RunAt), j.LastError, toMicros(j.UpdatedAt), j.ID)
	if err != nil {
		return fmt.Errorf("sqlstore: job %d: %w", j.ID, err)
	}
	return nil
}

// claimBatch is how many due jobs one Claim looks at: the first that can
// be leased is, the others only if the earlier ones had to be failed or
// cancelled (a dead run, an exhausted job).
const claimBatch = 8

// Claim implements runstore.JobQueue. On PostgreSQL the due rows are
// locked with FOR UPDATE SKIP LOCKED, so concurrent claimers on several
// replicas take different jobs without waiting for each other.
func (s *Store) Claim(ctx context.Context, c runstore.Claim) (runstore.Lease, error) {
	if err := c.Validate(); err != nil {
		return runstore.Lease{}, err
	}
	now := stamp(s.clock)
	var lease runstore.Lease
	found := false
	err := s.tx(ctx, func(tx *txn) error {
		found = false
		q := `SELECT ` + jobColumns + ` FROM run_jobs
			WHERE ((state = 'available' AND run_at_us <= ?) OR (state = 'running' AND lease_until_us < ?))`
		args := []any{toMicros(now), toMicros(now)}
		if len(c.Kinds) > 0 {
			q += ` AND kind IN (?` + strings.Repeat(", ?", len(c.Kinds)-1) + `)`
			for _, k := range c.Kinds {
				args = append(args, k)
			}
		}
		q += fmt.Sprintf(` ORDER BY run_at_us, id LIMIT %d`, claimBatch) + s.forUpdate(true)
		var rows []jobRow
		if err := tx.SelectContext(ctx, &rows, tx.Rebind(q), args...); err != nil {
			return fmt.Errorf("sqlstore: claim: %w", err)
		}
		for _, row := range rows {
			j := row.job()
			rescued := j.State == runstore.JobRunning
			run, err := s.get(ctx, tx, j.RunID)
			if err != nil {
				return err
			}
			j.UpdatedAt = now
			if run.Status.Terminal() {
				j.State = runstore.JobCancelled
				if err := setJob(ctx, tx, j); err != nil {
					return err
				}
				continue
			}
			if rescued && j.Attempt >= j.MaxAttempts {
				if _, err := s.mutateTx(ctx, tx, j.RunID, runstore.FailMutation(0, runstore.ExhaustedError(j)), now); err != nil {
					return err
				}
				j.State, j.LastError = runstore.JobFailed, "lease expired on the last attempt"
				if err := setJob(ctx, tx, j); err != nil {
					return err
				}
				s.log.Warn("sqlstore: job failed after its last attempt", "run_id", j.RunID, "attempts", j.Attempt, "worker", j.Worker)
				continue
			}
			if rescued {
				j.LastError = runstore.ErrorText(runstore.RunError{Code: "LEASE_EXPIRED", Message: "the lease of " + j.Worker + " expired"})
			}
			j.State, j.Attempt, j.Token = runstore.JobRunning, j.Attempt+1, j.Token+1
			j.Worker, j.LeaseUntil = c.Worker, now.Add(c.Lease)
			run, err = s.mutateTx(ctx, tx, j.RunID, runstore.ClaimMutation(j, rescued), now)
			if err != nil {
				return err
			}
			if err := setJob(ctx, tx, j); err != nil {
				return err
			}
			lease, found = runstore.Lease{Job: j, Run: run}, true
			return nil
		}
		return nil
	})
	if err != nil {
		return runstore.Lease{}, err
	}
	if !found {
		return runstore.Lease{}, runstore.ErrNoJob
	}
	return lease, nil
}

// leased runs f in a transaction holding l's job locked, after checking
// that l is still its current lease. When it is not, the refused write is
// counted (committed) and leased returns runstore.ErrLeaseLost.
func (s *Store) leased(ctx context.Context, l runstore.Lease, f func(tx *txn, j runstore.Job, now time.Time) error) error {
	if err := runstore.CheckLease(l); err != nil {
		return err
	}
	now := stamp(s.clock)
	lost := false
	err := s.tx(ctx, func(tx *txn) error {
		lost = false
		var row jobRow
		err := tx.GetContext(ctx, &row, tx.Rebind(`SELECT `+jobColumns+` FROM run_jobs WHERE id = ?`+s.forUpdate(false)), l.Job.ID)
		if errors.Is(err, sql.ErrNoRows) {
			lost = true // the run was deleted
			return nil
		}
		if err != nil {
			return fmt.Errorf("sqlstore: job %d: %w", l.Job.ID, err)
		}
		j := row.job()
		if j.Token != l.Job.Token || j.State != runstore.JobRunning || j.RunID != l.Job.RunID {
			lost = true
			_, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE run_jobs SET late_writes = late_writes + 1 WHERE id = ?`), j.ID)
			return err
		}
		j.UpdatedAt = now
		return f(tx, j, now)
	})
	if err != nil {
		return err
	}
	if lost {
		return runstore.ErrLeaseLost
	}
	return nil
}

// Heartbeat implements runstore.JobQueue.
func (s *Store) Heartbeat(ctx context.Context, l runstore.Lease, d time.Duration) (runstore.Lease, error) {
	if err := runstore.CheckLeaseFor(d); err != nil {
		return runstore.Lease{}, err
	}
	out := l
	err := s.leased(ctx, l, func(tx *txn, j runstore.Job, now time.Time) error {
		j.LeaseUntil = now.Add(d)
		out.Job = j
		return setJob(ctx, tx, j)
	})
	return out, err
}

// CompleteJob implements runstore.JobQueue.
func (s *Store) CompleteJob(ctx context.Context, l runstore.Lease, r runstore.Result, files []runstore.FileMeta) (runstore.Run, error) {
	if err := r.Validate(); err != nil {
		return runstore.Run{}, err
	}
	for _, f := range files {
		if err := f.Validate(); err != nil {
			return runstore.Run{}, err
		}
	}
	var out runstore.Run
	err := s.leased(ctx, l, func(tx *txn, j runstore.Job, now time.Time) error {
		cur, err := s.get(ctx, tx, j.RunID)
		if err != nil {
			return err
		}
		if out, err = s.mutateTx(ctx, tx, j.RunID, runstore.CompleteMutation(cur.Version, r), now); err != nil {
			return err
		}
		for _, m := range files {
			if _, err := s.insertFile(ctx, tx, j.RunID, m, now); err != nil {
				return err
			}
		}
		j.State, j.LastError = runstore.JobCompleted, ""
		return setJob(ctx, tx, j)
	})
	return out, err
}

// FailJob implements runstore.JobQueue.
func (s *Store) FailJob(ctx context.Context, l runstore.Lease, e runstore.RunError, retry bool) (runstore.Run, error) {
	if err := e.Validate(); err != nil {
		return runstore.Run{}, err
	}
	var out runstore.Run
	err := s.leased(ctx, l, func(tx *txn, j runstore.Job, now time.Time) error {
		var err error
		j.LastError = runstore.ErrorText(e)
		if retry && j.Attempt < j.MaxAttempts {
			j.State, j.RunAt = runstore.JobAvailable, now.Add(runstore.RetryDelay(j.Attempt))
			out, err = s.mutateTx(ctx, tx, j.RunID, runstore.RetryMutation(j, e, j.RunAt), now)
		} else {
			j.State = runstore.JobFailed
			out, err = s.mutateTx(ctx, tx, j.RunID, runstore.FailMutation(0, e), now)
		}
		if err != nil {
			return err
		}
		return setJob(ctx, tx, j)
	})
	return out, err
}

// ReleaseJob implements runstore.JobQueue.
func (s *Store) ReleaseJob(ctx context.Context, l runstore.Lease, reason string) error {
	if err := runstore.CheckReason(reason); err != nil {
		return err
	}
	return s.leased(ctx, l, func(tx *txn, j runstore.Job, now time.Time) error {
		if _, err := s.mutateTx(ctx, tx, j.RunID, runstore.ReleaseMutation(reason), now); err != nil {
			return err
		}
		j.State, j.Attempt, j.RunAt, j.LeaseUntil = runstore.JobAvailable, j.Attempt-1, now, time.Time{}
		return setJob(ctx, tx, j)
	})
}

// Job implements runstore.JobQueue.
func (s *Store) Job(ctx context.Context, runID string) (runstore.Job, error) {
	if err := runstore.CheckID("run_id", runID); err != nil {
		return runstore.Job{}, err
	}
	var row jobRow
	err := s.r.GetContext(ctx, &row, s.r.Rebind(`SELECT `+jobColumns+` FROM run_jobs WHERE run_id = ?`), runID)
	if errors.Is(err, sql.ErrNoRows) {
		if err := s.exists(ctx, s.r, runID); err != nil {
			return runstore.Job{}, err
		}
		return runstore.Job{}, notFound("job of run", runID)
	}
	if err != nil {
		return runstore.Job{}, fmt.Errorf("sqlstore: job of %s: %w", runID, err)
	}
	return row.job(), nil
}

// JobCounts implements runstore.JobQueue.
func (s *Store) JobCounts(ctx context.Context) (runstore.JobCounts, error) {
	now := toMicros(stamp(s.clock))
	var rows []struct {
		State string `db:"state"`
		Due   bool   `db:"due"`
		N     int64  `db:"n"`
	}
	err := s.r.SelectContext(ctx, &rows, s.r.Rebind(`SELECT state,
		CASE WHEN (state = 'available' AND run_at_us <= ?) OR (state = 'running' AND lease_until_us < ?) THEN 1 ELSE 0 END = 1 AS due,
		COUNT(*) AS n FROM run_jobs GROUP BY 1, 2`), now, now)
	if err != nil {
		return runstore.JobCounts{}, fmt.Errorf("sqlstore: counting jobs: %w", err)
	}
	var c runstore.JobCounts
	for _, r := range rows {
		switch runstore.JobState(r.State) {
		case runstore.JobAvailable:
			c.Available += r.N
			if r.Due {
				c.Due += r.N
			}
		case runstore.JobRunning:
			c.Running += r.N
			if r.Due {
				c.Expired += r.N
			}
		case runstore.JobCompleted:
			c.Completed += r.N
		case runstore.JobFailed:
			c.Failed += r.N
		case runstore.JobCancelled:
			c.Cancelled += r.N
		}
	}
	return c, nil
}
