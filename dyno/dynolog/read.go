package dynolog

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sort"
	"time"

	"github.com/dynoai/dynoai/dyno"
)

// The log formats readers know, the values of Layout.Format and
// ReadOptions.Format.
const (
	// FormatWinPEP8 is a Dynojet WinPEP 8 / DynoWare RT text export: "Time"
	// then "(Module) Channel" columns, ", "-separated, engine speed in
	// thousands of rpm, temperatures in °F, barometer in kPa or inHg.
	FormatWinPEP8 = "winpep8"
	// FormatPowerVision is a Power Vision export with "(PV) ..." or
	// "(Harley - ECU ...) ..." columns and no DynoWare modules.
	FormatPowerVision = "powervision"
	// FormatMSL is a MegaLogViewer / TunerStudio ASCII log (.msl, and
	// TunerStudio's CSV export): optional quoted title lines, the header,
	// a units row, "MARK" lines between rows.
	FormatMSL = "msl"
	// FormatCSV is any other delimited log with a header row: DynoAI's
	// canonical files (see CSVWriter), the predecessor's WinPEP-like files,
	// JetDrive CSV captures.
	FormatCSV = "csv"
	// FormatProXY is the Power Vision "Pro-XY CSV 1.0.0" long format:
	// signal definitions, then (time ms, signal, value) rows.
	FormatProXY = "proxy"
	// FormatMLG is TunerStudio / MegaLogViewer's binary log (.mlg,
	// "MLVLG" versions 1 and 2): a field table with names, units, scales
	// and transforms, then fixed-length records.
	FormatMLG = "mlg"
	// FormatHPTuners is HP Tuners VCM Scanner's CSV export: an "HP Tuners
	// CSV Log File" preamble, a [Channel Information] section with the
	// channel-id row, the names row and the units row, then [Channel Data].
	FormatHPTuners = "hptuners"
)

// ColumnMapping names the column that feeds a channel, whatever the aliases
// say: a user's answer to a log whose wideband the reader does not know
// ("-map afr=\"LC2 AFR2\"" on the command line).
type ColumnMapping struct {
	Channel dyno.Channel
	// Cyl is the cylinder slot for per-cylinder channels: Front, Rear, 2...
	// or AllCylinders for one sensor feeding every cylinder.
	Cyl int
	// Column is the header as written, the words of one header ("LC2
	// AFR2"), or a 1-based column number "#N"; see FindColumn.
	Column string
	// Unit is the column's unit; UnitAuto lets the header, units row or
	// values decide.
	Unit dyno.Unit
}

// BadRowReason names why a row was rejected, the key of ReadStats.Skipped.
type BadRowReason string

// The reasons a row can be bad.
const (
	ReasonBadNumber BadRowReason = "bad_number"
	ReasonBadTime   BadRowReason = "bad_time"
	ReasonShortRow  BadRowReason = "short_row"
	// ReasonChecksum: an MLG record whose checksum does not match.
	ReasonChecksum BadRowReason = "checksum"
)

// reasonChecksum is ReasonChecksum's index in Reader.skipped.
const reasonChecksum = 3

