package dynolog

import (
	"bufio"
	"context"
	"io"
	"math"
	"strconv"

	"github.com/dynoai/dynoai/dyno"
)

// CSVWriter writes samples as DynoAI's canonical CSV log, a WinPEP-like,
// comma-separated file with one header line and one row per sample, that the
// package's readers read back exactly (FormatCSV). Its columns, in this order
// and only for the channels the layout has:
//
//	time_s                      seconds since the start, exact to the nanosecond
//	rpm                         rev/min
//	map_kpa                     kPa absolute
//	tps                         percent
//	afr_meas_f, afr_meas_r      measured AFR per cylinder
//	afr_cmd_f, afr_cmd_r        commanded AFR per cylinder
//	lambda_f, lambda_r          measured lambda per cylinder
//	spark_f, spark_r            spark advance, degrees
//	knock_f, knock_r            knock retard, degrees
//	torque                      ft·lbf
//	hp                          horsepower
//	iat_c, ect_c                °C
//	baro_kpa                    kPa
//	drum_speed_mph, drum_force_lbf
//	load                        the ECU's load, as its log had it
//
// Per-cylinder columns are suffixed _f and _r for one or two cylinders and
// _1 ... _8 for more; a layout whose AFR comes from one sensor for every
// cylinder (CombinedAFR) has a single afr_meas (and lambda) column. A Missing value is an empty cell. Numbers are written
// in the shortest form that parses back to the same float64.
type CSVWriter struct {
	w      *bufio.Writer
	cols   []wcol
	buf    []byte
	header bool
	err    error
}

type wcol struct {
	name string
	ch   dyno.Channel
	cyl  int
}

// CanonicalHeader returns the column names CSVWriter writes for layout.
func CanonicalHeader(layout dyno.Layout) []string {
	cols := canonicalColumns(layout)
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.name
	}
	return out
}

func canonicalColumns(l dyno.Layout) []wcol {
	var cols []wcol
	has := l.Channels.Has
	one := func(c dyno.Channel, name string) {
		if has(c) {
			cols = append(cols, wcol{name: name, ch: c})
		}
	}
	cyls := min(max(l.Cylinders, 1), dyno.MaxCylinders)
	per := func(c dyno.Channel, prefix string) {
		if !has(c) {
			return
		}
		if l.CombinedAFR && (c == dyno.ChanAFR || c == dyno.ChanLambda) {
			// One sensor for every cylinder: one column, read back as such.
			cols = append(cols, wcol{name: prefix, ch: c, cyl: 0})
			return
		}
		for i := 0; i < cyls; i++ {
			suffix := strconv.Itoa(i + 1)
			if cyls <= 2 {
				suffix = [2]string{"f", "r"}[i]
			}
			cols = append(cols, wcol{name: prefix + "_" + suffix, ch: c, cyl: i})
		}
	}
	one(dyno.ChanTime, "time_s")
	one(dyno.ChanRPM, "rpm")
	one(dyno.ChanMAP, "map_kpa")
	one(dyno.ChanTPS, "tps")
	per(dyno.ChanAFR, "afr_meas")
	per(dyno.ChanAFRCommanded, "afr_cmd")
	per(dyno.ChanLambda, "lambda")
	per(dyno.ChanSpark, "spark")
	per(dyno.ChanKnock, "knock")
	one(dyno.ChanTorque, "torque")
	one(dyno.ChanPower, "hp")
	one(dyno.ChanIAT, "iat_c")
	one(dyno.ChanECT, "ect_c")
	one(dyno.ChanBaro, "baro_kpa")
	one(dyno.ChanDrumSpeed, "drum_speed_mph")
	one(dyno.ChanDrumForce, "drum_force_lbf")
	one(dyno.ChanLoad, "load")
	return cols
}

// NewCSVWriter returns a writer of layout's channels to w. The header is
// written with the first sample (or by Flush, for an empty log).
func NewCSVWriter(w io.Writer, layout dyno.Layout) *CSVWriter {
	return &CSVWriter{w: bufio.NewWriterSize(w, 64<<10), cols: canonicalColumns(layout)}
}

func (w *CSVWriter) writeHeader() {
	w.header = true
	b := w.buf[:0]
	for i, c := range w.cols {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, c.name...)
	}
	b = append(b, '\n')
	w.buf = b
	_, w.err = w.w.Write(b)
}

// WriteSample writes one row.
func (w *CSVWriter) WriteSample(s *dyno.Sample) error {
	if w.err != nil {
		return w.err
	}
	if !w.header {
		if w.writeHeader(); w.err != nil {
			return w.err
		}
	}
	b := w.buf[:0]
	for i, c := range w.cols {
		if i > 0 {
			b = append(b, ',')
		}
		if c.ch == dyno.ChanTime {
			b = appendSeconds(b, int64(s.Time))
			continue
		}
		b = appendValue(b, s.Value(c.ch, c.cyl))
	}
	b = append(b, '\n')
	w.buf = b
	_, w.err = w.w.Write(b)
	return w.err
}

// Flush writes the header if no sample was written, then any buffered data.
func (w *CSVWriter) Flush() error {
	if w.err != nil {
		return w.err
	}
	if !w.header {
		if w.writeHeader(); w.err != nil {
			return w.err
		}
	}
	w.err = w.w.Flush()
	return w.err
}

// CopyCSV writes src, to its end, as a canonical CSV log to dst and returns
// the number of samples written.
func CopyCSV(ctx context.Context, dst io.Writer, src dyno.Source) (int64, error) {
	w := NewCSVWriter(dst, src.Layout())
	var n int64
	s := dyno.NewSample()
	for {
		err := src.Next(ctx, &s)
		if err == io.EOF {
			return n, w.Flush()
		}
		if err != nil {
			return n, err
		}
		if err := w.WriteSample(&s); err != nil {
			return n, err
		}
		n++
	}
}

func appendValue(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return b
	}
	if a := math.Abs(v); a != 0 && (a < 1e-4 || a >= 1e15) {
		return strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}

// appendSeconds writes ns nanoseconds as exact decimal seconds.
func appendSeconds(b []byte, ns int64) []byte {
	if ns < 0 {
		b = append(b, '-')
		if ns == math.MinInt64 {
			return append(b, "9223372036.854775808"...)
		}
		ns = -ns
	}
	b = strconv.AppendInt(b, ns/1e9, 10)
	frac := ns % 1e9
	if frac == 0 {
		return b
	}
	var d [10]byte
	d[0] = '.'
	for i := 9; i >= 1; i-- {
		d[i] = byte('0' + frac%10)
		frac /= 10
	}
	n := 10
	for d[n-1] == '0' {
		n--
	}
	return append(b, d[:n]...)
}
