package dynolog_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/dyno/dynolog"
	"github.com/dynoai/dynoai/internal/shareddata"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestGoldenCanonical converts the real WinPEP8 Harley pull to the canonical
// CSV (testdata/PV_Logfile_5.canonical.csv, a sample log the project ships:
// the collector wideband as one afr_meas column, the dead ones left out)
// and checks the result, then reads the golden file back verbatim: it must
// give the same samples as the WinPEP8 original.
func TestGoldenCanonical(t *testing.T) {
	src := filepath.Join(shareddata.Dir(t, "reallogs"), "winpep8__rob9206__DynoAI_3__PV_Logfile_5.csv_33.txt")
	golden := filepath.Join("testdata", "PV_Logfile_5.canonical.csv")
	r, err := dynolog.Open(src, dynolog.ReadOptions{NoDerive: true})
	require.NoError(t, err)
	defer r.Close()
	var buf bytes.Buffer
	n, err := dynolog.CopyCSV(context.Background(), &buf, r)
	require.NoError(t, err)
	require.Equal(t, int64(74), n)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(golden, buf.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test -run TestGoldenCanonical -update ./dyno")
	require.Equal(t, string(want), buf.String())

	orig, err := dynolog.Open(src, dynolog.ReadOptions{NoDerive: true})
	require.NoError(t, err)
	defer orig.Close()
	a := readAll(t, orig)
	back, err := dynolog.Open(golden, dynolog.ReadOptions{NoDerive: true, Verbatim: true})
	require.NoError(t, err)
	defer back.Close()
	require.Equal(t, orig.Layout().Channels, back.Layout().Channels)
	require.True(t, back.Layout().CombinedAFR)
	b := readAll(t, back)
	require.Len(t, b, len(a))
	for i := range a {
		requireSameSample(t, a[i], b[i], golden)
	}
}
