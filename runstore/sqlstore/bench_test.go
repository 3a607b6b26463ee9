package sqlstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/sqlstore"
	"github.com/stretchr/testify/require"
)

type backend struct {
	name string
	open func(b *testing.B) *sqlstore.Store
}

func backends() []backend {
	return []backend{
		{"sqlite", func(b *testing.B) *sqlstore.Store { return openSQLite(b, nil) }},
		{"postgres", func(b *testing.B) *sqlstore.Store { return openPostgres(b, nil) }},
	}
}

// writeBackends adds SQLite with synchronous=NORMAL (durable across a
// process crash, not a power loss) to show what FULL costs.
func writeBackends() []backend {
	return append(backends(), backend{"sqlite-sync-normal", func(b *testing.B) *sqlstore.Store {
		s, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "runs.db"), sqlstore.Options{SQLiteSynchronous: "NORMAL"})
		require.NoError(b, err)
		return s
	}})
}

func BenchmarkCreate(b *testing.B) {
	for _, be := range writeBackends() {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			defer s.Close()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Create(ctx, runstore.NewRun{Source: runstore.SourceUpload, Filename: "pull.csv", Vehicle: "Road Glide", Settings: []byte(`{"passes":2}`)}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
		})
	}
}

func BenchmarkUpdateStatus(b *testing.B) {
	for _, be := range writeBackends() {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			defer s.Close()
			ctx := context.Background()
			r, err := s.Create(ctx, runstore.NewRun{Source: runstore.SourceUpload})
			require.NoError(b, err)
			r, err = s.Update(ctx, r.ID, runstore.Update{Version: r.Version, Status: runstore.StatusProcessing})
			require.NoError(b, err)
			p := 0.0
			b.ReportAllocs()
			for b.Loop() {
				p += 1e-9
				if r, err = s.Update(ctx, r.ID, runstore.Update{Version: r.Version, Status: runstore.StatusProcessing, Progress: &p}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
		})
	}
}

func BenchmarkList50Of100k(b *testing.B) {
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			defer s.Close()
			ctx := context.Background()
			start := time.Now()
			require.NoError(b, sqlstore.SeedRuns(ctx, s, 100_000, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
			b.Logf("%s: seeded 100000 runs in %v", be.name, time.Since(start).Round(time.Millisecond))
			mid, err := s.List(ctx, runstore.Filter{Limit: runstore.MaxLimit})
			require.NoError(b, err)
			for range 49 {
				mid, err = s.List(ctx, runstore.Filter{Limit: runstore.MaxLimit, Cursor: mid.Next})
				require.NoError(b, err)
			}
			filters := []struct {
				name string
				f    runstore.Filter
			}{
				{"newest", runstore.Filter{Limit: 50}},
				{"cursor-at-50k", runstore.Filter{Limit: 50, Cursor: mid.Next}},
				{"status+source", runstore.Filter{Limit: 50, Statuses: []runstore.Status{runstore.StatusFailed}, Sources: []runstore.RunSource{runstore.SourceJetstream}}},
				{"text", runstore.Filter{Limit: 50, Text: "fat bob"}},
				{"sort-peak-hp", runstore.Filter{Limit: 50, Sort: runstore.SortPeakHP}},
			}
			for _, f := range filters {
				b.Run(f.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						p, err := s.List(ctx, f.f)
						if err != nil {
							b.Fatal(err)
						}
						if len(p.Runs) != 50 {
							b.Fatalf("got %d runs", len(p.Runs))
						}
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lists/s")
				})
			}
		})
	}
}

func BenchmarkAttach1MiB(b *testing.B) {
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			defer s.Close()
			fs, err := runstore.NewLocalFileStore(b.TempDir(), runstore.LocalFileStoreOptions{})
			require.NoError(b, err)
			ctx := context.Background()
			r, err := s.Create(ctx, runstore.NewRun{Source: runstore.SourceUpload})
			require.NoError(b, err)
			data := make([]byte, 1<<20)
			rand.Read(data)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := runstore.Attach(ctx, s, fs, r.ID, "capture.bin", "application/octet-stream", bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "attaches/s")
		})
	}
}

// BenchmarkProbe measures one liveness probe of the database (a committed
// write and a read back) and of the local file store (write, fsync, rename
// of a probe file, directory fsync, read back): what a health or readiness
// check costs at most once a second.
func BenchmarkProbe(b *testing.B) {
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			defer s.Close()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Probe(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("files", func(b *testing.B) {
		fs, err := runstore.NewLocalFileStore(b.TempDir(), runstore.LocalFileStoreOptions{})
		require.NoError(b, err)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if err := fs.Probe(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCommitApply measures an apply as httpapi records it: three
// files of a 16x16 table's size put durably, then one transaction with the
// record.
func BenchmarkCommitApply(b *testing.B) {
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			defer s.Close()
			fs, err := runstore.NewLocalFileStore(b.TempDir(), runstore.LocalFileStoreOptions{})
			require.NoError(b, err)
			ctx := context.Background()
			r, err := s.Create(ctx, runstore.NewRun{Source: runstore.SourceUpload})
			require.NoError(b, err)
			var parent int64
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				contents := make([]runstore.Content, 3)
				for k := range contents {
					data := bytes.Repeat([]byte(fmt.Sprintf("%d,%d,", i, k)), 400)
					contents[k] = runstore.Content{Name: fmt.Sprintf("f%d.csv", k), ContentType: "text/csv", Data: data}
				}
				rec, err := runstore.CommitApply(ctx, s, fs, r.ID, runstore.NewApply{Cylinder: "Front",
					Kind: runstore.ApplyKindApply, Parent: parent}, contents)
				if err != nil {
					b.Fatal(err)
				}
				parent = rec.ID
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "applies/s")
		})
	}
}

// BenchmarkJobCycle is one analysis job's life in the store: Submit (run,
// input file and job in one transaction), Claim, one Heartbeat and
// CompleteJob with 8 result files: what the queue adds to an analysis.
func BenchmarkJobCycle(b *testing.B) {
	for _, be := range writeBackends() {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			defer s.Close()
			ctx := context.Background()
			sum := strings.Repeat("ab", 32)
			meta := runstore.FileMeta{Name: "pull.csv", ContentType: "text/csv", Size: 1000, SHA256: sum, StorageKey: sum}
			out := make([]runstore.FileMeta, 8)
			for i := range out {
				out[i] = meta
				out[i].Name = fmt.Sprintf("VE_Correction_%d.csv", i)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Submit(ctx, runstore.NewRun{Source: runstore.SourceUpload, Filename: "pull.csv"}, runstore.NewJob{Input: meta}); err != nil {
					b.Fatal(err)
				}
				l, err := s.Claim(ctx, runstore.Claim{Worker: "bench/1", Lease: time.Minute})
				if err != nil {
					b.Fatal(err)
				}
				if l, err = s.Heartbeat(ctx, l, time.Minute); err != nil {
					b.Fatal(err)
				}
				if _, err := s.CompleteJob(ctx, l, runstore.Result{Results: []byte(`{"cells":3}`)}, out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}
