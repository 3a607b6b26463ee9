package dynolog_test

import (
	"bytes"
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynolog"
)

// writeBenchLog writes a canonical V-twin log of n rows (time, rpm, map,
// tps, AFR measured and commanded, spark, knock, torque, hp, iat: 16
// columns, about 110 bytes a row) to dir and returns its path.
func writeBenchLog(b *testing.B, dir string, n int) string {
	b.Helper()
	path := filepath.Join(dir, "bench_"+strconv.Itoa(n)+".csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	layout := dyno.Layout{Cylinders: 2, Channels: dyno.NewChannelSet(dyno.ChanTime, dyno.ChanRPM, dyno.ChanMAP,
		dyno.ChanTPS, dyno.ChanAFR, dyno.ChanAFRCommanded, dyno.ChanSpark, dyno.ChanKnock, dyno.ChanTorque,
		dyno.ChanPower, dyno.ChanIAT)}
	w := dynolog.NewCSVWriter(f, layout)
	s := dyno.NewSample()
	for i := 0; i < n; i++ {
		x := float64(i)
		s.Time = time.Duration(i) * 20 * time.Millisecond
		s.RPM = math.Round(2000+1500*math.Sin(x/300)+1500) + 0.25
		s.MAP = math.Round((60+35*math.Sin(x/170))*100) / 100
		s.TPS = math.Round((50+50*math.Sin(x/170))*10) / 10
		s.AFR[dyno.Front] = math.Round((13+0.4*math.Sin(x/7))*100) / 100
		s.AFR[dyno.Rear] = math.Round((13.1+0.4*math.Cos(x/7))*100) / 100
		s.AFRCommanded[dyno.Front], s.AFRCommanded[dyno.Rear] = 13, 13
		s.Spark[dyno.Front], s.Spark[dyno.Rear] = 28.5, 27.5
		s.Knock[dyno.Front], s.Knock[dyno.Rear] = 0, 0
		s.Torque = math.Round((90+10*math.Sin(x/300))*100) / 100
		s.Power = math.Round(s.Torque*s.RPM/5252*100) / 100
		s.IAT = math.Round((35+5*math.Sin(x/1000))*10) / 10
		if err := w.WriteSample(&s); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkReadCSV streams a canonical log from disk through Open and Next.
// It reports rows/s and allocations per op; allocations per row are
// allocs/op divided by the rows (the per-file constant is the header set-up).
func BenchmarkReadCSV(b *testing.B) {
	dir := b.TempDir()
	for _, n := range []int{100_000, 1_000_000} {
		name := strconv.Itoa(n/1000) + "k"
		if n >= 1_000_000 {
			name = strconv.Itoa(n/1_000_000) + "M"
		}
		b.Run("rows="+name, func(b *testing.B) {
			path := writeBenchLog(b, dir, n)
			st, _ := os.Stat(path)
			b.SetBytes(st.Size())
			b.ReportAllocs()
			ctx := context.Background()
			cpu0 := processCPU()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r, err := dynolog.Open(path, dynolog.ReadOptions{})
				if err != nil {
					b.Fatal(err)
				}
				var s dyno.Sample
				rows := 0
				for {
					err := r.Next(ctx, &s)
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					rows++
				}
				r.Close()
				if rows != n {
					b.Fatalf("read %d rows, want %d", rows, n)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			// On a shared machine wall time overstates the cost; CPU time
			// (user + system, this process) says what reading costs.
			b.ReportMetric(float64(n)*float64(b.N)/(processCPU()-cpu0).Seconds(), "rows/cpu-s")
		})
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWriteCSV measures CSVWriter on a typical row.
func BenchmarkWriteCSV(b *testing.B) {
	layout := dyno.Layout{Cylinders: 2, Channels: dyno.NewChannelSet(dyno.ChanTime, dyno.ChanRPM, dyno.ChanMAP,
		dyno.ChanTPS, dyno.ChanAFR, dyno.ChanTorque, dyno.ChanPower)}
	w := dynolog.NewCSVWriter(io.Discard, layout)
	s := dyno.NewSample()
	s.RPM, s.MAP, s.TPS, s.Torque, s.Power = 3512.25, 80.5, 99.1, 91.12, 61.2
	s.AFR[0], s.AFR[1] = 13.05, 12.98
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.Time = time.Duration(i) * time.Millisecond
		if err := w.WriteSample(&s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkReadHPTuners streams an HP Tuners VCM Scanner export of 100,000
// rows (the preamble, channel ids, names and units rows, then data with
// MAP in psi, temperatures in °F and a commanded equivalence ratio to
// convert), from memory.
func BenchmarkReadHPTuners(b *testing.B) {
	const n = 100_000
	var buf []byte
	buf = append(buf, "HP Tuners CSV Log File\nVersion: 1.0\n\n[Log Information]\nCreation Time: 6/5/2023 4:58:52 PM\n\n"+
		"[Channel Information]\n0,12,11,14,15,17,16\n"+
		"Offset,Engine RPM (SAE),Intake Manifold Absolute Pressure (SAE),Air-Fuel Ratio Commanded,Wideband AFR,Engine Coolant Temp (SAE),Throttle Position (SAE)\n"+
		"s,rpm,psi,,,°F,%\n\n[Channel Data]\n"...)
	for i := 0; i < n; i++ {
		x := float64(i)
		buf = strconv.AppendFloat(buf, x*0.125, 'f', 3, 64)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, math.Round(2500+1500*math.Sin(x/300)), 'f', -1, 64)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, math.Round((9+4*math.Sin(x/170))*1000)/1000, 'f', -1, 64)
		buf = append(buf, ",13.2,"...)
		buf = strconv.AppendFloat(buf, math.Round((13.3+0.4*math.Sin(x/7))*100)/100, 'f', -1, 64)
		buf = append(buf, ",195.8,"...)
		buf = strconv.AppendFloat(buf, math.Round((40+30*math.Sin(x/170))*10)/10, 'f', -1, 64)
		buf = append(buf, '\n')
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	ctx := context.Background()
	for b.Loop() {
		r, err := dynolog.NewReader(bytes.NewReader(buf), "bench.csv", dynolog.ReadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		var s dyno.Sample
		rows := 0
		for {
			err := r.Next(ctx, &s)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			rows++
		}
		if rows != n {
			b.Fatalf("read %d rows, want %d", rows, n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
