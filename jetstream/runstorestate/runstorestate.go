// Package runstorestate keeps a jetstream.Poller's state in a
// runstore.RunStore, so that every Jetstream run the poller picks up is a
// run of the store (source "jetstream", JetstreamID set) that httpapi and
// its users see, and the poller resumes from the store after a restart.
//
// Mapping. A recorded run is created queued, with the Jetstream list item
// in its Settings. While it waits or moves through the pipeline it stays
// queued in the store; the poller's status and attempt count are kept in
// its Settings ("poller": {"status": "downloading", "attempts": 2}), its
// Stage shows them to people ("downloading (attempt 2)"), and its Message
// carries the last retryable failure; a run becomes processing only at the
// instant it completes, then completed with the processor's Outcome as
// Results (and Stats.PeakHP / PeakTorque from the Outcome's "peak_hp" and
// "peak_torque" figures), or failed with a RunError naming the stage. A run
// Jetstream had already marked processed is cancelled. Keeping in-flight runs
// queued matters: runstore.RunStore.Recover (which a single-process tool
// may call at start-up) fails processing runs without a job, which would
// turn an interrupted pickup into a failure instead of a retry.
//
// What the store cannot hold: a retry's earliest time (after a restart a
// waiting run is retried at once) and whether Jetstream acknowledged the
// "processed" mark of a completed run (completed runs are final in the
// store; a completed run read back counts as marked, and the Poller marks
// again any done run Jetstream still lists as unprocessed).
//
// The cursor is kept in a small JSON file when Options.CursorPath is set,
// written atomically; otherwise it is the newest Jetstream timestamp among
// the recorded runs, which the poller's overlap makes safe.
package runstorestate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dynoai/dynoai/jetstream"
	"github.com/dynoai/dynoai/runstore"
)

// Options configures a Store.
type Options struct {
	// CursorPath is a file that keeps the cursor; "" derives the cursor
	// from the recorded runs.
	CursorPath string
}

// Store is a jetstream.StateStore over a runstore.RunStore.
type Store struct {
	rs runstore.RunStore
	o  Options

	mu     sync.Mutex
	ids    map[string]string // Jetstream id -> runstore id
	cursor time.Time
	loaded bool
}

var _ jetstream.StateStore = (*Store)(nil)

// New returns a Store over rs.
func New(rs runstore.RunStore, o Options) *Store {
	return &Store{rs: rs, o: o, ids: map[string]string{}}
}

// settings is what a run's Settings hold: the Jetstream list item and, while
// the run is unfinished, where the poller has it.
type settings struct {
	Jetstream jetstream.Run `json:"jetstream"`
	Poller    *pollerState  `json:"poller,omitempty"`
}

// pollerState is the poller's record of an unfinished run.
type pollerState struct {
	Status   jetstream.RunStatus `json:"status"`
	Attempts int                 `json:"attempts"`
}

const (
	markedMessage = "done; marked processed on Jetstream"
	codePrefix    = "jetstream_"
)

// Cursor implements jetstream.StateStore.
func (s *Store) Cursor(ctx context.Context) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loaded {
		return s.cursor, nil
	}
	if s.o.CursorPath != "" {
		b, err := os.ReadFile(s.o.CursorPath)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return time.Time{}, err
		default:
			var c struct {
				Cursor time.Time `json:"cursor"`
			}
			if err := json.Unmarshal(b, &c); err != nil {
				return time.Time{}, fmt.Errorf("runstorestate: cursor file %s: %w", s.o.CursorPath, err)
			}
			s.cursor = c.Cursor
		}
	} else {
		runs, err := s.list(ctx, nil)
		if err != nil {
			return time.Time{}, err
		}
		for _, r := range runs {
			if st, err := toState(r); err == nil && st.Run.Timestamp.After(s.cursor) {
				s.cursor = st.Run.Timestamp
			}
		}
	}
	s.loaded = true
	return s.cursor, nil
}

// SetCursor implements jetstream.StateStore.
func (s *Store) SetCursor(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.o.CursorPath != "" {
		b, _ := json.Marshal(map[string]time.Time{"cursor": t.UTC()})
		tmp, err := os.CreateTemp(filepath.Dir(s.o.CursorPath), ".cursor-*")
		if err != nil {
			return err
		}
		_, werr := tmp.Write(b)
		if werr == nil {
			werr = tmp.Sync()
		}
		if cerr := tmp.Close(); werr == nil {
			werr = cerr
		}
		if werr == nil {
			werr = os.Rename(tmp.Name(), s.o.CursorPath)
		}
		if werr != nil {
			os.Remove(tmp.Name())
			return werr
		}
	}
	s.cursor, s.loaded = t, true
	return nil
}

