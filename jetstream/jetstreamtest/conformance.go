package jetstreamtest

import (
	"context"
	"testing"
	"time"

	"github.com/dynoai/dynoai/jetstream"
)

// RunStateStore checks that a jetstream.StateStore keeps what a Poller
// relies on: the cursor, one record per run id, statuses and their filters,
// attempts and errors of unfinished runs, outcomes of done runs, and records
// listed oldest first. open returns a new, empty store. (Conformance suites
// in this module are named Run, for a test package's main interface, or
// RunX for interface X: runstoretest.Run, runstoretest.RunFileStore,
// authkeystest.Run.)
func RunStateStore(t *testing.T, open func(t *testing.T) jetstream.StateStore) {
	ctx := context.Background()
	t0 := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	run := func(i int) jetstream.Run {
		return jetstream.Run{ID: "JS-C-" + string(rune('A'+i)), Timestamp: t0.Add(time.Duration(i) * time.Minute), Vehicle: "V"}
	}
	t.Run("cursor", func(t *testing.T) {
		s := open(t)
		c, err := s.Cursor(ctx)
		if err != nil || !c.IsZero() {
			t.Fatalf("new store: cursor %v, %v; want zero", c, err)
		}
		if err := s.SetCursor(ctx, t0); err != nil {
			t.Fatal(err)
		}
		if c, err := s.Cursor(ctx); err != nil || !c.Equal(t0) {
			t.Fatalf("cursor %v, %v; want %v", c, err, t0)
		}
	})
	t.Run("absent", func(t *testing.T) {
		s := open(t)
		if _, ok, err := s.RunState(ctx, "nope"); ok || err != nil {
			t.Fatalf("absent run: ok %v, err %v", ok, err)
		}
	})
	t.Run("lifecycle", func(t *testing.T) {
		s := open(t)
		r := run(0)
		put := func(st jetstream.RunState) {
			t.Helper()
			st.Run = r
			if err := s.PutRunState(ctx, st); err != nil {
				t.Fatalf("put %s: %v", st.Status, err)
			}
		}
		get := func() jetstream.RunState {
			t.Helper()
			st, ok, err := s.RunState(ctx, r.ID)
			if err != nil || !ok {
				t.Fatalf("get: ok %v, err %v", ok, err)
			}
			if st.Run.ID != r.ID || !st.Run.Timestamp.Equal(r.Timestamp) || st.Run.Vehicle != r.Vehicle {
				t.Fatalf("run changed: %+v, want %+v", st.Run, r)
			}
			return st
		}
		put(jetstream.RunState{Status: jetstream.StatusQueued})
		if st := get(); st.Status != jetstream.StatusQueued || st.Attempts != 0 {
			t.Fatalf("queued: %+v", st)
		}
		for _, status := range []jetstream.RunStatus{jetstream.StatusDownloading, jetstream.StatusConverting, jetstream.StatusAnalyzing} {
			put(jetstream.RunState{Status: status, Attempts: 1})
			if st := get(); st.Status != status || st.Attempts != 1 {
				t.Fatalf("%s: %+v", status, st)
			}
		}
		put(jetstream.RunState{Status: jetstream.StatusQueued, Attempts: 1,
			Error: &jetstream.RunError{Stage: jetstream.StatusDownloading, Message: "HTTP 503", Retry: true}})
		if st := get(); st.Status != jetstream.StatusQueued || st.Attempts != 1 || st.Error == nil || st.Error.Message != "HTTP 503" {
			t.Fatalf("retry: %+v", st)
		}
		put(jetstream.RunState{Status: jetstream.StatusAnalyzing, Attempts: 2})
		put(jetstream.RunState{Status: jetstream.StatusDone, Attempts: 2,
			Outcome: &jetstream.Outcome{Rows: 42, Summary: map[string]float64{"peak_hp": 101.5}}})
		st := get()
		if st.Status != jetstream.StatusDone || st.Outcome == nil || st.Outcome.Rows != 42 || st.Outcome.Summary["peak_hp"] != 101.5 {
			t.Fatalf("done: %+v", st)
		}
		all, err := s.RunStates(ctx)
		if err != nil || len(all) != 1 {
			t.Fatalf("one run, one record: %d records, %v", len(all), err)
		}
	})
	t.Run("filters and order", func(t *testing.T) {
		s := open(t)
		statuses := []jetstream.RunStatus{jetstream.StatusQueued, jetstream.StatusFailed, jetstream.StatusQueued,
			jetstream.StatusSkipped, jetstream.StatusDone}
		for i, status := range statuses {
			r := run(i)
			if err := s.PutRunState(ctx, jetstream.RunState{Run: r, Status: jetstream.StatusQueued}); err != nil {
				t.Fatal(err)
			}
			st := jetstream.RunState{Run: r, Status: status, Attempts: 1}
			switch status {
			case jetstream.StatusFailed:
				st.Error = &jetstream.RunError{Stage: jetstream.StatusConverting, Message: "missing map"}
			case jetstream.StatusDone:
				st.Outcome = &jetstream.Outcome{Rows: 1}
			case jetstream.StatusSkipped:
				st.Run.Processed, st.Marked = true, true
			}
			if status != jetstream.StatusQueued {
				if err := s.PutRunState(ctx, st); err != nil {
					t.Fatalf("put %s: %v", status, err)
				}
			}
		}
		check := func(want []int, filter ...jetstream.RunStatus) {
			t.Helper()
			got, err := s.RunStates(ctx, filter...)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("RunStates(%v): %d records, want %d", filter, len(got), len(want))
			}
			for i, w := range want {
				if got[i].Run.ID != run(w).ID {
					t.Fatalf("RunStates(%v)[%d] = %s, want %s (oldest first)", filter, i, got[i].Run.ID, run(w).ID)
				}
			}
		}
		check([]int{0, 1, 2, 3, 4})
		check([]int{0, 2}, jetstream.StatusQueued)
		check([]int{1, 4}, jetstream.StatusFailed, jetstream.StatusDone)
		check([]int{3}, jetstream.StatusSkipped)
		check(nil, jetstream.StatusAnalyzing)
		failed, _, _ := s.RunState(ctx, run(1).ID)
		if failed.Error == nil || failed.Error.Stage != jetstream.StatusConverting || failed.Error.Message != "missing map" {
			t.Fatalf("failed run's error: %+v", failed.Error)
		}
	})
}
