package ve

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynolog"
)

// writeBenchLog writes a realistic n-row dyno log (50 Hz, repeated WOT pulls
// and part-throttle sweeps over the grid, two widebands, torque, power,
// spark, knock, IAT) in the canonical CSV format and returns its path.
func writeBenchLog(tb testing.TB, n int) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), fmt.Sprintf("bench_%d.csv", n))
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	layout := dyno.Layout{Cylinders: 2, Channels: dyno.NewChannelSet(dyno.ChanTime, dyno.ChanRPM, dyno.ChanMAP,
		dyno.ChanTPS, dyno.ChanAFR, dyno.ChanAFRCommanded, dyno.ChanSpark, dyno.ChanKnock, dyno.ChanTorque,
		dyno.ChanPower, dyno.ChanIAT)}
	w := dynolog.NewCSVWriter(bufio.NewWriterSize(f, 1<<20), layout)
	rng := rand.New(rand.NewPCG(9, 9))
	s := dyno.NewSample()
	for i := 0; i < n; i++ {
		phase := float64(i%1500) / 1500 // a 30 s pull-and-return cycle
		load := float64((i / 1500) % 5)
		s.Time = time.Duration(i) * 20 * time.Millisecond
		s.RPM = 1500 + 5000*phase
		s.TPS = 20 + 20*load
		s.MAP = 35 + 15*load + 2*rng.NormFloat64()
		target := 13.0
		s.AFRCommanded[0], s.AFRCommanded[1] = target, target
		s.AFR[0] = target*(1.03+0.00001*(s.RPM-4000)) + 0.1*rng.NormFloat64()
		s.AFR[1] = target*(0.98-0.0002*(s.MAP-65)) + 0.1*rng.NormFloat64()
		s.Torque = 60 + 40*math.Sin(math.Pi*phase)
		s.Power = s.Torque * s.RPM / 5252
		s.Spark[0], s.Spark[1] = 28, 26
		s.Knock[0], s.Knock[1] = 0, 0
		s.IAT = 35
		// Log at a data logger's resolution, as real logs are.
		s.RPM, s.MAP, s.TPS = math.Round(s.RPM), math.Round(s.MAP*10)/10, math.Round(s.TPS*10)/10
		s.AFR[0], s.AFR[1] = math.Round(s.AFR[0]*100)/100, math.Round(s.AFR[1]*100)/100
		s.Torque, s.Power = math.Round(s.Torque*10)/10, math.Round(s.Power*10)/10
		if err := w.WriteSample(&s); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	return path
}

// BenchmarkPipeline measures the whole job of examples/analyze: read the
// CSV, filter, attribute, accumulate, smooth and clamp.
func BenchmarkPipeline(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			path := writeBenchLog(b, n)
			info, err := os.Stat(path)
			if err != nil {
				b.Fatal(err)
			}
			a, err := New(Options{Smoothing: Smoothing{Kernels: true, Passes: 2}})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(info.Size())
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				rd, err := dynolog.Open(path, dynolog.ReadOptions{Parallel: true})
				if err != nil {
					b.Fatal(err)
				}
				res, err := a.Analyze(b.Context(), rd)
				rd.Close()
				if err != nil {
					b.Fatal(err)
				}
				if res.Samples != n {
					b.Fatalf("analyzed %d samples, want %d", res.Samples, n)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkAnalyzer measures the analyzer alone on samples in memory, to
// report its allocations per row separately from the reader's.
func BenchmarkAnalyzer(b *testing.B) {
	const n = 100_000
	samples := make([]dyno.Sample, n)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range samples {
		s := dyno.NewSample()
		s.Time = time.Duration(i) * 20 * time.Millisecond
		s.RPM, s.MAP, s.TPS = 1500+rng.Float64()*5000, 35+rng.Float64()*60, 50
		s.AFRCommanded[0], s.AFRCommanded[1] = 13, 13
		s.AFR[0], s.AFR[1] = 13.3, 12.8
		s.Torque = 80
		samples[i] = s
	}
	f := DefaultFilter()
	f.MaxMAPRate, f.MaxTPSRate = 0, 0
	a, err := New(Options{Filter: &f})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Analyze(b.Context(), dyno.NewSliceSource(twinLayout, samples)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
