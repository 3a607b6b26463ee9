package jetstream_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/internal/shareddata"
	"github.com/dynoai/dynoai/jetstream"
	"github.com/dynoai/dynoai/jetstream/jetstreamtest"
)

// The spec's suggested fake download, the predecessor's dense canonical log,
// converts whole.
func TestReaderDenseDynoLog(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(shareddata.Dir(t, "dynoai3", "logs"), "dense_dyno_test.csv"))
	require.NoError(t, err)
	r, err := jetstream.NewReader(bytes.NewReader(data), jetstream.ReaderOptions{Name: "dense_dyno_test.csv"})
	require.NoError(t, err)
	samples, err := dyno.Collect(context.Background(), r)
	require.NoError(t, err)
	require.Len(t, samples, 12000)
	for _, s := range samples {
		require.True(t, s.RPM >= 1500 && s.RPM <= 5500, "rpm %v", s.RPM)
		require.True(t, s.MAP >= 37 && s.MAP <= 93, "map %v", s.MAP)
		require.True(t, s.Torque >= 51 && s.Torque <= 112, "torque %v", s.Torque)
	}
	require.Equal(t, 2, r.Layout().Cylinders)
}

func BenchmarkReader(b *testing.B) {
	data := jetstreamtest.Pull{PeakHP: 110, PeakTorque: 120, Points: 10000, Seed: 1}.CSV()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	ctx := context.Background()
	var s dyno.Sample
	for b.Loop() {
		r, err := jetstream.NewReader(bytes.NewReader(data), jetstream.ReaderOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			if err := r.Next(ctx, &s); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "rows/s")
}