// ReadOptions configures a log reader. The zero value reads any known format
// with the built-in aliases, requires RPM and MAP, converts lambda with a
// stoichiometric AFR of 14.7 and fails at the first bad row.
type ReadOptions struct {
	// Format forces a format (FormatWinPEP8, ...); "" detects it.
	Format string
	// Aliases are extra column aliases, tried before the built-in ones (so
	// they win over them). The Jetstream converter passes its own here.
	Aliases []Alias
	// NoDefaultAliases drops the built-in aliases: only Aliases apply.
	NoDefaultAliases bool
	// ColumnUnits forces the unit of columns by header name (compared after
	// NormalizeHeader), whatever the header or format says.
	ColumnUnits map[string]dyno.Unit
	// ChannelUnits forces the unit of every column of a channel, for
	// example {ChanIAT: UnitCelsius} for a log whose "IAT" is in °C.
	ChannelUnits map[dyno.Channel]dyno.Unit
	// StoichAFR converts lambda to AFR; 0 means DefaultStoichAFR (14.7).
	StoichAFR float64
	// Map forces the column of a channel, over the aliases and the health
	// verdicts (a mapped column is used even when it looks dead; the
	// report says so).
	Map []ColumnMapping
	// Gauge marks pressure channels (ChanMAP) recorded as gauge pressure,
	// relative to the barometer: the reader adds the log's barometer, or
	// 101.325 kPa when it has none. Negative pressures mark gauge columns
	// without this.
	Gauge dyno.ChannelSet
	// Required lists the channels a log must have; nil means RPM. Use an
	// empty non-nil slice to require nothing. (What an analysis needs
	// beyond that, a load, a wideband, a target, the analysis checks and
	// explains with the channel report.)
	Required []dyno.Channel
	// PrefixRows is how many data rows the reader reads ahead and judges
	// before it decides columns, units and health (see ChannelReport);
	// zero means DefaultPrefixRows. The rows are held raw and read again.
	PrefixRows int
	// Delimiter forces the field separator; 0 sniffs ',' '\t' ';'.
	Delimiter byte
	// MaxBadRows is how many bad rows (a malformed number, a short row) are
	// skipped, counted in Stats, before reading fails: 0 fails at the first,
	// a negative value never fails.
	MaxBadRows int
	// Period is the sample period assumed when a log has no time column;
	// 0 leaves Sample.Time at zero.
	Period time.Duration
	// Verbatim reads every matched column as written, in its stated (or
	// the channel's) unit: no unit inference, no health verdicts, no
	// sentinel filtering, the best-ranked column of each channel. It is
	// for files whose columns are known to be right, such as the canonical
	// CSV this package writes, which then read back exactly.
	Verbatim bool
	// NoDerive stops the reader from deriving torque from power and RPM (or
	// power from torque), and AFR from lambda, when a log lacks them.
	NoDerive bool
	// MaxLineBytes bounds a line's length; 0 means 4 MiB.
	MaxLineBytes int
	// Parallel decodes rows on background goroutines (one reading lines,
	// two parsing batches of them) while Next hands them out in order, for
	// throughput on large logs when more than one core is free. Samples,
	// statistics and errors are those of sequential reading. Close the
	// Reader when you stop before the end, so the goroutines stop. Logs
	// with wall-clock time columns and Pro-XY logs are read sequentially.
	Parallel bool
	// Logger receives notes on the mapping (debug level); nil discards.
	Logger *slog.Logger
}

// ReadStats counts what a reader saw.
type ReadStats struct {
	Lines         int64                  // lines consumed, header and preamble included
	Rows          int64                  // samples returned by Next
	Blank         int64                  // empty lines skipped
	Markers       int64                  // MegaLogViewer "MARK" lines and HP Tuners section lines skipped
	Skipped       map[BadRowReason]int64 // bad rows skipped, by reason
	MissingCells  int64                  // empty, NaN or infinite cells of mapped columns
	TimeBackwards int64                  // rows whose time is before the previous row's
	// AFRRows counts, per cylinder, the rows with a measured AFR, and
	// AFRImplausible those whose AFR lies outside PlausibleAFRMin..Max: a
	// sensor that is not fitted (0, −8), not warmed up, or WinPEP's 5.1 "no
	// AFR". When the two are equal the channel carries no measurement and
	// must not be analysed.
	AFRRows        [dyno.MaxCylinders]int64
	AFRImplausible [dyno.MaxCylinders]int64
}

// The range of air-fuel ratios a wideband can report on a running gasoline
// engine (lambda about 0.4 to 1.7); ReadStats counts values outside it.
const (
	PlausibleAFRMin = 6.0
	PlausibleAFRMax = 25.0
)

