package jetstream_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynolog"
	"github.com/dynoai/dynoai/jetstream"
	"github.com/dynoai/dynoai/jetstream/jetstreamtest"
)

// FuzzReader feeds arbitrary bytes to the converter: it must return samples
// or a typed error, never panic or loop, and a ParseError must point inside
// the input.
func FuzzReader(f *testing.F) {
	f.Add([]byte("Time,Engine_RPM,MAP_kPa,Torque,AFR_Front,AFR_Rear,Spark_F,TPS,IAT,Lambda_Front,Extra Col\n0.1,3000,80,90,13,13.2,28,95,86,0.9,x\n"))
	f.Add([]byte("rpm,Boost_psi,Torque_ftlb,map_kpa,torque\n3000,5,100,80,90\n"))
	f.Add([]byte("RPM,MAP_psi,Torque_ftlb\n"))
	f.Add([]byte("\ufeffRPM;MAP;Torque\n3000;80;90\n"))
	f.Add([]byte("RPM,MAP,Torque\n\"3,000\",80,90\n3000,,\n"))
	f.Add([]byte("Timestamp,RPM,MAP,Torque\n2025-11-25T14:30:00Z,3000,80,90\n"))
	f.Add(jetstreamtest.Pull{PeakHP: 100, PeakTorque: 110, Points: 5, Dialect: jetstreamtest.DialectLambda}.CSV())
	f.Add(jetstreamtest.Pull{PeakHP: 100, PeakTorque: 110, Points: 5, Dialect: jetstreamtest.DialectMetric}.CSV())
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		r, err := jetstream.NewReader(bytes.NewReader(data), jetstream.ReaderOptions{Name: "fuzz"})
		if err != nil {
			checkErr(t, err, data)
			return
		}
		var s dyno.Sample
		for n := 0; ; n++ {
			if n > len(data)+1 {
				t.Fatalf("more samples (%d) than input bytes (%d)", n, len(data))
			}
			err := r.Next(ctx, &s)
			if err == io.EOF {
				return
			}
			if err != nil {
				checkErr(t, err, data)
				if again := r.Next(ctx, &s); again == nil {
					t.Fatal("Next succeeded after an error")
				}
				return
			}
			if r.Layout().Channels.Has(dyno.ChanMAP) && dyno.Has(s.MAP) && s.MAP != s.MAP {
				t.Fatal("NaN MAP reported as present")
			}
		}
	})
}

func checkErr(t *testing.T, err error, data []byte) {
	t.Helper()
	if err.Error() == "" {
		t.Fatal("empty error message")
	}
	var pe *dynolog.ParseError
	if errors.As(err, &pe) {
		if pe.Offset < 0 || pe.Offset > int64(len(data))+3 {
			t.Fatalf("offset %d outside the %d-byte input: %v", pe.Offset, len(data), err)
		}
		return
	}
	var me *dynolog.MissingColumnsError
	if errors.As(err, &me) || errors.Is(err, dynolog.ErrNoHeader) || errors.Is(err, dynolog.ErrUnknownFormat) {
		return
	}
	t.Fatalf("untyped error: %T %v", err, err)
}

// FuzzRunPageJSON decodes arbitrary list responses: never a panic, and a
// decoded page re-encodes to one that decodes the same.
func FuzzRunPageJSON(f *testing.F) {
	f.Add([]byte(`{"runs":[{"id":"JS-1","timestamp":"2025-11-25T14:30:00.123456+00:00","vehicle":"FXLRST","duration_seconds":14,"data_points":1820,"processed":false}],"next":"abc"}`))
	f.Add([]byte(`{"runs":[{"id":"a","timestamp":"2025-11-25T14:31:00"},{"id":"b","timestamp":""}]}`))
	f.Add([]byte(`{"runs":null}`))
	f.Add([]byte(`{"runs":[{"id":"x","duration_seconds":1e400}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var page jetstream.RunPage
		if err := json.Unmarshal(data, &page); err != nil {
			return
		}
		b, err := json.Marshal(page)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", page, err)
		}
		var again jetstream.RunPage
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatalf("decoding our own %s: %v", b, err)
		}
		if len(again.Runs) != len(page.Runs) || again.Next != page.Next {
			t.Fatalf("round trip changed the page: %+v -> %+v", page, again)
		}
		for i := range page.Runs {
			a, b := page.Runs[i], again.Runs[i]
			if a.ID != b.ID || !a.Timestamp.Equal(b.Timestamp) || a.Processed != b.Processed {
				t.Fatalf("run %d changed: %+v -> %+v", i, a, b)
			}
		}
	})
}

// FuzzParseTimestamp: any text gives a UTC time or an error, and a parsed
// time formatted as RFC 3339 parses back to itself.
func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{"2025-11-25T14:30:00.123456+00:00", "2025-11-25T14:30:00Z", "2025-11-25T14:30:00", "2025-11-25 14:30:00", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := jetstream.ParseTimestamp(s)
		if err != nil {
			return
		}
		if ts.Location() != time.UTC {
			t.Fatalf("%q: not UTC: %v", s, ts)
		}
		back, err := jetstream.ParseTimestamp(ts.Format(time.RFC3339Nano))
		if err != nil || !back.Equal(ts) {
			t.Fatalf("%q -> %v -> %v, %v", s, ts, back, err)
		}
	})
}
