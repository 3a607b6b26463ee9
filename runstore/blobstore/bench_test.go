package blobstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"io"
	"testing"

	"github.com/dynoai/dynoai/runstore"
	"github.com/stretchr/testify/require"
)

// benchStores are the stores the benchmarks compare: the blob store on
// memblob, on fileblob and on S3 ($DYNOAI_TEST_S3_URL), and the default
// local directory store.
var benchStores = []struct {
	name string
	open func(b *testing.B) runstore.FileStore
}{
	{"mem", func(b *testing.B) runstore.FileStore { return openStore(b, "mem://") }},
	{"local", func(b *testing.B) runstore.FileStore {
		fs, err := runstore.NewLocalFileStore(b.TempDir(), runstore.LocalFileStoreOptions{})
		require.NoError(b, err)
		b.Cleanup(func() { fs.Close() })
		return fs
	}},
	{"file", func(b *testing.B) runstore.FileStore { return openStore(b, "file://"+b.TempDir()) }},
	{"s3", func(b *testing.B) runstore.FileStore { return openS3(b) }},
}

const benchSize = 1 << 20

// BenchmarkPut stores 1 MiB of new contents per operation.
func BenchmarkPut(b *testing.B) {
	data := make([]byte, benchSize)
	_, _ = rand.Read(data)
	for _, st := range benchStores {
		b.Run(st.name, func(b *testing.B) {
			fs := st.open(b)
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(benchSize)
			i := uint64(0)
			for b.Loop() {
				i++
				binary.LittleEndian.PutUint64(data, i) // new contents, new key
				if _, err := fs.Put(ctx, bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpen reads 1 MiB of stored contents per operation.
func BenchmarkOpen(b *testing.B) {
	data := make([]byte, benchSize)
	_, _ = rand.Read(data)
	for _, st := range benchStores {
		b.Run(st.name, func(b *testing.B) {
			fs := st.open(b)
			ctx := context.Background()
			blob, err := fs.Put(ctx, bytes.NewReader(data))
			require.NoError(b, err)
			buf := make([]byte, 32<<10)
			b.ReportAllocs()
			b.SetBytes(benchSize)
			for b.Loop() {
				rc, err := fs.Open(ctx, blob.Key)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(io.Discard, rc, buf)
				rc.Close()
				if err != nil || n != benchSize {
					b.Fatalf("read %d bytes: %v", n, err)
				}
			}
		})
	}
}
