package jetstream

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// RunStatus is where a run is in the pipeline.
type RunStatus string

// The run statuses, in pipeline order, then the terminal ones.
const (
	StatusQueued      RunStatus = "queued"      // recorded, waiting to be processed
	StatusDownloading RunStatus = "downloading" // fetching metadata and raw data
	StatusConverting  RunStatus = "converting"  // reading the raw CSV header into dyno samples
	StatusAnalyzing   RunStatus = "analyzing"   // the Processor is consuming the samples
	StatusDone        RunStatus = "done"        // processed; Outcome is set
	StatusFailed      RunStatus = "failed"      // given up; Error says where and why
	StatusSkipped     RunStatus = "skipped"     // Jetstream already had it marked processed when first seen
)

// Terminal reports whether s is final: done, failed or skipped.
func (s RunStatus) Terminal() bool {
	return s == StatusDone || s == StatusFailed || s == StatusSkipped
}

// RunError says why a run failed or was last retried.
type RunError struct {
	Stage   RunStatus `json:"stage"`   // the status the run was in
	Message string    `json:"message"` // the error text
	Retry   bool      `json:"retry"`   // whether it was (or would have been) retried
}

// Outcome is what processing a run produced.
type Outcome struct {
	// Rows is the number of samples the converter yielded (set by the Poller).
	Rows int `json:"rows"`
	// Summary holds the processor's figures, for example "peak_hp" or
	// "avg_correction".
	Summary map[string]float64 `json:"summary,omitempty"`
	// Files names any outputs the processor wrote.
	Files []string `json:"files,omitempty"`
}

// RunState is the poller's durable record of one run.
type RunState struct {
	Run         Run       `json:"run"`                   // the list item as first seen
	Status      RunStatus `json:"status"`                // where it is
	Attempts    int       `json:"attempts"`              // processing attempts started
	NextAttempt time.Time `json:"next_attempt,omitzero"` // earliest retry after a retryable failure
	Error       *RunError `json:"error,omitempty"`       // the last failure
	Outcome     *Outcome  `json:"outcome,omitempty"`     // set when done
	Marked      bool      `json:"marked"`                // Jetstream acknowledged MarkProcessed
	CreatedAt   time.Time `json:"created_at"`            // when the poller first recorded it
	UpdatedAt   time.Time `json:"updated_at"`            // last change
	Duplicates  int       `json:"duplicates,omitempty"`  // times it was listed again after being recorded
}

// StateStore persists a Poller's cursor and per-run records. The Poller
// writes a run before it advances the cursor past it, so a store that
// survives a restart makes the poller resume without skipping or repeating a
// run. One Poller at a time may use a store. Implementations must be safe for
// concurrent use.
type StateStore interface {
	// Cursor returns the saved cursor, zero when none was saved.
	Cursor(ctx context.Context) (time.Time, error)
	// SetCursor saves the cursor.
	SetCursor(ctx context.Context, t time.Time) error
	// RunState returns the record of run id and whether it exists.
	RunState(ctx context.Context, id string) (RunState, bool, error)
	// PutRunState creates or replaces the record of s.Run.ID.
	PutRunState(ctx context.Context, s RunState) error
	// RunStates returns every record whose status is among statuses (all
	// records when none are given), oldest first.
	RunStates(ctx context.Context, statuses ...RunStatus) ([]RunState, error)
}

// MemoryStore is a StateStore in memory: for tests, for a poller whose
// process lives as long as its data, and as the reference implementation.
// The zero value is ready to use.
type MemoryStore struct {
	mu     sync.Mutex
	cursor time.Time
	runs   map[string]RunState
	writes int
}

var _ StateStore = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

// Cursor implements StateStore.
func (m *MemoryStore) Cursor(ctx context.Context) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cursor, nil
}

// SetCursor implements StateStore.
func (m *MemoryStore) SetCursor(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cursor = t
	m.writes++
	return nil
}

// RunState implements StateStore.
func (m *MemoryStore) RunState(ctx context.Context, id string) (RunState, bool, error) {
	if err := ctx.Err(); err != nil {
		return RunState{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.runs[id]
	return cloneState(s), ok, nil
}

// PutRunState implements StateStore.
func (m *MemoryStore) PutRunState(ctx context.Context, s RunState) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.runs == nil {
		m.runs = make(map[string]RunState)
	}
	m.runs[s.Run.ID] = cloneState(s)
	m.writes++
	return nil
}

// RunStates implements StateStore.
func (m *MemoryStore) RunStates(ctx context.Context, statuses ...RunStatus) ([]RunState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []RunState
	for _, s := range m.runs {
		if len(statuses) == 0 || slices.Contains(statuses, s.Status) {
			out = append(out, cloneState(s))
		}
	}
	slices.SortFunc(out, func(a, b RunState) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		if c := a.Run.Timestamp.Compare(b.Run.Timestamp); c != 0 {
			return c
		}
		return compareStrings(a.Run.ID, b.Run.ID)
	})
	return out, nil
}

// Writes returns how many writes the store has taken, for tests and benchmarks.
func (m *MemoryStore) Writes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.writes
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cloneState(s RunState) RunState {
	if s.Error != nil {
		e := *s.Error
		s.Error = &e
	}
	if s.Outcome != nil {
		o := *s.Outcome
		o.Summary = maps.Clone(o.Summary)
		o.Files = slices.Clone(o.Files)
		s.Outcome = &o
	}
	return s
}
