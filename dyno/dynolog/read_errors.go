package dynolog

import (
	"errors"
	"strconv"
	"strings"

	"github.com/dynoai/dynoai/dyno"
)

// Errors readers return, wrapped in a *ParseError or *MissingColumnsError
// that says where; test for them with errors.Is.
var (
	// ErrMissingColumns: the log lacks a required channel (RPM and MAP by
	// default). The *MissingColumnsError lists the missing channels and the
	// headers found.
	ErrMissingColumns = errors.New("missing required columns")
	// ErrBadNumber: a cell of a mapped column is not a number.
	ErrBadNumber = errors.New("malformed number")
	// ErrBadTime: a time cell is neither a number nor a date-time.
	ErrBadTime = errors.New("malformed time")
	// ErrShortRow: a row has fewer fields than the mapped columns need.
	ErrShortRow = errors.New("row has too few fields")
	// ErrLineTooLong: a line exceeds ReadOptions.MaxLineBytes.
	ErrLineTooLong = errors.New("line too long")
	// ErrNoHeader: the input has no header line (it is empty or has no line
	// with two named columns near its start).
	ErrNoHeader = errors.New("no header line")
	// ErrTooManyBadRows: more bad rows than ReadOptions.MaxBadRows allows. It
	// accompanies the error of the row that went over the limit.
	ErrTooManyBadRows = errors.New("too many bad rows")
	// ErrBadAlias: an alias in ReadOptions.Aliases has an empty name, an
	// unknown channel or unit, a cylinder outside 0..MaxCylinders-1 (or
	// AllCylinders), or a unit that does not measure its channel.
	ErrBadAlias = errors.New("invalid alias")
	// ErrUnknownFormat: ReadOptions.Format names no known format, or the
	// content does not fit the format asked for.
	ErrUnknownFormat = errors.New("unknown log format")
)

// ParseError is a problem at one place of a log: which file, line, column
// and byte offset, and what was found there. Err is one of the package's
// sentinel errors (ErrBadNumber, ErrShortRow, ...), possibly wrapped.
type ParseError struct {
	File        string // the source's name, as given to the reader
	Line        int64  // 1-based line number; 0 when not tied to a line
	Column      string // the column's header text, when tied to a cell
	ColumnIndex int    // 1-based column number; 0 when not tied to a cell
	Offset      int64  // byte offset in the input of the cell (or line)
	Value       string // the offending text, shortened to 40 bytes
	Err         error
	// TooMany is set when this bad row exceeded ReadOptions.MaxBadRows.
	TooMany bool
}

// Error formats the error as "file:line: column 3 "MAP" (byte 120): value "x": malformed number".
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.FormatInt(e.Line, 10))
	}
	b.WriteString(": ")
	if e.ColumnIndex > 0 {
		b.WriteString("column ")
		b.WriteString(strconv.Itoa(e.ColumnIndex))
		b.WriteString(" ")
		b.WriteString(strconv.Quote(e.Column))
		b.WriteString(" ")
	}
	b.WriteString("(byte ")
	b.WriteString(strconv.FormatInt(e.Offset, 10))
	b.WriteString(")")
	if e.Value != "" || errors.Is(e.Err, ErrBadNumber) {
		b.WriteString(": value ")
		b.WriteString(strconv.Quote(e.Value))
	}
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	if e.TooMany {
		b.WriteString(" (")
		b.WriteString(ErrTooManyBadRows.Error())
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns Err, and ErrTooManyBadRows when TooMany is set.
func (e *ParseError) Unwrap() []error {
	if e.TooMany {
		return []error{e.Err, ErrTooManyBadRows}
	}
	return []error{e.Err}
}

// MissingColumnsError says which required channels a log lacks and which
// headers it has, so that a user can add an alias. It matches
// ErrMissingColumns with errors.Is.
type MissingColumnsError struct {
	File    string
	Format  string
	Missing []dyno.Channel
	Found   []string // the header names, as written in the file
	// Report says what the reader made of the columns it found (nil when
	// it never got that far).
	Report *dyno.ChannelReport
}

// Error lists the missing channels and the headers found.
func (e *MissingColumnsError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	b.WriteString(": ")
	b.WriteString(ErrMissingColumns.Error())
	b.WriteString(" (format ")
	b.WriteString(e.Format)
	b.WriteString("): ")
	for i, c := range e.Missing {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.String())
	}
	b.WriteString("; headers found: ")
	for i, h := range e.Found {
		if i > 0 {
			b.WriteString(", ")
		}
		if i == 60 {
			b.WriteString("... (" + strconv.Itoa(len(e.Found)-60) + " more)")
			break
		}
		b.WriteString(strconv.Quote(h))
	}
	return b.String()
}

// Is reports whether target is ErrMissingColumns.
func (e *MissingColumnsError) Is(target error) bool { return target == ErrMissingColumns }

func shorten(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// errParallelStopped is returned by Next on a parallel Reader after Close.
var errParallelStopped = errors.New("dynolog: reader closed")