// lookup finds the store's run for a Jetstream id.
func (s *Store) lookup(ctx context.Context, id string) (runstore.Run, bool, error) {
	s.mu.Lock()
	rid, ok := s.ids[id]
	s.mu.Unlock()
	if ok {
		r, err := s.rs.Get(ctx, rid)
		if err == nil {
			return r, true, nil
		}
		if !errors.Is(err, runstore.ErrNotFound) {
			return runstore.Run{}, false, err
		}
	}
	page, err := s.rs.List(ctx, runstore.Filter{Sources: []runstore.RunSource{runstore.SourceJetstream}, JetstreamID: id, Limit: 2})
	if err != nil {
		return runstore.Run{}, false, err
	}
	if len(page.Runs) == 0 {
		return runstore.Run{}, false, nil
	}
	if len(page.Runs) > 1 {
		return runstore.Run{}, false, fmt.Errorf("runstorestate: Jetstream run %q is recorded twice (%s, %s)", id, page.Runs[0].ID, page.Runs[1].ID)
	}
	s.mu.Lock()
	s.ids[id] = page.Runs[0].ID
	s.mu.Unlock()
	return page.Runs[0], true, nil
}

// RunState implements jetstream.StateStore.
func (s *Store) RunState(ctx context.Context, id string) (jetstream.RunState, bool, error) {
	r, ok, err := s.lookup(ctx, id)
	if err != nil || !ok {
		return jetstream.RunState{}, false, err
	}
	st, err := toState(r)
	return st, err == nil, err
}

// legacyStageRE matches the Stage of runs recorded before the poller's
// state moved to Settings; only those are read from it.
var legacyStageRE = regexp.MustCompile(`^([a-z]+) \(attempt (\d+)\)$`)

// stageText is the Stage people see for a run the poller has in status st.
func stageText(st jetstream.RunStatus, attempts int) string {
	return fmt.Sprintf("%s (attempt %d)", st, attempts)
}

// pollerOf returns where the poller has run r: from its Settings, or, for a
// run recorded before they held it, from its Stage text.
func pollerOf(r runstore.Run, set settings) (pollerState, error) {
	if p := set.Poller; p != nil {
		if p.Attempts < 0 {
			return pollerState{}, fmt.Errorf("runstorestate: run %s: settings.poller.attempts is %d, want >= 0", r.ID, p.Attempts)
		}
		return *p, nil
	}
	m := legacyStageRE.FindStringSubmatch(r.Stage)
	if m == nil {
		return pollerState{}, nil
	}
	n, err := strconv.Atoi(m[2])
	if err != nil {
		return pollerState{}, fmt.Errorf("runstorestate: run %s: attempt count in stage %q: %w", r.ID, r.Stage, err)
	}
	return pollerState{Status: jetstream.RunStatus(m[1]), Attempts: n}, nil
}

