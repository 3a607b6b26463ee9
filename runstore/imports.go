package runstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Importer stores runs made elsewhere, such as the predecessor's run
// folders (examples/dbtool import-dynoai3): each run arrives whole, in its
// final status, with its files, its apply records and its history, and is
// written in one transaction, so a crash or a refused field leaves nothing
// of it behind.
//
// An import is idempotent on its key within a tenant: importing a key the
// tenant already has adds nothing and returns the run stored the first
// time. Two importers racing on one key store one run.
//
// Memory and the SQL stores implement it (the SQL stores in the run_imports
// table of migration 0005, which also admits SourceImport).
type Importer interface {
	// Import stores r unless r.Run.Tenant already has a run imported under
	// r.Key. It returns the stored run and whether this call created it.
	// File contents must already be durable in the FileStore (an orphan
	// sweep removes contents whose import never committed).
	Import(ctx context.Context, r ImportRun) (run Run, created bool, err error)
	// ImportedRun returns the run tenant imported under key, or
	// ErrNotFound (a dry run uses it to tell what is imported already).
	ImportedRun(ctx context.Context, tenant, key string) (Run, error)
}

// ImportRun is one run to import.
type ImportRun struct {
	// Key identifies the imported thing, e.g. the other tool's run id and
	// the SHA-256 of its input: 1 to 255 bytes of text without control
	// characters. See Importer for its scope.
	Key string
	// Run carries the tenant, source (usually SourceImport), filename,
	// input size, vehicle and settings.
	Run NewRun
	// Status is the run's final status: completed, failed or cancelled.
	Status Status
	// Message is the completed run's message; Error is required for, and
	// only allowed with, a failed run.
	Message string
	Error   *RunError
	Results json.RawMessage // any JSON document, or nil
	Stats   Stats
	// CreatedAt and CompletedAt are when the run started and ended where
	// it was made. A zero CreatedAt means now; a zero CompletedAt means
	// CreatedAt. CompletedAt may not precede CreatedAt.
	CreatedAt   time.Time
	CompletedAt time.Time
	// Reason is recorded in the history for the move to Status, e.g.
	// "imported from DynoAI_3 folder 2025-11-10T…"; "" means "imported".
	Reason string
	// Files are attached in order.
	Files []FileMeta
	// Applies are the run's apply records, oldest first; each cylinder's
	// records form a chain in the order given (a rollback follows an
	// apply of the same cylinder).
	Applies []ImportApply
}

// ImportApply is one apply or rollback of an imported run.
type ImportApply struct {
	Cylinder string
	Kind     ApplyKind
	Files    []FileMeta // as NewApply.Files: 3 for an apply, 1 for a rollback
	At       time.Time  // when it was made; zero means the run's CompletedAt
}

// maxImportKey bounds ImportRun.Key.
const maxImportKey = 255

// Validate returns an *InvalidError naming the first invalid field of r.
func (r ImportRun) Validate() error {
	if r.Key == "" {
		return invalid("key", "empty")
	}
	if err := checkText("key", r.Key, maxImportKey, true); err != nil {
		return err
	}
	if err := r.Run.Validate(); err != nil {
		return err
	}
	switch r.Status {
	case StatusCompleted, StatusCancelled:
		if r.Error != nil {
			return invalid("error", "only a failed run has an error (status is %s)", r.Status)
		}
	case StatusFailed:
		if r.Error == nil {
			return invalid("error", "a failed run needs one")
		}
		if err := r.Error.Validate(); err != nil {
			return err
		}
	default:
		return invalid("status", "an imported run is completed, failed or cancelled, not %q", r.Status)
	}
	if err := checkText("message", r.Message, maxMessage, false); err != nil {
		return err
	}
	if err := (Result{Results: r.Results, Stats: r.Stats}).Validate(); err != nil {
		return err
	}
	if err := checkText("reason", r.Reason, maxMessage, false); err != nil {
		return err
	}
	if !r.CreatedAt.IsZero() && !r.CompletedAt.IsZero() && r.CompletedAt.Before(r.CreatedAt) {
		return invalid("completed_at", "%s is before created_at %s", r.CompletedAt.Format(time.RFC3339Nano), r.CreatedAt.Format(time.RFC3339Nano))
	}
	for i, f := range r.Files {
		if err := f.Validate(); err != nil {
			return fmt.Errorf("files[%d]: %w", i, err)
		}
	}
	last := map[string]ApplyKind{}
	for i, a := range r.Applies {
		na := NewApply{Cylinder: a.Cylinder, Kind: a.Kind, Files: a.Files}
		if err := na.Validate(); err != nil {
			return fmt.Errorf("applies[%d]: %w", i, err)
		}
		if a.Kind == ApplyKindRollback && last[a.Cylinder] != ApplyKindApply {
			return fmt.Errorf("applies[%d]: %w", i, invalid("kind", "a rollback of cylinder %s must follow an apply of it", a.Cylinder))
		}
		last[a.Cylinder] = a.Kind
	}
	return nil
}

