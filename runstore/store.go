package runstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RunStore stores runs, their status history, their files' metadata and
// their analysis jobs (JobQueue). Every implementation (SQLite, PostgreSQL,
// memory) behaves the same; the runstoretest package checks it. Methods are
// safe for concurrent use.
type RunStore interface {
	JobQueue
	// Create stores a new run in status queued and returns it with its
	// generated id, version 1 and timestamps.
	Create(ctx context.Context, n NewRun) (Run, error)
	// Get returns the run with the given id, or ErrNotFound.
	Get(ctx context.Context, id string) (Run, error)
	// List returns one page of runs matching f, newest first.
	List(ctx context.Context, f Filter) (Page, error)
	// Update applies u if u.Version is the run's current version (else
	// ErrConflict) and any status change is legal (else ErrConflict).
	Update(ctx context.Context, id string, u Update) (Run, error)
	// Complete moves a processing run to completed, storing its results and
	// statistics, with the same version check as Update.
	Complete(ctx context.Context, id string, version int64, r Result) (Run, error)
	// Fail moves a queued or processing run to failed with a structured
	// error, with the same version check as Update.
	Fail(ctx context.Context, id string, version int64, e RunError) (Run, error)
	// Delete removes a run with its history and file metadata. It does not
	// touch file contents; DeleteRun does both.
	Delete(ctx context.Context, id string) error
	// History returns a run's status changes, oldest first; the first entry
	// is the creation.
	History(ctx context.Context, id string) ([]StatusChange, error)
	// AddFile records a file attached to a run. Attach stores the contents
	// too.
	AddFile(ctx context.Context, runID string, m FileMeta) (File, error)
	// Files returns a run's files in the order they were attached.
	Files(ctx context.Context, runID string) ([]File, error)
	// File returns one file of a run, or ErrNotFound.
	File(ctx context.Context, runID string, fileID int64) (File, error)
	// Recover marks every run still in status processing that has no job
	// as failed with e, returning their ids. Runs with a job are the
	// queue's: an expired lease hands them to another worker (JobQueue).
	// Only a store used by a single process may call it at startup (no
	// worker of a previous process is still running those runs); a server
	// sharing the store with other replicas must not.
	Recover(ctx context.Context, e RunError) ([]string, error)
	// RecordApply records an apply or rollback of a run's cylinder together
	// with its files, in one transaction: after a crash either all of it
	// is stored or none. The contents must already be durable in the file
	// store (see CommitApply). a.Parent must be the cylinder's latest
	// record (else ErrConflict; see NewApply).
	RecordApply(ctx context.Context, runID string, a NewApply) (Apply, error)
	// Applies returns a run's apply records, oldest first.
	Applies(ctx context.Context, runID string) ([]Apply, error)
	// Unreferenced returns those of the storage keys that no file of any
	// run refers to, in the order given.
	Unreferenced(ctx context.Context, keys []string) ([]string, error)
	// Ping checks that the store is reachable.
	Ping(ctx context.Context) error
	// Probe proves the store works now: a durable write and a read back.
	// A SQLite store also checks that its database file is still the one
	// it opened (not deleted or replaced). Failures match ErrUnavailable.
	Probe(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}

// Options configure NewMemory. The zero value is ready to use.
type Options struct {
	// Now is the clock; nil means time.Now. Times are kept in UTC with
	// microsecond precision whatever the clock's location.
	Now func() time.Time
}

func (o Options) clock() func() time.Time {
	if o.Now != nil {
		return o.Now
	}
	return time.Now
}

// toMicros converts a time to UTC microseconds since the epoch.
func toMicros(t time.Time) int64 { return t.UnixMicro() }

// now returns the clock's time in UTC, truncated to microseconds.
func stamp(clock func() time.Time) time.Time {
	return clock().UTC().Truncate(time.Microsecond)
}

// IDGenerator generates run ids: 48 bits of milliseconds, then 80 bits
// drawn from crypto/rand. Within one generator ids are strictly increasing:
// an id made in the same millisecond as the previous one (or after the clock
// went back) adds a random step of 2^32 to 2^63 to the previous id's random
// part, so ids stay sortable by time and a neighbour's id cannot be guessed
// from one's own (a step has 63 bits of entropy). The zero value is ready to
// use; implementations of RunStore share it so every store makes ids of the
// same form.
type IDGenerator struct {
	mu sync.Mutex
	ms uint64 // the millisecond of the last id
	hi uint64 // the top 16 of the 80 random bits
	lo uint64 // the low 64 of the 80 random bits
}

// maxMillis is the first millisecond a 48-bit timestamp cannot hold.
const maxMillis = 1 << 48

// Next returns a new id for a run created at t.
func (g *IDGenerator) Next(t time.Time) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var r [16]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("runstore: generating id: %w", err)
	}
	ms := uint64(max(t.UnixMilli(), 0))
	fresh := ms < maxMillis && ms > g.ms
	if !fresh {
		// Same millisecond, or the clock went back: stay monotonic with a
		// random step.
		step := binary.BigEndian.Uint64(r[:8])>>1 + 1<<32
		lo, carry := bits.Add64(g.lo, step, 0)
		if hi := g.hi + carry; hi < 1<<16 {
			g.lo, g.hi = lo, hi
		} else {
			// The random part would overflow (some 2^16 ids in one
			// millisecond): borrow the next millisecond.
			ms, fresh = g.ms+1, true
		}
	}
	if fresh {
		if ms >= maxMillis {
			return "", fmt.Errorf("runstore: generating id: time %v is beyond the year 10889", t)
		}
		g.ms = ms
		g.hi = uint64(binary.BigEndian.Uint16(r[8:10])) & 0x7fff // leave room to step
		g.lo = binary.BigEndian.Uint64(r[:8])
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], g.ms<<16|g.hi)
	binary.BigEndian.PutUint64(b[8:], g.lo)
	return hex.EncodeToString(b[:]), nil
}