// Column describes one mapped column of a log.
type Column struct {
	Index   int          // 0-based position in the row
	Header  string       // the header as written (decoded to UTF-8)
	Channel dyno.Channel // where its values go
	Cyl     int          // cylinder slot, or AllCylinders
	Unit    dyno.Unit    // the unit the values are converted from (UnitAuto: decided per value, see Reader)
	Alias   string       // the alias it matched
}

// Reader reads a dyno log as a Source. It streams: it holds one line and one
// reused field buffer, never the log, and allocates nothing per row in the
// steady state. Unit conversion happens on the way in (see the package doc).
//
// The header is the first line with two named cells; lines before it are a
// preamble (MegaLogViewer title lines). The separator is sniffed among ',',
// tab and ';' (with ';' or tab, "80,5" is 80.5). A UTF-8 byte-order mark is
// dropped, CRLF endings are accepted, header text that is not UTF-8 is read as
// Windows-1252, and cells may be double-quoted. A line after the header with
// no number in it is a units row: its units apply to columns whose header
// states none. Each header is matched against the aliases (see Alias and
// DefaultAliases); unmatched columns are ignored, and Columns tells what
// matched. Layout.Cylinders is the highest cylinder with a column of its own
// (2 for front and rear), or 1 when the log has only all-cylinder columns.
//
// Temperatures whose unit no header, units row or option states are °F, as
// in the predecessor's logs, WinPEP8 and Power Vision; use
// ReadOptions.ChannelUnits for a log in °C. A time column named "time" or
// "timestamp" is seconds (or a date-time, whose offset from the first row
// becomes Sample.Time); "time_ms" and "timestamp_ms" are milliseconds.
//
// A few values are interpreted per cell when the unit is not stated:
// engine speed in WinPEP8 and Power Vision logs below 30 is thousands of rpm;
// a barometer below 40 is inHg and above 200 is mbar; a lambda or AFR value in
// (0, 3] is lambda, anything else AFR (JetDrive's "Desired Lambda" carries
// AFR). A mapped cell that is empty, NaN or infinite is Missing.
type Reader struct {
	name   string
	opts   ReadOptions
	log    *slog.Logger
	br     *bufio.Reader
	closer io.Closer
	layout dyno.Layout
	format string

	headers  []string
	binds    []binding
	colBind  []int // per column up to minField: index into binds, or -1
	timeBind int   // index into binds, or -1
	minField int
	delim    byte
	decComma bool
	stoich   float64

	line       int64 // line number of the last line read
	lineOff    int64 // byte offset of the last line read
	nextOff    int64
	fields     []field
	long       []byte
	pending    [][]byte // lines read ahead (header detection, the judged prefix)
	pendingOff []int64
	units      []string // the units row, when the log has one

	prefix      prefixData
	prefixBaro  float64 // the barometer the prefix shows, kPa
	report      *dyno.ChannelReport
	notes       []string
	combined    bool            // one wideband for every cylinder, in slot 0
	gauge       dyno.ChannelSet // pressure channels to which the barometer is added
	tempHint    dyno.Unit       // a temperature unit the log's own metadata states
	tempHintWhy string

	rowIndex  int64
	lastTime  time.Duration
	wall0     time.Time
	haveWall0 bool
	bad       int
	skipped   [4]int64
	stats     ReadStats
	err       error
	derive    struct{ torque, power, afr bool }

	proxy *proxyState
	mlg   *mlgState
	par   *parallelState
}

// Open opens the log at path and returns a Reader for it, detecting its
// format unless opts.Format says. Close the Reader when done.
func Open(path string, opts ReadOptions) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := newReader(f, path, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer = f
	return r, nil
}

// NewReader returns a Reader over r, detecting the format unless
// opts.Format says. name identifies the log in errors and Layout.Name. It
// reads the header before returning.
func NewReader(r io.Reader, name string, opts ReadOptions) (*Reader, error) {
	return newReader(r, name, opts)
}

