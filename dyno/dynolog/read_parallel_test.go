package dynolog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/dynoai/dynoai/dyno"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// parallelLog is a log with blank lines, bad cells and missing cells spread
// over several batches.
func parallelLog(rows int) string {
	var b strings.Builder
	b.WriteString("time_s,rpm,map_kpa,tps,afr_meas_f,afr_meas_r,afr_cmd_f,afr_cmd_r,torque,iat_c\n")
	for i := 0; i < rows; i++ {
		switch {
		case i%997 == 0:
			b.WriteString("\n")
		case i%1499 == 7:
			fmt.Fprintf(&b, "%.2f,%d,5x0,50,13.1,13.2,13.0,13.0,80,30\n", float64(i)*0.02, 2000+i%4000)
			continue
		}
		afr := fmt.Sprintf("%.2f", 12.5+float64(i%100)/50)
		if i%301 == 0 {
			afr = ""
		}
		fmt.Fprintf(&b, "%.2f,%d,%.1f,%.1f,%s,13.2,13.0,13.0,%.1f,30\n", float64(i)*0.02, 2000+i%4000, 40+float64(i%600)/10, float64(i%100), afr, 60+float64(i%50))
	}
	return b.String()
}

func readAll(t *testing.T, data string, opts ReadOptions) ([]dyno.Sample, ReadStats, error) {
	t.Helper()
	rd, err := NewReader(strings.NewReader(data), "par.csv", opts)
	require.NoError(t, err)
	defer rd.Close()
	var out []dyno.Sample
	for {
		var s dyno.Sample
		err := rd.Next(context.Background(), &s)
		if err == io.EOF {
			return out, rd.Stats(), nil
		}
		if err != nil {
			return out, rd.Stats(), err
		}
		out = append(out, s)
	}
}

func sameSamples(t *testing.T, a, b []dyno.Sample) {
	t.Helper()
	require.Equal(t, len(a), len(b))
	for i := range a {
		x, y := a[i], b[i]
		// NaN != NaN: compare bit patterns.
		if !bytes.Equal(sampleBits(x), sampleBits(y)) {
			t.Fatalf("sample %d differs:\n%+v\n%+v", i, x, y)
		}
	}
}

func sampleBits(s dyno.Sample) []byte {
	var b []byte
	for _, c := range dyno.Channels() {
		for cyl := 0; cyl < dyno.MaxCylinders; cyl++ {
			b = fmt.Appendf(b, "%x,", math.Float64bits(s.Value(c, cyl)))
		}
	}
	return fmt.Appendf(b, "%d", s.Time)
}

// Parallel decoding must give exactly what sequential decoding gives:
// samples, statistics, skipped rows and the error that ends the stream.
func TestParallelMatchesSequential(t *testing.T) {
	defer goleak.VerifyNone(t)
	data := parallelLog(8_000)
	for _, maxBad := range []int{-1, 5, 0} {
		t.Run(fmt.Sprint("maxBad=", maxBad), func(t *testing.T) {
			seq, seqStats, seqErr := readAll(t, data, ReadOptions{MaxBadRows: maxBad})
			par, parStats, parErr := readAll(t, data, ReadOptions{MaxBadRows: maxBad, Parallel: true})
			sameSamples(t, seq, par)
			require.Equal(t, seqStats, parStats)
			if seqErr == nil {
				require.NoError(t, parErr)
				return
			}
			require.Equal(t, seqErr.Error(), parErr.Error())
			var pe *ParseError
			require.True(t, errors.As(parErr, &pe))
		})
	}
}

// Closing a parallel reader mid-stream stops its goroutines.
func TestParallelCloseEarly(t *testing.T) {
	defer goleak.VerifyNone(t)
	rd, err := NewReader(strings.NewReader(parallelLog(50_000)), "par.csv", ReadOptions{Parallel: true, MaxBadRows: -1})
	require.NoError(t, err)
	var s dyno.Sample
	for i := 0; i < 1000; i++ {
		require.NoError(t, rd.Next(context.Background(), &s))
	}
	require.NoError(t, rd.Close())
}

// FuzzParallelMatchesSequential: for any input, parallel decoding returns
// what sequential decoding returns.
func FuzzParallelMatchesSequential(f *testing.F) {
	f.Add([]byte(parallelLog(40)), 2)
	f.Add([]byte("rpm,map\n1000,50\n\n2000,x\n3000,70\n"), 0)
	f.Add([]byte("time,rpm,map\n0,1,2\n\"1\",\"2\",\"3\"\n"), -1)
	f.Fuzz(func(t *testing.T, data []byte, maxBad int) {
		if maxBad > 3 {
			maxBad = 3
		}
		// Repeat the body so that it spans several batches.
		body := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 && len(data) < 4096 {
			body = append(append([]byte(nil), data...), bytes.Repeat(data[i+1:], 1200/(len(data)-i))...)
		}
		seqR, err1 := NewReader(bytes.NewReader(body), "f.csv", ReadOptions{MaxBadRows: maxBad})
		parR, err2 := NewReader(bytes.NewReader(body), "f.csv", ReadOptions{MaxBadRows: maxBad, Parallel: true})
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("open: %v vs %v", err1, err2)
		}
		if err1 != nil {
			return
		}
		defer seqR.Close()
		defer parR.Close()
		for {
			var a, b dyno.Sample
			e1 := seqR.Next(context.Background(), &a)
			e2 := parR.Next(context.Background(), &b)
			if fmt.Sprint(e1) != fmt.Sprint(e2) {
				t.Fatalf("errors differ: %v vs %v", e1, e2)
			}
			if e1 != nil {
				break
			}
			if !bytes.Equal(sampleBits(a), sampleBits(b)) {
				t.Fatalf("samples differ:\n%+v\n%+v", a, b)
			}
		}
		require.Equal(t, seqR.Stats(), parR.Stats())
	})
}
