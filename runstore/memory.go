package runstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Memory is an in-memory RunStore with the same behaviour as the SQL
// stores, for tests. The zero value is not usable; call NewMemory.
type Memory struct {
	clock func() time.Time
	ids   IDGenerator

	mu        sync.RWMutex
	runs      map[string]*memRun
	nextFile  int64
	nextApply int64
	nextJob   int64
	closed    bool
	down      error

	leases  memLeases            // named leases (memory_leases.go)
	imports map[importKey]string // imported runs by tenant and key (imports.go)
}

type memRun struct {
	run     Run
	history []StatusChange
	files   []File
	applies []Apply
	job     *Job // nil for runs made with Create
}

var _ RunStore = (*Memory)(nil)

// NewMemory returns an empty in-memory store. Only Options.Now is used.
func NewMemory(opts Options) *Memory {
	return &Memory{clock: opts.clock(), runs: make(map[string]*memRun)}
}

func (m *Memory) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.closed {
		return errClosed
	}
	if m.down != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, m.down)
	}
	return nil
}

// SetUnavailable makes every call fail with err (wrapped in ErrUnavailable)
// until it is called with nil, standing in for a database that refuses
// writes or whose file was deleted.
func (m *Memory) SetUnavailable(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down = err
}

// Create implements RunStore.
func (m *Memory) Create(ctx context.Context, n NewRun) (Run, error) {
	if err := n.Validate(); err != nil {
		return Run{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx); err != nil {
		return Run{}, err
	}
	now := stamp(m.clock)
	id, err := m.ids.Next(now)
	if err != nil {
		return Run{}, err
	}
	r := n.Build(id, now)
	m.runs[id] = &memRun{run: r, history: []StatusChange{{To: StatusQueued, At: now, Reason: "created"}}}
	return copyRun(r), nil
}

func copyRun(r Run) Run {
	r.Settings = clone(r.Settings)
	r.Results = clone(r.Results)
	if r.Error != nil {
		e := *r.Error
		r.Error = &e
	}
	r.Stats = copyStats(r.Stats)
	return r
}

func copyStats(s Stats) Stats {
	cp := func(p *float64) *float64 {
		if p == nil {
			return nil
		}
		v := *p
		return &v
	}
	out := Stats{PeakHP: cp(s.PeakHP), PeakTorque: cp(s.PeakTorque), AFRMean: cp(s.AFRMean),
		AFRStd: cp(s.AFRStd), MaxCorrectionPct: cp(s.MaxCorrectionPct)}
	if s.CorrectedCells != nil {
		v := *s.CorrectedCells
		out.CorrectedCells = &v
	}
	return out
}

// Get implements RunStore.
func (m *Memory) Get(ctx context.Context, id string) (Run, error) {
	if err := CheckID("id", id); err != nil {
		return Run{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	mr, err := m.lookup(ctx, id)
	if err != nil {
		return Run{}, err
	}
	return copyRun(mr.run), nil
}

// lookup returns the run id names; the caller holds m.mu.
func (m *Memory) lookup(ctx context.Context, id string) (*memRun, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	mr, ok := m.runs[id]
	if !ok {
		return nil, notFound("run", id)
	}
	return mr, nil
}

func (q Query) match(r *Run) bool {
	if len(q.Tenants) > 0 && !slices.Contains(q.Tenants, r.Tenant) {
		return false
	}
	if len(q.Statuses) > 0 && !slices.Contains(q.Statuses, r.Status) {
		return false
	}
	if len(q.Sources) > 0 && !slices.Contains(q.Sources, r.Source) {
		return false
	}
	us := toMicros(r.CreatedAt)
	if !q.CreatedAfter.IsZero() && us < toMicros(q.CreatedAfter) {
		return false
	}
	if !q.CreatedBefore.IsZero() && us >= toMicros(q.CreatedBefore) {
		return false
	}
	if q.TextLower != "" && !strings.Contains(SearchText(r.Filename, r.Vehicle), q.TextLower) {
		return false
	}
	if q.JetstreamID != "" && r.JetstreamID != q.JetstreamID {
		return false
	}
	if q.MinPeakHP != nil && (r.Stats.PeakHP == nil || *r.Stats.PeakHP < *q.MinPeakHP) {
		return false
	}
	if q.Sort == SortPeakHP && r.Stats.PeakHP == nil {
		return false
	}
	if q.HasAfter && q.compare(r, q.After) >= 0 {
		return false
	}
	return true
}

// compare orders r against a keyset position: negative when r comes
// after it in the list (the list runs in descending key order).
func (q Query) compare(r *Run, c Cursor) int {
	if q.Sort == SortPeakHP {
		if p := *r.Stats.PeakHP; p != c.Peak {
			return cmp.Compare(p, c.Peak)
		}
	}
	if us := toMicros(r.CreatedAt); us != c.Micros {
		return cmp.Compare(us, c.Micros)
	}
	return strings.Compare(r.ID, c.ID)
}

// List implements RunStore.
func (m *Memory) List(ctx context.Context, f Filter) (Page, error) {
	q, err := f.Compile()
	if err != nil {
		return Page{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.check(ctx); err != nil {
		return Page{}, err
	}
	var runs []Run
	for _, mr := range m.runs {
		if q.match(&mr.run) {
			runs = append(runs, mr.run)
		}
	}
	slices.SortFunc(runs, func(a, b Run) int {
		peak := 0.0
		if b.Stats.PeakHP != nil {
			peak = *b.Stats.PeakHP
		}
		return -q.compare(&a, Cursor{Peak: peak, Micros: toMicros(b.CreatedAt), ID: b.ID})
	})
	var p Page
	if len(runs) > q.N {
		runs = runs[:q.N]
		p.Next = q.Next(runs[len(runs)-1])
	}
	for _, r := range runs {
		p.Runs = append(p.Runs, copyRun(r))
	}
	return p, nil
}

func (m *Memory) mutate(ctx context.Context, id string, mut Mutation) (Run, error) {
	if err := CheckID("id", id); err != nil {
		return Run{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mr, err := m.lookup(ctx, id)
	if err != nil {
		return Run{}, err
	}
	r, ch, err := ApplyMutation(copyRun(mr.run), mut, stamp(m.clock))
	if err != nil {
		return Run{}, err
	}
	mr.run = r
	if ch != nil {
		mr.history = append(mr.history, *ch)
	}
	return copyRun(r), nil
}

// Update implements RunStore.
func (m *Memory) Update(ctx context.Context, id string, u Update) (Run, error) {
	if err := u.Validate(); err != nil {
		return Run{}, err
	}
	return m.mutate(ctx, id, u.Mutation())
}

// Complete implements RunStore.
func (m *Memory) Complete(ctx context.Context, id string, version int64, r Result) (Run, error) {
	if err := CheckVersion(version); err != nil {
		return Run{}, err
	}
	if err := r.Validate(); err != nil {
		return Run{}, err
	}
	return m.mutate(ctx, id, CompleteMutation(version, r))
}

// Fail implements RunStore.
func (m *Memory) Fail(ctx context.Context, id string, version int64, e RunError) (Run, error) {
	if err := CheckVersion(version); err != nil {
		return Run{}, err
	}
	if err := e.Validate(); err != nil {
		return Run{}, err
	}
	return m.mutate(ctx, id, FailMutation(version, e))
}

// Delete implements RunStore.
func (m *Memory) Delete(ctx context.Context, id string) error {
	if err := CheckID("id", id); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.lookup(ctx, id); err != nil {
		return err
	}
	delete(m.runs, id)
	return nil
}

// History implements RunStore.
func (m *Memory) History(ctx context.Context, id string) ([]StatusChange, error) {
	if err := CheckID("id", id); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	mr, err := m.lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	return slices.Clone(mr.history), nil
}

// AddFile implements RunStore.
func (m *Memory) AddFile(ctx context.Context, runID string, meta FileMeta) (File, error) {
	if err := CheckID("run_id", runID); err != nil {
		return File{}, err
	}
	if err := meta.Validate(); err != nil {
		return File{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mr, err := m.lookup(ctx, runID)
	if err != nil {
		return File{}, err
	}
	return m.attachLocked(mr, meta, stamp(m.clock)), nil
}

// attachLocked records meta as mr's next file, made at; the caller holds
// m.mu.
func (m *Memory) attachLocked(mr *memRun, meta FileMeta, at time.Time) File {
	m.nextFile++
	f := File{ID: m.nextFile, RunID: mr.run.ID, FileMeta: meta, CreatedAt: at}
	mr.files = append(mr.files, f)
	return f
}

// Files implements RunStore.
func (m *Memory) Files(ctx context.Context, runID string) ([]File, error) {
	if err := CheckID("run_id", runID); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	mr, err := m.lookup(ctx, runID)
	if err != nil {
		return nil, err
	}
	return append([]File{}, mr.files...), nil
}

// File implements RunStore.
func (m *Memory) File(ctx context.Context, runID string, fileID int64) (File, error) {
	files, err := m.Files(ctx, runID)
	if err != nil {
		return File{}, err
	}
	for _, f := range files {
		if f.ID == fileID {
			return f, nil
		}
	}
	return File{}, notFound("file", itoa64(fileID))
}

// Recover implements RunStore.
func (m *Memory) Recover(ctx context.Context, e RunError) ([]string, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	now := stamp(m.clock)
	var ids []string
	for id, mr := range m.runs {
		if mr.run.Status != StatusProcessing || mr.job != nil {
			continue
		}
		r, ch, err := ApplyMutation(copyRun(mr.run), FailMutation(0, e), now)
		if err != nil {
			return ids, err
		}
		mr.run = r
		mr.history = append(mr.history, *ch)
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// RecordApply implements RunStore.
func (m *Memory) RecordApply(ctx context.Context, runID string, a NewApply) (Apply, error) {
	if err := CheckID("run_id", runID); err != nil {
		return Apply{}, err
	}
	if err := a.Validate(); err != nil {
		return Apply{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mr, err := m.lookup(ctx, runID)
	if err != nil {
		return Apply{}, err
	}
	var latest *Apply
	for i := range mr.applies {
		if mr.applies[i].Cylinder == a.Cylinder {
			latest = &mr.applies[i]
		}
	}
	if err := CheckApplyParent(runID, a, latest); err != nil {
		return Apply{}, err
	}
	now := stamp(m.clock)
	m.nextApply++
	rec := Apply{ID: m.nextApply, RunID: runID, Cylinder: a.Cylinder, Kind: a.Kind, Parent: a.Parent, CreatedAt: now}
	for _, fm := range a.Files {
		rec.Files = append(rec.Files, m.attachLocked(mr, fm, now))
	}
	mr.applies = append(mr.applies, rec)
	return copyApply(rec), nil
}

func copyApply(a Apply) Apply {
	a.Files = slices.Clone(a.Files)
	return a
}

// Applies implements RunStore.
func (m *Memory) Applies(ctx context.Context, runID string) ([]Apply, error) {
	if err := CheckID("run_id", runID); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	mr, err := m.lookup(ctx, runID)
	if err != nil {
		return nil, err
	}
	out := make([]Apply, len(mr.applies))
	for i, a := range mr.applies {
		out[i] = copyApply(a)
	}
	return out, nil
}

// Unreferenced implements RunStore.
func (m *Memory) Unreferenced(ctx context.Context, keys []string) ([]string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, mr := range m.runs {
		for _, f := range mr.files {
			used[f.StorageKey] = true
		}
	}
	out := []string{}
	for _, k := range keys {
		if !used[k] {
			out = append(out, k)
		}
	}
	return out, nil
}

// Probe implements RunStore.
func (m *Memory) Probe(ctx context.Context) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.check(ctx)
}

// Ping implements RunStore.
func (m *Memory) Ping(ctx context.Context) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.check(ctx)
}

// Close implements RunStore. Later calls fail.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