func knownFormat(f string) bool {
	switch f {
	case "", FormatWinPEP8, FormatPowerVision, FormatMSL, FormatCSV, FormatProXY, FormatMLG, FormatHPTuners:
		return true
	}
	return false
}

const peekSize = 64 << 10

func newReader(src io.Reader, name string, opts ReadOptions) (*Reader, error) {
	if !knownFormat(opts.Format) {
		return nil, fmt.Errorf("%s: %w %q", name, ErrUnknownFormat, opts.Format)
	}
	r := &Reader{name: name, opts: opts, timeBind: -1}
	r.log = opts.Logger
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.stoich = opts.StoichAFR
	if r.stoich <= 0 {
		r.stoich = dyno.DefaultStoichAFR
	}
	if r.opts.MaxLineBytes <= 0 {
		r.opts.MaxLineBytes = 4 << 20
	}
	r.br = bufio.NewReaderSize(src, peekSize)
	head, err := r.br.Peek(peekSize)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, &ParseError{File: name, Err: err}
	}
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	if opts.Format == FormatMLG || (opts.Format == "" && looksMLG(head)) {
		if err := r.initMLG(); err != nil {
			return nil, err
		}
		return r, nil
	}
	if opts.Format == FormatProXY || (opts.Format == "" && looksProXY(head)) {
		if err := r.initProXY(); err != nil {
			return nil, err
		}
		return r, nil
	}
	if err := r.readHeader(head); err != nil {
		return nil, err
	}
	return r, nil
}

// missingSample is a Sample with every channel Missing, copied to reset.
var missingSample = dyno.NewSample()

// readLine returns the next line without its line ending. The slice is valid
// until the next call.
func (r *Reader) readLine() ([]byte, error) {
	if len(r.pending) > 0 {
		l := r.pending[0]
		r.lineOff = r.pendingOff[0]
		r.pending = r.pending[1:]
		r.pendingOff = r.pendingOff[1:]
		r.line++
		return l, nil
	}
	b, err := r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		r.long = append(r.long[:0], b...)
		for err == bufio.ErrBufferFull {
			if len(r.long) > r.opts.MaxLineBytes {
				r.line++
				return nil, &ParseError{File: r.name, Line: r.line, Offset: r.nextOff, Err: ErrLineTooLong}
			}
			b, err = r.br.ReadSlice('\n')
			r.long = append(r.long, b...)
		}
		b = r.long
	}
	if len(b) == 0 {
		if err == nil {
			err = io.EOF
		}
		return nil, err
	}
	if err != nil && err != io.EOF {
		return nil, &ParseError{File: r.name, Line: r.line + 1, Offset: r.nextOff, Err: err}
	}
	r.line++
	r.lineOff = r.nextOff
	r.nextOff += int64(len(b))
	if len(b) > r.opts.MaxLineBytes {
		return nil, &ParseError{File: r.name, Line: r.line, Offset: r.lineOff, Err: ErrLineTooLong}
	}
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	if r.line == 1 {
		b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	}
	return b, nil
}

// Layout describes the log: its name, format, cylinders and channels.
func (r *Reader) Layout() dyno.Layout { return r.layout }

// ChannelReport says which column feeds each channel, in which unit and
// why, what values the judged prefix showed and whether each is healthy,
// and which candidate columns were left out and why.
func (r *Reader) ChannelReport() *dyno.ChannelReport { return r.report }

// Headers returns the header names as found in the log (decoded to UTF-8).
func (r *Reader) Headers() []string { return append([]string(nil), r.headers...) }