// toState reads a store run back as the poller's record.
func toState(r runstore.Run) (jetstream.RunState, error) {
	var set settings
	if err := json.Unmarshal(r.Settings, &set); err != nil || set.Jetstream.ID == "" {
		return jetstream.RunState{}, fmt.Errorf("runstorestate: run %s has no Jetstream settings", r.ID)
	}
	st := jetstream.RunState{Run: set.Jetstream, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	p, err := pollerOf(r, set)
	if err != nil {
		return jetstream.RunState{}, err
	}
	st.Status, st.Attempts = p.Status, p.Attempts
	switch r.Status {
	case runstore.StatusQueued, runstore.StatusProcessing:
		if st.Status == "" || st.Status.Terminal() {
			st.Status = jetstream.StatusQueued
		}
		if r.Message != "" {
			st.Error = &jetstream.RunError{Stage: st.Status, Message: r.Message, Retry: true}
		}
	case runstore.StatusCompleted:
		st.Status, st.Marked = jetstream.StatusDone, true
		st.Outcome = &jetstream.Outcome{}
		if len(r.Results) > 0 {
			if err := json.Unmarshal(r.Results, st.Outcome); err != nil {
				return jetstream.RunState{}, fmt.Errorf("runstorestate: run %s results: %w", r.ID, err)
			}
		}
	case runstore.StatusFailed:
		st.Status = jetstream.StatusFailed
		if r.Error != nil {
			st.Error = &jetstream.RunError{Stage: jetstream.RunStatus(r.Error.Stage), Message: r.Error.Message}
		}
	case runstore.StatusCancelled:
		st.Status, st.Marked = jetstream.StatusSkipped, true
	}
	return st, nil
}

// PutRunState implements jetstream.StateStore.
func (s *Store) PutRunState(ctx context.Context, st jetstream.RunState) error {
	r, ok, err := s.lookup(ctx, st.Run.ID)
	if err != nil {
		return err
	}
	if !ok {
		b, err := json.Marshal(settings{Jetstream: st.Run})
		if err != nil {
			return err
		}
		r, err = s.rs.Create(ctx, runstore.NewRun{Source: runstore.SourceJetstream, JetstreamID: st.Run.ID,
			Vehicle: truncate(st.Run.Vehicle, 255), Filename: truncate(st.Run.ID+".csv", 255), Settings: b})
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.ids[st.Run.ID] = r.ID
		s.mu.Unlock()
	}
	if r.Status.Terminal() {
		// Completed, failed and cancelled runs are final in the store; the
		// poller only changes their ack flag, which the store cannot keep.
		return nil
	}
	switch st.Status {
	case jetstream.StatusDone:
		if r.Status == runstore.StatusQueued {
			if r, err = s.rs.Update(ctx, r.ID, runstore.Update{Version: r.Version, Status: runstore.StatusProcessing,
				Reason: "jetstream: analysis finished"}); err != nil {
				return err
			}
		}
		var out jetstream.Outcome
		if st.Outcome != nil {
			out = *st.Outcome
		}
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		res := runstore.Result{Results: b, Message: "done; awaiting Jetstream's processed mark"}
		if st.Marked {
			res.Message = markedMessage
		}
		if v, ok := out.Summary["peak_hp"]; ok {
			res.Stats.PeakHP = &v
		}
		if v, ok := out.Summary["peak_torque"]; ok {
			res.Stats.PeakTorque = &v
		}
		_, err = s.rs.Complete(ctx, r.ID, r.Version, res)
		return err
	case jetstream.StatusFailed:
		e := runstore.RunError{Code: codePrefix + "failed", Message: "failed"}
		if st.Error != nil {
			e = runstore.RunError{Stage: string(st.Error.Stage), Code: codePrefix + string(st.Error.Stage),
				Message: truncate(st.Error.Message, 4096)}
		}
		_, err = s.rs.Fail(ctx, r.ID, r.Version, e)
		return err
	case jetstream.StatusSkipped:
		msg := "already marked processed on Jetstream"
		_, err = s.rs.Update(ctx, r.ID, runstore.Update{Version: r.Version, Status: runstore.StatusCancelled,
			Message: &msg, Reason: msg})
		return err
	}
	var set settings
	if err := json.Unmarshal(r.Settings, &set); err != nil {
		return fmt.Errorf("runstorestate: run %s settings: %w", r.ID, err)
	}
	now := pollerState{Status: st.Status, Attempts: st.Attempts}
	stage := stageText(st.Status, st.Attempts)
	msg := ""
	if st.Error != nil {
		msg = truncate(st.Error.Message, 4096)
	}
	if set.Poller != nil && *set.Poller == now && r.Stage == stage && r.Message == msg {
		return nil
	}
	set.Poller = &now
	b, err := json.Marshal(set)
	if err != nil {
		return err
	}
	_, err = s.rs.Update(ctx, r.ID, runstore.Update{Version: r.Version, Stage: &stage, Message: &msg, Settings: b})
	return err
}

// RunStates implements jetstream.StateStore.
func (s *Store) RunStates(ctx context.Context, statuses ...jetstream.RunStatus) ([]jetstream.RunState, error) {
	var rsStatuses []runstore.Status
	want := map[jetstream.RunStatus]bool{}
	for _, st := range statuses {
		want[st] = true
		switch st {
		case jetstream.StatusDone:
			rsStatuses = append(rsStatuses, runstore.StatusCompleted)
		case jetstream.StatusFailed:
			rsStatuses = append(rsStatuses, runstore.StatusFailed)
		case jetstream.StatusSkipped:
			rsStatuses = append(rsStatuses, runstore.StatusCancelled)
		default:
			rsStatuses = append(rsStatuses, runstore.StatusQueued, runstore.StatusProcessing)
		}
	}
	runs, err := s.list(ctx, rsStatuses)
	if err != nil {
		return nil, err
	}
	out := make([]jetstream.RunState, 0, len(runs))
	for i := len(runs) - 1; i >= 0; i-- { // the store lists newest first
		st, err := toState(runs[i])
		if err != nil {
			return nil, err
		}
		if len(want) == 0 || want[st.Status] {
			out = append(out, st)
		}
	}
	return out, nil
}

// list returns every Jetstream run of the store with one of statuses (all
// when empty), newest first.
func (s *Store) list(ctx context.Context, statuses []runstore.Status) ([]runstore.Run, error) {
	var out []runstore.Run
	f := runstore.Filter{Sources: []runstore.RunSource{runstore.SourceJetstream}, Statuses: statuses, Limit: runstore.MaxLimit}
	for {
		page, err := s.rs.List(ctx, f)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Runs...)
		if page.Next == "" {
			return out, nil
		}
		f.Cursor = page.Next
	}
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