// ImportedRecord is what every Importer stores for r, imported now under
// id: the run (version 1, progress 1 when completed and 0 otherwise, a
// failed run's stage its error's) and its history (created, then the move
// to r.Status). The files are stamped r's CompletedAt, applies their At;
// see ImportTimes.
func (r ImportRun) ImportedRecord(id string, now time.Time) (Run, []StatusChange) {
	created, completed := r.ImportTimes(now)
	run := r.Run.Build(id, created)
	run.Status = r.Status
	if r.Status == StatusCompleted {
		run.Progress = 1
	}
	run.Message = r.Message
	if r.Error != nil {
		// As Fail records it: the error, and its stage as the run's.
		e := *r.Error
		run.Error = &e
		run.Stage = e.Stage
	}
	run.Results = clone(r.Results)
	run.Stats = copyStats(r.Stats)
	run.UpdatedAt = now
	run.CompletedAt = completed
	reason := r.Reason
	if reason == "" {
		reason = "imported"
	}
	return run, []StatusChange{
		{To: StatusQueued, At: created, Reason: "created"},
		{From: StatusQueued, To: r.Status, At: completed, Reason: reason},
	}
}

// ImportTimes returns r's creation and completion times, UTC with
// microsecond precision, with the defaults of ImportRun applied.
func (r ImportRun) ImportTimes(now time.Time) (created, completed time.Time) {
	created = now
	if !r.CreatedAt.IsZero() {
		created = r.CreatedAt.UTC().Truncate(time.Microsecond)
	}
	completed = created
	if !r.CompletedAt.IsZero() {
		completed = r.CompletedAt.UTC().Truncate(time.Microsecond)
	}
	return created, completed
}

// ApplyTime returns when a was made, UTC with microsecond precision, for a
// run completed at completed (At's default).
func (a ImportApply) ApplyTime(completed time.Time) time.Time {
	if a.At.IsZero() {
		return completed
	}
	return a.At.UTC().Truncate(time.Microsecond)
}

// importKey is the memory store's index key of an import.
type importKey struct{ tenant, key string }

var _ Importer = (*Memory)(nil)

// Import implements Importer.
func (m *Memory) Import(ctx context.Context, r ImportRun) (Run, bool, error) {
	if err := r.Validate(); err != nil {
		return Run{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx); err != nil {
		return Run{}, false, err
	}
	k := importKey{r.Run.Tenant, r.Key}
	if id, ok := m.imports[k]; ok {
		if mr, ok := m.runs[id]; ok {
			return copyRun(mr.run), false, nil
		}
		delete(m.imports, k) // the run was deleted since: import it again
	}
	now := stamp(m.clock)
	created, completed := r.ImportTimes(now)
	id, err := m.ids.Next(created)
	if err != nil {
		return Run{}, false, err
	}
	run, history := r.ImportedRecord(id, now)
	mr := &memRun{run: run, history: history}
	for _, fm := range r.Files {
		m.attachLocked(mr, fm, completed)
	}
	parents := map[string]int64{}
	for _, a := range r.Applies {
		at := a.ApplyTime(completed)
		m.nextApply++
		rec := Apply{ID: m.nextApply, RunID: id, Cylinder: a.Cylinder, Kind: a.Kind, Parent: parents[a.Cylinder], CreatedAt: at}
		for _, fm := range a.Files {
			rec.Files = append(rec.Files, m.attachLocked(mr, fm, at))
		}
		parents[a.Cylinder] = rec.ID
		mr.applies = append(mr.applies, rec)
	}
	m.runs[id] = mr
	if m.imports == nil {
		m.imports = map[importKey]string{}
	}
	m.imports[k] = id
	return copyRun(run), true, nil
}

// ImportedRun implements Importer.
func (m *Memory) ImportedRun(ctx context.Context, tenant, key string) (Run, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.check(ctx); err != nil {
		return Run{}, err
	}
	if id, ok := m.imports[importKey{tenant, key}]; ok {
		if mr, ok := m.runs[id]; ok {
			return copyRun(mr.run), nil
		}
	}
	return Run{}, notImported(tenant, key)
}

// notImported is the ErrNotFound of ImportedRun.
func notImported(tenant, key string) error {
	return fmt.Errorf("%w: no run imported under key %q for tenant %q", ErrNotFound, truncate(key, 80), tenant)
}