// Columns returns the mapped columns in header order: which header feeds
// which channel, in which unit.
func (r *Reader) Columns() []Column {
	out := make([]Column, 0, len(r.binds))
	for _, b := range r.binds {
		u := b.unit
		if b.conv == convMixAuto {
			u = dyno.UnitAuto
		}
		out = append(out, Column{Index: b.col, Header: b.header, Channel: b.ch, Cyl: b.cyl, Unit: u,
			Alias: b.alias})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}

// Stats returns what the reader has counted so far.
func (r *Reader) Stats() ReadStats {
	s := r.stats
	s.Skipped = map[BadRowReason]int64{}
	for i, reason := range []BadRowReason{ReasonBadNumber, ReasonBadTime, ReasonShortRow, ReasonChecksum} {
		if r.skipped[i] > 0 {
			s.Skipped[reason] = r.skipped[i]
		}
	}
	return s
}

// Close closes the file Open opened; it is a no-op for NewReader's readers.
func (r *Reader) Close() error {
	if r.par != nil {
		r.par.shutdown()
	}
	if r.closer != nil {
		c := r.closer
		r.closer = nil
		return c.Close()
	}
	return nil
}

// Next fills s with the next row. It returns io.EOF at the end, ctx's error
// when ctx is done, a *ParseError for a bad row beyond ReadOptions.MaxBadRows,
// and keeps returning the same error afterwards.
func (r *Reader) Next(ctx context.Context, s *dyno.Sample) error {
	if r.err != nil {
		return r.err
	}
	if r.rowIndex&63 == 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	var err error
	switch {
	case r.mlg != nil:
		err = r.nextMLG(s)
	case r.proxy != nil:
		err = r.nextProXY(s)
	default:
		err = r.nextCSV(s)
	}
	if err != nil {
		r.err = err
		return err
	}
	r.stats.Rows++
	r.rowIndex++
	return nil
}

func (r *Reader) nextCSV(s *dyno.Sample) error {
	if r.par == nil && r.opts.Parallel && r.rowIndex == 0 && r.parallelOK() {
		r.startParallel()
	}
	if r.par != nil {
		return r.nextParallel(s)
	}
	for {
		l, err := r.readLine()
		if err != nil {
			return err
		}
		r.stats.Lines++
		if isBlank(l) {
			r.stats.Blank++
			continue
		}
		if r.skipLine(l) {
			r.stats.Markers++
			continue
		}
		perr, reason, timeSet := r.parseRow(l, s)
		if perr == nil {
			r.finishRow(s, timeSet)
			return nil
		}
		if err := r.badRow(perr, reason); err != nil {
			return err
		}
	}
}

// badRow applies the bad-row policy: it counts a row it may skip and
// returns nil, or returns the error that ends the stream.
func (r *Reader) badRow(perr *ParseError, reason int) error {
	if r.opts.MaxBadRows < 0 || r.bad < r.opts.MaxBadRows {
		r.bad++
		r.skipped[reason]++
		return nil
	}
	perr.TooMany = r.opts.MaxBadRows > 0
	return perr
}

func (r *Reader) cellError(b binding, l []byte, f field, err error) *ParseError {
	return &ParseError{File: r.name, Line: r.line, Column: b.header, ColumnIndex: b.col + 1,
		Offset: r.lineOff + int64(f.start), Value: shorten(l[f.start:f.end]), Err: err}
}

// parseRow parses line l into s. It touches no state shared between rows
// but r.stats.MissingCells, so that parallel decoding can run it on a copy
// of r; finishRow does the sequential part. It reports whether the row set
// the time.
func (r *Reader) parseRow(l []byte, s *dyno.Sample) (*ParseError, int, bool) {
	if bytes.IndexByte(l, '"') >= 0 {
		return r.parseRowQuoted(l, s)
	}
	// One pass over an unquoted line: find each field's end, parse the
	// mapped ones in place. Bindings never overlap (a global per-cylinder
	// column fills only the slots without their own column), so column
	// order is as good as any.
	*s = missingSample
	timeSet := false
	need, n, delim := r.minField, len(l), r.delim
	start := 0
	for col := 0; col < need; col++ {
		bi := r.colBind[col]
		if bi >= 0 && r.binds[bi].linear {
			// The common case, parsed as the field is scanned: a plain
			// number in the channel's unit, ending at the delimiter.
			if v, end, ok := scanNumber(l, start, delim, r.decComma); ok {
				b := &r.binds[bi]
				if b.mul != 1 {
					v *= b.mul
				}
				store(b, v, s)
				if end >= n && col+1 < need {
					return &ParseError{File: r.name, Line: r.line, Offset: r.lineOff, Value: shorten(l),
						Err: fmt.Errorf("%w: %d fields, the mapped columns need %d", ErrShortRow, col+1, need)}, 2, false
				}
				start = end + 1
				continue
			}
		}
		i := start
		if bi < 0 {
			if k := bytes.IndexByte(l[start:], delim); k >= 0 {
				i = start + k
			} else {
				i = n
			}
		} else {
			for i < n && l[i] != delim {
				i++
			}
		}
		if bi >= 0 {
			b := &r.binds[bi]
			if b.linear && i > start && l[start] > ' ' && l[i-1] > ' ' {
				// The common case inline: a plain number in the channel's unit.
				if v, ok := parseNumber(l[start:i], r.decComma); ok && isFinite(v) {
					if b.mul != 1 {
						v *= b.mul
					}
					store(b, v, s)
					goto next
				}
			}
			f := field{start: int32(start), end: int32(i)}
			if i > start && (l[start] <= ' ' || l[i-1] <= ' ') {
				f = trimmedField(l, start, i, delim)
			}
			perr, reason, ts := r.cell(b, l, f, s)
			if perr != nil {
				return perr, reason, false
			}
			timeSet = timeSet || ts
		}
	next:
		if i >= n && col+1 < need {
			return &ParseError{File: r.name, Line: r.line, Offset: r.lineOff, Value: shorten(l),
				Err: fmt.Errorf("%w: %d fields, the mapped columns need %d", ErrShortRow, col+1, need)}, 2, false
		}
		start = i + 1
	}
	return nil, 0, timeSet
}

// scanNumber parses the plain decimal number ("-12.5", "3510") that starts
// at l[i] and ends at delim or the end of the line, returning it and the
// index of its end. ok is false for anything else (spaces, exponents, text,
// an empty field, more digits than float64 holds exactly): the caller
// then takes the general path, which parses exactly what parseNumber does.
func scanNumber(l []byte, i int, delim byte, decimalComma bool) (float64, int, bool) {
	n := len(l)
	neg := false
	if i < n && (l[i] == '-' || l[i] == '+') {
		neg = l[i] == '-'
		i++
	}
	var mant uint64
	nd, frac := 0, 0
	for ; i < n; i++ {
		d := l[i] - '0'
		if d > 9 {
			break
		}
		mant = mant*10 + uint64(d)
		nd++
	}
	if i < n && (l[i] == '.' || (l[i] == ',' && decimalComma && delim != ',')) {
		i++
		for ; i < n; i++ {
			d := l[i] - '0'
			if d > 9 {
				break
			}
			mant = mant*10 + uint64(d)
			nd++
			frac++
		}
	}
	if nd == 0 || nd > 19 || mant > 1<<53 || frac > 22 || (i < n && l[i] != delim) {
		return 0, 0, false
	}
	f := float64(mant)
	if frac > 0 {
		f /= pow10[frac]
	}
	if neg {
		f = -f
	}
	return f, i, true
}

func (r *Reader) parseRowQuoted(l []byte, s *dyno.Sample) (*ParseError, int, bool) {
	r.fields = splitLineN(r.fields, l, r.delim, r.minField)
	if len(r.fields) < r.minField {
		return &ParseError{File: r.name, Line: r.line, Offset: r.lineOff, Value: shorten(l),
			Err: fmt.Errorf("%w: %d fields, the mapped columns need %d", ErrShortRow, len(r.fields), r.minField)}, 2, false
	}
	*s = missingSample
	timeSet := false
	for i := range r.binds {
		b := &r.binds[i]
		perr, reason, ts := r.cell(b, l, r.fields[b.col], s)
		if perr != nil {
			return perr, reason, false
		}
		timeSet = timeSet || ts
	}
	return nil, 0, timeSet
}

// cell parses field f of line l, b's column, into s. It reports whether it
// set the time.
func (r *Reader) cell(b *binding, l []byte, f field, s *dyno.Sample) (*ParseError, int, bool) {
	cell := l[f.start:f.end]
	if len(cell) == 0 {
		r.stats.MissingCells++
		return nil, 0, false
	}
	if b.ch == dyno.ChanTime {
		if b.conv == convWallclock {
			t, ok := parseWallclock(cell)
			if !ok {
				return r.cellError(*b, l, f, ErrBadTime), 1, false
			}
			if !r.haveWall0 {
				r.wall0, r.haveWall0 = t, true
			}
			s.Time = t.Sub(r.wall0)
			return nil, 0, true
		}
		if b.unit == dyno.UnitSeconds {
			if ns, ok := parseSecondsNS(cell); ok {
				s.Time = time.Duration(ns)
				return nil, 0, true
			}
		}
	}
	v, ok := parseNumber(cell, r.decComma)
	if !ok && isPlaceholder(cell) {
		r.stats.MissingCells++
		return nil, 0, false
	}
	if !ok {
		if b.ch == dyno.ChanTime {
			return r.cellError(*b, l, f, ErrBadTime), 1, false
		}
		return r.cellError(*b, l, f, ErrBadNumber), 0, false
	}
	if !isFinite(v) {
		r.stats.MissingCells++
		return nil, 0, false
	}
	if b.linear {
		if b.mul != 1 {
			v *= b.mul
		}
		store(b, v, s)
		return nil, 0, false
	}
	return nil, 0, r.assign(b, v, s)
}

// finishRow fills the time of rows without one and derives channels.
func (r *Reader) finishRow(s *dyno.Sample, timeSet bool) {
	if r.proxy != nil {
		// the time stamp of the pivoted group
	} else if r.timeBind < 0 {
		if r.opts.Period > 0 {
			s.Time = time.Duration(r.rowIndex) * r.opts.Period
		}
	} else if !timeSet {
		s.Time = r.lastTime
	} else if r.rowIndex > 0 && s.Time < r.lastTime {
		r.stats.TimeBackwards++
	}
	r.lastTime = s.Time
	if r.gauge != 0 {
		baro := s.Baro
		if !dyno.Has(baro) {
			baro = stdBaro
		}
		if r.gauge.Has(dyno.ChanMAP) && dyno.Has(s.MAP) {
			s.MAP += baro
		}
		if r.gauge.Has(dyno.ChanLoad) && dyno.Has(s.Load) {
			s.Load += baro
		}
	}
	if r.derive.afr {
		for c := 0; c < r.layout.Cylinders; c++ {
			if !dyno.Has(s.AFR[c]) && dyno.Has(s.Lambda[c]) {
				s.AFR[c] = s.Lambda[c] * r.stoich
			}
		}
	}
	for c := 0; c < r.layout.Cylinders; c++ {
		if v := s.AFR[c]; dyno.Has(v) {
			r.stats.AFRRows[c]++
			if v < PlausibleAFRMin || v > PlausibleAFRMax {
				r.stats.AFRImplausible[c]++
			}
		}
	}
	if r.derive.torque && dyno.Has(s.Power) && s.RPM > 0 {
		s.Torque = dyno.TorqueFromPower(s.Power, s.RPM)
	}
	if r.derive.power && dyno.Has(s.Torque) && dyno.Has(s.RPM) {
		s.Power = dyno.PowerFromTorque(s.Torque, s.RPM)
	}
}

// assign converts v, a cell of b's column, and stores it in s. It reports
// whether it set the time.
func (r *Reader) assign(b *binding, v float64, s *dyno.Sample) bool {
	switch b.conv {
	case convKRPMAuto:
		if v > 0 && v < 30 {
			v *= 1000
		}
	case convBaroAuto:
		switch {
		case v < 40:
			v *= dyno.KPaPerInHg
		case v > 200:
			v /= 10
		}
	case convMixAuto:
		if b.ch == dyno.ChanLambda {
			if v > 3 {
				v = v / r.stoich
			}
		} else if v > 0 && v <= 3 {
			v *= r.stoich
		}
	default:
		switch b.unit {
		case dyno.UnitLambda:
			if b.ch != dyno.ChanLambda {
				v *= r.stoich
			}
		case dyno.UnitAFR:
			if b.ch == dyno.ChanLambda {
				v /= r.stoich
			}
		default:
			v = b.unit.ToCanonical(v)
		}
	}
	if b.ch == dyno.ChanTime {
		s.Time = time.Duration(math.Round(v * 1e9))
		return true
	}
	store(b, v, s)
	return false
}

// store puts v, already converted, in b's channel of s.
func store(b *binding, v float64, s *dyno.Sample) {
	if b.guard && (v < b.lo || v > b.hi) {
		return // a sentinel: no reading
	}
	switch b.ch {
	case dyno.ChanRPM:
		s.RPM = v
	case dyno.ChanMAP:
		s.MAP = v
	case dyno.ChanTPS:
		s.TPS = v
	case dyno.ChanTorque:
		s.Torque = v
	case dyno.ChanPower:
		s.Power = v
	case dyno.ChanIAT:
		s.IAT = v
	case dyno.ChanECT:
		s.ECT = v
	case dyno.ChanBaro:
		s.Baro = v
	case dyno.ChanDrumSpeed:
		s.DrumSpeed = v
	case dyno.ChanDrumForce:
		s.DrumForce = v
	case dyno.ChanLoad:
		s.Load = v
	default:
		var p *dyno.PerCylinder
		switch b.ch {
		case dyno.ChanAFR:
			p = &s.AFR
		case dyno.ChanAFRCommanded:
			p = &s.AFRCommanded
		case dyno.ChanLambda:
			p = &s.Lambda
		case dyno.ChanSpark:
			p = &s.Spark
		case dyno.ChanKnock:
			p = &s.Knock
		default:
			return
		}
		if b.cyl >= 0 {
			p[b.cyl] = v
		} else {
			for c := 0; c < dyno.MaxCylinders; c++ {
				if b.cylMask&(1<<c) != 0 {
					p[c] = v
				}
			}
		}
	}
}

// parseSecondsNS parses plain decimal seconds ("12", "-0.05", "3.123456789")
// exactly into nanoseconds. ok is false for anything else (exponents, more
// than 9 decimals, overflow), which the caller parses as a float.
func parseSecondsNS(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 21 {
		return 0, false
	}
	neg := false
	if b[0] == '-' || b[0] == '+' {
		neg = b[0] == '-'
		b = b[1:]
	}
	var sec, frac int64
	fdigits := -1
	digits := 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			digits++
			if fdigits >= 0 {
				if fdigits == 9 {
					return 0, false
				}
				frac = frac*10 + int64(c-'0')
				fdigits++
			} else {
				if sec >= (math.MaxInt64/1_000_000_000)/10-1 {
					return 0, false
				}
				sec = sec*10 + int64(c-'0')
			}
		case c == '.' && fdigits < 0:
			fdigits = 0
		default:
			return 0, false
		}
	}
	if digits == 0 {
		return 0, false
	}
	for i := max(fdigits, 0); i < 9; i++ {
		frac *= 10
	}
	ns := sec*1e9 + frac
	if neg {
		ns = -ns
	}
	return ns, true
}

func isBlank(l []byte) bool {
	for _, c := range l {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}
