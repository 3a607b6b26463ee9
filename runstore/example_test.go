package runstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dynoai/dynoai/runstore"
)

// A run's life: queued, processing with progress, completed with results.
func Example() {
	ctx := context.Background()
	clock := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var s runstore.RunStore = runstore.NewMemory(runstore.Options{Now: func() time.Time { return clock }})
	defer s.Close()

	r, _ := s.Create(ctx, runstore.NewRun{Source: runstore.SourceUpload, Filename: "pull3.csv", Vehicle: "Road Glide"})
	fmt.Println(r.Status, r.Version)

	stage, progress := "binning", 0.4
	r, _ = s.Update(ctx, r.ID, runstore.Update{Version: r.Version, Status: runstore.StatusProcessing, Stage: &stage, Progress: &progress})
	fmt.Println(r.Status, r.Version, r.Progress)

	// A writer holding the old version loses, visibly.
	_, err := s.Update(ctx, r.ID, runstore.Update{Version: 1, Stage: &stage})
	fmt.Println(errors.Is(err, runstore.ErrConflict))

	hp := 118.4
	r, _ = s.Complete(ctx, r.ID, r.Version, runstore.Result{Results: []byte(`{"lean_cells":3}`), Stats: runstore.Stats{PeakHP: &hp}})
	fmt.Println(r.Status, r.Progress, *r.Stats.PeakHP, r.CompletedAt.Format(time.RFC3339))

	h, _ := s.History(ctx, r.ID)
	for _, c := range h {
		fmt.Printf("%q -> %s\n", c.From, c.To)
	}
	// Output:
	// queued 1
	// processing 2 0.4
	// true
	// completed 1 118.4 2026-05-01T12:00:00Z
	// "" -> queued
	// "queued" -> processing
	// "processing" -> completed
}

// Listing pages through runs newest first with a cursor.
func ExampleRunStore_List() {
	ctx := context.Background()
	clock := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	s := runstore.NewMemory(runstore.Options{Now: func() time.Time { clock = clock.Add(time.Minute); return clock }})
	for _, name := range []string{"a.csv", "b.csv", "c.csv", "d.csv", "e.csv"} {
		s.Create(ctx, runstore.NewRun{Source: runstore.SourceJetstream, Filename: name})
	}
	f := runstore.Filter{Sources: []runstore.RunSource{runstore.SourceJetstream}, Limit: 2}
	for {
		p, err := s.List(ctx, f)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, r := range p.Runs {
			fmt.Print(r.Filename, " ")
		}
		fmt.Println("|")
		if p.Next == "" {
			break
		}
		f.Cursor = p.Next
	}
	// Output:
	// e.csv d.csv |
	// c.csv b.csv |
	// a.csv |
}

// Attach stores a file's contents and its checksum; ReadFile verifies it.
func ExampleAttach() {
	ctx := context.Background()
	s := runstore.NewMemory(runstore.Options{})
	fs := runstore.NewMemFileStore()
	r, _ := s.Create(ctx, runstore.NewRun{Source: runstore.SourceUpload})
	f, _ := runstore.Attach(ctx, s, fs, r.ID, "VE_Correction.csv", "text/csv", strings.NewReader("RPM,MAP,VE\n3000,80,1.02\n"))
	fmt.Println(f.Name, f.Size, f.SHA256[:12])

	_, data, err := runstore.ReadFile(ctx, s, fs, r.ID, f.ID)
	fmt.Printf("%q %v\n", data, err)

	fs.Corrupt(f.StorageKey)
	_, _, err = runstore.ReadFile(ctx, s, fs, r.ID, f.ID)
	fmt.Println(errors.Is(err, runstore.ErrChecksum))
	// Output:
	// VE_Correction.csv 24 8258e851c69c
	// "RPM,MAP,VE\n3000,80,1.02\n" <nil>
	// true
}

func ExampleParseStatus() {
	for _, legacy := range []string{"pending", "running", "complete", "error"} {
		s, _ := runstore.ParseStatus(legacy)
		fmt.Println(legacy, "->", s)
	}
	_, err := runstore.ParseStatus("exploded")
	fmt.Println(err)
	// Output:
	// pending -> queued
	// running -> processing
	// complete -> completed
	// error -> failed
	// runstore: invalid status: unknown status "exploded"
}

// A server marks runs that were processing when it died as failed.
func ExampleRunStore_Recover() {
	ctx := context.Background()
	s := runstore.NewMemory(runstore.Options{})
	r, _ := s.Create(ctx, runstore.NewRun{Source: runstore.SourceAPI})
	s.Update(ctx, r.ID, runstore.Update{Version: r.Version, Status: runstore.StatusProcessing})

	ids, _ := s.Recover(ctx, runstore.RunError{Code: "interrupted", Message: "server restarted"})
	got, _ := s.Get(ctx, r.ID)
	fmt.Println(len(ids), got.Status, got.Error.Code)
	// Output:
	// 1 failed interrupted
}
