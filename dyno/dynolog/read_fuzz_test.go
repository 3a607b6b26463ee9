package dynolog_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"testing"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynolog"
)

// drain reads r to its end, checking that every error is one of the
// package's, and that a Reader stops (a bounded number of samples per input
// byte: a log cannot yield more rows than it has lines).
func drain(t *testing.T, r *dynolog.Reader, size int) {
	t.Helper()
	var s dyno.Sample
	for n := 0; ; n++ {
		if n > size+1 {
			t.Fatalf("more samples (%d) than input bytes (%d)", n, size)
		}
		err := r.Next(context.Background(), &s)
		if err == io.EOF {
			return
		}
		if err != nil {
			var pe *dynolog.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Next: an error that is not a *ParseError: %v", err)
			}
			if pe.Line <= 0 || pe.Offset < 0 || pe.Offset > int64(size) {
				t.Fatalf("bad position in %v", pe)
			}
			if !errors.Is(r.Next(context.Background(), &s), pe.Err) {
				t.Fatal("the error does not stick")
			}
			return
		}
		if l := r.Layout(); l.Cylinders < 0 || l.Cylinders > dyno.MaxCylinders {
			t.Fatalf("layout %+v", l)
		}
		for c := r.Layout().Cylinders; c < dyno.MaxCylinders; c++ {
			if dyno.Has(s.AFR[c]) || dyno.Has(s.Spark[c]) {
				t.Fatalf("cylinder %d beyond the layout's %d has data", c, r.Layout().Cylinders)
			}
		}
		if math.IsInf(s.RPM, 0) || math.IsInf(s.MAP, 0) {
			t.Fatal("an infinite value was not turned into Missing")
		}
	}
}

func checkOpenErr(t *testing.T, err error) {
	t.Helper()
	var pe *dynolog.ParseError
	var me *dynolog.MissingColumnsError
	if !errors.As(err, &pe) && !errors.As(err, &me) {
		t.Fatalf("NewReader: an error that is neither *ParseError nor *MissingColumnsError: %v", err)
	}
}

func FuzzReader(f *testing.F) {
	seeds := []string{
		"rpm,map,tps\n3000,80,50\n",
		"Time, (DWRT CPU) Engine RPM, (PV) Manifold Absolute Pressure, \n0, 4.5, 90, \n0.05, , , \n",
		"\"t\"\nTime\tRPM\tMAP\tMAT\ns\trpm\tkPa\t\xb0F\n0\t1\t2\t3\nMARK 1\n",
		"\"Time\";\"RPM\";\"MAP\"\n\"s\";\"rpm\";\"kpa\"\n1;2;3,5\n",
		"\"Timestamp\",\"Engine Speed\",\"MAP\"\n\"2025-12-18 23:00:24.584\",\"1033.0\",\"50\"\n",
		"\ufeffrpm,map,afr_meas_f,lambda_r,afr\r\n1,2,3,0.9,14\r\n1,2\r\n",
		proXY,
	}
	for _, s := range seeds {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, lenient bool) {
		opts := dynolog.ReadOptions{}
		if lenient {
			opts = dynolog.ReadOptions{Required: []dyno.Channel{}, MaxBadRows: -1, MaxLineBytes: 1 << 12}
		}
		r, err := dynolog.NewReader(bytes.NewReader(data), "fuzz", opts)
		if err != nil {
			checkOpenErr(t, err)
			return
		}
		drain(t, r, len(data))
	})
}

func FuzzProXYReader(f *testing.F) {
	f.Add([]byte("0,0,1000\n0,1,35.5\n10,2,14.2\n20,0,3E8\n"))
	f.Add([]byte("5,3,ZZ\n,,\n1e3,1,1\n"))
	head := []byte(`"Dynojet Power Vision Log File"
"Format:","Pro-XY CSV 1.0.0"
0,"d","i","RPM","rpm","",""
1,"d","i","MAP","kPa","",""
2,"d","i","WBO2 F","AFR","",""
3,"d","i","Set Lambda","","",""
"Time(ms)","Signal","Value"
`)
	f.Fuzz(func(t *testing.T, body []byte) {
		data := append(append([]byte(nil), head...), body...)
		r, err := dynolog.NewReader(bytes.NewReader(data), "fuzz", dynolog.ReadOptions{Format: dynolog.FormatProXY, MaxBadRows: 3})
		if err != nil {
			checkOpenErr(t, err)
			return
		}
		drain(t, r, len(data))
	})
}

// FuzzCSVRoundTrip writes a sample of fuzzed values and reads it back.
func FuzzCSVRoundTrip(f *testing.F) {
	f.Add(int64(1500000000), 3000.0, 80.5, 13.1, 0.9, -2.0)
	f.Add(int64(-1), math.NaN(), math.Inf(1), 1e-300, 2.5, 0.0)
	f.Fuzz(func(t *testing.T, ns int64, rpm, mapKPa, afr, lambda, knock float64) {
		layout := dyno.Layout{Cylinders: 2, Channels: dyno.NewChannelSet(dyno.ChanTime, dyno.ChanRPM, dyno.ChanMAP,
			dyno.ChanAFR, dyno.ChanLambda, dyno.ChanKnock)}
		in := dyno.NewSample()
		in.Time = time.Duration(ns)
		in.RPM, in.MAP = rpm, mapKPa
		in.AFR[dyno.Front], in.Lambda[dyno.Rear], in.Knock[dyno.Front] = afr, lambda, knock
		var buf bytes.Buffer
		w := dynolog.NewCSVWriter(&buf, layout)
		if err := w.WriteSample(&in); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		r, err := dynolog.NewReader(&buf, "rt", dynolog.ReadOptions{NoDerive: true, Verbatim: true})
		if err != nil {
			t.Fatal(err)
		}
		var out dyno.Sample
		if err := r.Next(context.Background(), &out); err != nil {
			t.Fatalf("%v\n%s", err, buf.String())
		}
		if out.Time != in.Time && (ns > -1e17 && ns < 1e17) {
			t.Fatalf("time %v read back as %v", in.Time, out.Time)
		}
		for _, c := range []dyno.Channel{dyno.ChanRPM, dyno.ChanMAP, dyno.ChanAFR, dyno.ChanLambda, dyno.ChanKnock} {
			for cyl := 0; cyl < 2; cyl++ {
				w, g := in.Value(c, cyl), out.Value(c, cyl)
				if math.IsInf(w, 0) || math.IsNaN(w) {
					if dyno.Has(g) {
						t.Fatalf("%v: %v read back as %v", c, w, g)
					}
					continue
				}
				if math.Float64bits(w) != math.Float64bits(g) {
					t.Fatalf("%v[%d]: %v read back as %v", c, cyl, w, g)
				}
			}
		}
	})
}