// Cursor is the keyset position after which List continues: the creation
// time in microseconds and the id of the last run of a page and, for
// SortPeakHP, its peak power.
type Cursor struct {
	Sort   Sort
	Peak   float64
	Micros int64
	ID     string
}

// String encodes c as the opaque Page.Next.
func (c Cursor) String() string {
	s := strconv.FormatInt(c.Micros, 10) + "." + c.ID
	if c.Sort == SortPeakHP {
		s = "p" + strconv.FormatFloat(c.Peak, 'g', -1, 64) + "." + s
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

func parseCursor(s string) (Cursor, bool, error) {
	if s == "" {
		return Cursor{}, false, nil
	}
	bad := invalid("cursor", "not a cursor returned by List")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, false, bad
	}
	var c Cursor
	rest := string(b)
	if strings.HasPrefix(rest, "p") {
		i := strings.LastIndex(rest, ".")
		j := strings.LastIndex(rest[:max(i, 0)], ".")
		if j < 1 {
			return Cursor{}, false, bad
		}
		c.Sort = SortPeakHP
		if c.Peak, err = strconv.ParseFloat(rest[1:j], 64); err != nil || math.IsNaN(c.Peak) || math.IsInf(c.Peak, 0) {
			return Cursor{}, false, bad
		}
		rest = rest[j+1:]
	}
	us, id, ok := strings.Cut(rest, ".")
	n, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil || !ValidID(id) {
		return Cursor{}, false, bad
	}
	c.Micros, c.ID = n, id
	return c, true, nil
}

// Next returns the Page.Next that continues a list after last.
func (q Query) Next(last Run) string {
	c := Cursor{Sort: q.Sort, Micros: toMicros(last.CreatedAt), ID: last.ID}
	if q.Sort == SortPeakHP && last.Stats.PeakHP != nil {
		c.Peak = *last.Stats.PeakHP
	}
	return c.String()
}

// Query is a validated Filter, as implementations of List use it.
type Query struct {
	Filter
	After     Cursor // where the page starts, when HasAfter
	HasAfter  bool
	TextLower string // Filter.Text lower-cased, matched against SearchText
	N         int    // the page size: Filter.Limit or DefaultLimit
}

// Compile validates f: every field, the limit and the cursor.
func (f Filter) Compile() (Query, error) {
	q := Query{Filter: f, N: f.Limit}
	for _, t := range f.Tenants {
		if t != "" && !ValidTenant(t) {
			return q, invalid("filter.tenants", "%q is not a tenant name", truncate(t, 80))
		}
	}
	for _, s := range f.Statuses {
		if !s.Valid() {
			return q, invalid("filter.statuses", "unknown status %q", s)
		}
	}
	for _, s := range f.Sources {
		if !s.Valid() {
			return q, invalid("filter.sources", "unknown source %q", s)
		}
	}
	if err := checkText("filter.text", f.Text, maxShortText, true); err != nil {
		return q, err
	}
	if err := checkFloat("filter.min_peak_hp", f.MinPeakHP); err != nil {
		return q, err
	}
	switch {
	case q.N == 0:
		q.N = DefaultLimit
	case q.N < 0 || q.N > MaxLimit:
		return q, invalid("filter.limit", "%d is outside 1..%d", f.Limit, MaxLimit)
	}
	switch f.Sort {
	case SortNewest, SortPeakHP:
	default:
		return q, invalid("filter.sort", "unknown sort %q", f.Sort)
	}
	var err error
	if q.After, q.HasAfter, err = parseCursor(f.Cursor); err != nil {
		return q, err
	}
	if q.HasAfter && q.After.Sort != f.Sort {
		return q, invalid("cursor", "the cursor belongs to a list with another sort order")
	}
	q.TextLower = strings.ToLower(f.Text)
	return q, nil
}

// SearchText is what Filter.Text matches: the lower-cased filename and
// vehicle, which cannot contain a newline. SQL stores keep it in a column.
func SearchText(filename, vehicle string) string {
	return strings.ToLower(filename) + "\n" + strings.ToLower(vehicle)
}

// Build returns the run Create stores for n: id, version 1, status queued,
// created and updated at now.
func (n NewRun) Build(id string, now time.Time) Run {
	return Run{
		ID: id, Tenant: n.Tenant, Version: 1, Status: StatusQueued, Source: n.Source,
		Filename: n.Filename, InputSize: n.InputSize, Vehicle: n.Vehicle, JetstreamID: n.JetstreamID,
		Settings: clone(n.Settings), CreatedAt: now, UpdatedAt: now,
	}
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// Mutation changes a run in memory and returns the status change it made,
// if any. Every implementation applies the same mutations (through
// ApplyMutation), so the rules live here once.
type Mutation func(r *Run, now time.Time) (*StatusChange, error)

func transition(r *Run, to Status, reason string, now time.Time) (*StatusChange, error) {
	if to == r.Status {
		return nil, nil
	}
	if !CanTransition(r.Status, to) {
		return nil, conflict("run %s cannot go from %s to %s", r.ID, r.Status, to)
	}
	ch := &StatusChange{From: r.Status, To: to, At: now, Reason: reason}
	r.Status = to
	if to.Terminal() {
		r.CompletedAt = now
	}
	return ch, nil
}

func checkVersion(r *Run, version int64) error {
	if version != r.Version {
		return conflict("run %s is at version %d, update was for version %d", r.ID, r.Version, version)
	}
	return nil
}

// Mutation returns the change u makes: the version check, the status
// transition, stage, progress, message and settings.
func (u Update) Mutation() Mutation {
	return func(r *Run, now time.Time) (*StatusChange, error) {
		if err := checkVersion(r, u.Version); err != nil {
			return nil, err
		}
		if r.Status.Terminal() {
			return nil, conflict("run %s is %s and can no longer change", r.ID, r.Status)
		}
		var ch *StatusChange
		if u.Status != "" {
			var err error
			if ch, err = transition(r, u.Status, u.Reason, now); err != nil {
				return nil, err
			}
		}
		if u.Stage != nil {
			r.Stage = *u.Stage
		}
		if u.Progress != nil {
			r.Progress = *u.Progress
		}
		if u.Message != nil {
			r.Message = *u.Message
		}
		if u.Settings != nil {
			r.Settings = clone(u.Settings)
		}
		if r.Status == StatusCompleted {
			r.Progress = 1
		}
		return ch, nil
	}
}

// CompleteMutation is the change Complete makes.
func CompleteMutation(version int64, res Result) Mutation {
	return func(r *Run, now time.Time) (*StatusChange, error) {
		if err := checkVersion(r, version); err != nil {
			return nil, err
		}
		if r.Status != StatusProcessing {
			return nil, conflict("run %s is %s; only a processing run can complete", r.ID, r.Status)
		}
		ch, err := transition(r, StatusCompleted, "completed", now)
		if err != nil {
			return nil, err
		}
		r.Results = clone(res.Results)
		r.Stats = res.Stats
		r.Progress = 1
		if res.Message != "" {
			r.Message = res.Message
		}
		return ch, nil
	}
}

// FailMutation is the change Fail makes; version 0 skips the version check
// (Recover).
func FailMutation(version int64, e RunError) Mutation {
	return func(r *Run, now time.Time) (*StatusChange, error) {
		if version != 0 {
			if err := checkVersion(r, version); err != nil {
				return nil, err
			}
		}
		reason := e.Message
		if e.Code != "" {
			reason = e.Code + ": " + e.Message
		}
		ch, err := transition(r, StatusFailed, reason, now)
		if err != nil {
			return nil, err
		}
		if ch == nil {
			return nil, conflict("run %s is already failed", r.ID)
		}
		ee := e
		r.Error = &ee
		if e.Stage != "" {
			r.Stage = e.Stage
		}
		return ch, nil
	}
}

// ApplyMutation runs m on a copy of r, bumping the version and update time.
// It returns the new run and the status change to record in the history.
func ApplyMutation(r Run, m Mutation, now time.Time) (Run, *StatusChange, error) {
	ch, err := m(&r, now)
	if err != nil {
		return Run{}, nil, err
	}
	r.Version++
	r.UpdatedAt = now
	return r, ch, nil
}

// CheckID returns an *InvalidError naming field unless id has the form of a
// run id.
func CheckID(field, id string) error {
	if !ValidID(id) {
		return invalid(field, "%q is not a run id", truncate(id, 80))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

var errClosed = fmt.Errorf("%w: store is closed", ErrUnavailable)

// CheckVersion returns an *InvalidError unless v can be a run's version.
func CheckVersion(v int64) error {
	if v < 1 {
		return invalid("version", "must be the run's current version (>= 1), got %d", v)
	}
	return nil
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }
