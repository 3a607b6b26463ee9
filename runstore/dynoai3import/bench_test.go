package dynoai3import_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/dynoai3import"
	d3t "github.com/dynoai/dynoai/runstore/dynoai3import/dynoai3importtest"
	"github.com/dynoai/dynoai/runstore/sqlstore"
)

// BenchmarkImportTree imports BuildTree's folders (11 runs, 4 skipped)
// into a fresh SQLite store and local file directory per iteration; the
// second benchmark re-imports into a store that has them (the no-op).
func BenchmarkImportTree(b *testing.B) {
	root, inputs := b.TempDir(), b.TempDir()
	d3t.BuildTree(b, root, inputs)
	opts := dynoai3import.Options{InputDirs: []string{inputs}}
	open := func(b *testing.B) (*sqlstore.Store, *runstore.LocalFileStore) {
		dir := b.TempDir()
		s, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(dir, "runs.db"), sqlstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		fs, err := runstore.NewLocalFileStore(filepath.Join(dir, "files"), runstore.LocalFileStoreOptions{})
		if err != nil {
			b.Fatal(err)
		}
		return s, fs
	}
	b.Run("fresh", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			s, fs := open(b)
			b.StartTimer()
			rep, err := dynoai3import.Import(context.Background(), root, s, fs, opts)
			if err != nil || rep.Count(dynoai3import.Imported) != d3t.Importable {
				b.Fatalf("%v %v", err, rep.Summary())
			}
			b.StopTimer()
			s.Close()
			fs.Close()
			b.StartTimer()
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*d3t.Importable)/1000, "ms/run")
	})
	b.Run("again", func(b *testing.B) {
		s, fs := open(b)
		defer s.Close()
		defer fs.Close()
		if _, err := dynoai3import.Import(context.Background(), root, s, fs, opts); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			rep, err := dynoai3import.Import(context.Background(), root, s, fs, opts)
			if err != nil || rep.Count(dynoai3import.Existing) != d3t.Importable {
				b.Fatalf("%v %v", err, rep.Summary())
			}
		}
	})
}
