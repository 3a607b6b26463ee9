package runstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RunStore stores runs, their status history and their files' metadata.
// Every implementation (SQLite, PostgreSQL, memory) behaves the same; the
// runstoretest package checks it. Methods are safe for concurrent use.
type RunStore interface {
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
	// Recover marks every run still in status processing as failed with e,
	// returning their ids. A server calls it at startup: no worker of a
	// previous process is still running them.
	Recover(ctx context.Context, e RunError) ([]string, error)
	// Ping checks that the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}

// Options configure a store. The zero value is ready to use.
type Options struct {
	// Now is the clock; nil means time.Now. Times are stored in UTC with
	// microsecond precision whatever the clock's location.
	Now func() time.Time
	// Logger receives debug and info messages; nil discards them.
	Logger *slog.Logger
	// SkipMigrate opens a SQL store without applying pending migrations
	// (for tools that inspect or migrate explicitly).
	SkipMigrate bool
	// BusyTimeout is how long a SQLite writer waits for another process's
	// lock; zero means 10 s.
	BusyTimeout time.Duration
	// SQLiteSynchronous is SQLite's synchronous pragma: "" or "FULL" (a
	// committed run survives a power loss), or "NORMAL" (survives a process
	// crash, faster).
	SQLiteSynchronous string
	// MaxOpenConns bounds the PostgreSQL pool (and SQLite's reader pool);
	// zero means 15 (4 for SQLite readers).
	MaxOpenConns int
}

func (o Options) clock() func() time.Time {
	if o.Now != nil {
		return o.Now
	}
	return time.Now
}

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// toMicros converts a time to UTC microseconds since the epoch.
func toMicros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// now returns the clock's time in UTC, truncated to microseconds.
func stamp(clock func() time.Time) time.Time {
	return clock().UTC().Truncate(time.Microsecond)
}

// idGen generates run ids: 48 bits of milliseconds, then 80 random bits.
// Within one generator ids are strictly increasing: an id made in the same
// millisecond as the previous one increments its random part.
type idGen struct {
	mu   sync.Mutex
	ms   uint64
	last [10]byte
}

func (g *idGen) next(t time.Time) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ms := uint64(t.UnixMilli())
	if ms < 0x1_0000_0000_0000 && ms > g.ms {
		g.ms = ms
		if _, err := rand.Read(g.last[:]); err != nil {
			return "", fmt.Errorf("runstore: generating id: %w", err)
		}
		g.last[0] &= 0x7f // leave room to increment
	} else {
		// Same millisecond, or the clock went back: stay monotonic.
		for i := len(g.last) - 1; i >= 0; i-- {
			g.last[i]++
			if g.last[i] != 0 {
				break
			}
		}
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], g.ms<<16)
	copy(b[6:], g.last[:])
	return hex.EncodeToString(b[:]), nil
}

// cursor is the keyset position after which List continues. For
// SortPeakHP it includes the peak power of the last run.
type cursor struct {
	sort Sort
	peak float64
	us   int64
	id   string
}

func (c cursor) String() string {
	s := strconv.FormatInt(c.us, 10) + "." + c.id
	if c.sort == SortPeakHP {
		s = "p" + strconv.FormatFloat(c.peak, 'g', -1, 64) + "." + s
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

func parseCursor(s string) (cursor, bool, error) {
	if s == "" {
		return cursor{}, false, nil
	}
	bad := invalid("cursor", "not a cursor returned by List")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, false, bad
	}
	var c cursor
	rest := string(b)
	if strings.HasPrefix(rest, "p") {
		i := strings.LastIndex(rest, ".")
		j := strings.LastIndex(rest[:max(i, 0)], ".")
		if j < 1 {
			return cursor{}, false, bad
		}
		c.sort = SortPeakHP
		if c.peak, err = strconv.ParseFloat(rest[1:j], 64); err != nil || math.IsNaN(c.peak) || math.IsInf(c.peak, 0) {
			return cursor{}, false, bad
		}
		rest = rest[j+1:]
	}
	us, id, ok := strings.Cut(rest, ".")
	n, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil || !ValidID(id) {
		return cursor{}, false, bad
	}
	c.us, c.id = n, id
	return c, true, nil
}

func (q query) next(last Run) string {
	c := cursor{sort: q.Sort, us: toMicros(last.CreatedAt), id: last.ID}
	if q.Sort == SortPeakHP && last.Stats.PeakHP != nil {
		c.peak = *last.Stats.PeakHP
	}
	return c.String()
}

// query is a validated Filter.
type query struct {
	Filter
	after    cursor
	hasAfter bool
	text     string // lower-cased
	limit    int
}

func (f Filter) compile() (query, error) {
	q := query{Filter: f, limit: f.Limit}
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
	case q.limit == 0:
		q.limit = DefaultLimit
	case q.limit < 0 || q.limit > MaxLimit:
		return q, invalid("filter.limit", "%d is outside 1..%d", f.Limit, MaxLimit)
	}
	switch f.Sort {
	case SortNewest, SortPeakHP:
	default:
		return q, invalid("filter.sort", "unknown sort %q", f.Sort)
	}
	var err error
	if q.after, q.hasAfter, err = parseCursor(f.Cursor); err != nil {
		return q, err
	}
	if q.hasAfter && q.after.sort != f.Sort {
		return q, invalid("cursor", "the cursor belongs to a list with another sort order")
	}
	q.text = strings.ToLower(f.Text)
	return q, nil
}

// searchText is what Filter.Text matches: the lower-cased filename and
// vehicle, which cannot contain a newline.
func searchText(filename, vehicle string) string {
	return strings.ToLower(filename) + "\n" + strings.ToLower(vehicle)
}

// newRun builds the stored form of n.
func newRun(id string, n NewRun, now time.Time) Run {
	return Run{
		ID: id, Version: 1, Status: StatusQueued, Source: n.Source,
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

// mutation changes a run in memory; every implementation applies the same
// ones, so the rules live here once.
type mutation func(r *Run, now time.Time) (*StatusChange, error)

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

func (u Update) mutation() mutation {
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
		if r.Status == StatusCompleted {
			r.Progress = 1
		}
		return ch, nil
	}
}

func completeMutation(version int64, res Result) mutation {
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

func failMutation(version int64, e RunError) mutation {
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

// apply runs m on a copy of r, bumping the version and update time.
func apply(r Run, m mutation, now time.Time) (Run, *StatusChange, error) {
	ch, err := m(&r, now)
	if err != nil {
		return Run{}, nil, err
	}
	r.Version++
	r.UpdatedAt = now
	return r, ch, nil
}

func checkID(field, id string) error {
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

var errClosed = errors.New("runstore: store is closed")

func checkVersionArg(v int64) error {
	if v < 1 {
		return invalid("version", "must be the run's current version (>= 1), got %d", v)
	}
	return nil
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }
