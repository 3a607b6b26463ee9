package ve

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Layout is the orientation of a grid CSV.
type Layout int

const (
	// RPMMajor has one row per RPM bin and one column per MAP bin; the header
	// is "RPM,<kPa>...". It is what the predecessor's toolkit reads and writes.
	RPMMajor Layout = iota
	// MAPMajor has one row per MAP bin and one column per RPM bin; the header
	// is "MAP_kPa,<rpm>...", as in Harley tune tables.
	MAPMajor
)

// TableError reports a problem at a place in a grid CSV.
type TableError struct {
	Name   string // file name, if known
	Line   int    // 1-based
	Column int    // 1-based; 0 when the whole line is at fault
	Msg    string
}

func (e *TableError) Error() string {
	where := e.Name
	if where == "" {
		where = "table"
	}
	if e.Column > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", where, e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", where, e.Line, e.Msg)
}

// ErrTable matches every *TableError with errors.Is.
var ErrTable = errors.New("ve: bad table file")

// Is makes errors.Is(err, ErrTable) true for table errors.
func (e *TableError) Is(target error) bool { return target == ErrTable }

// MaxTableBytes bounds what ReadTableCSV reads: a VE table is a few KiB.
const MaxTableBytes = 4 << 20

// ReadTableCSV parses a grid CSV in either layout, telling them apart by the
// header's first cell ("RPM..." is RPMMajor; "MAP...", "kPa..." or "Load..."
// is MAPMajor). Cells may carry the CSV-injection guard "'" or a leading "+";
// an empty cell or "nan" is an empty cell. The delimiter is a comma, tab or
// semicolon, whichever the header uses. name is used in errors.
func ReadTableCSV(r io.Reader, name string) (*Table, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxTableBytes+1))
	if err != nil {
		return nil, fmt.Errorf("ve: reading %s: %w", name, err)
	}
	if len(data) > MaxTableBytes {
		return nil, &TableError{Name: name, Line: 1, Msg: fmt.Sprintf("file is larger than %d bytes", MaxTableBytes)}
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), MaxTableBytes)
	var (
		lineNo   int
		header   []string
		delim    string
		layout   Layout
		cols     []float64
		rowAxis  []float64
		rows     [][]float64
		decimals int
	)
	for sc.Scan() {
		lineNo++
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		if header == nil {
			delim = sniffDelimiter(line)
			header = splitTrim(line, delim)
			corner := strings.ToLower(strings.Trim(header[0], "\"' "))
			switch {
			case strings.HasPrefix(corner, "rpm"):
				layout = RPMMajor
			case strings.HasPrefix(corner, "map"), strings.HasPrefix(corner, "kpa"), strings.HasPrefix(corner, "load"):
				layout = MAPMajor
			default:
				return nil, &TableError{Name: name, Line: lineNo, Column: 1,
					Msg: fmt.Sprintf("first header cell %q names neither RPM rows nor MAP rows (want \"RPM\" or \"MAP_kPa\")", header[0])}
			}
			if len(header) < 2 {
				return nil, &TableError{Name: name, Line: lineNo, Msg: "header has no axis values"}
			}
			for k, cell := range header[1:] {
				v, ok, _ := parseCell(cell)
				if !ok {
					return nil, &TableError{Name: name, Line: lineNo, Column: k + 2, Msg: fmt.Sprintf("axis value %q is not a number", cell)}
				}
				cols = append(cols, v)
			}
			continue
		}
		cells := splitTrim(line, delim)
		if len(cells) != len(header) {
			return nil, &TableError{Name: name, Line: lineNo,
				Msg: fmt.Sprintf("row has %d cells, header has %d", len(cells), len(header))}
		}
		a, ok, _ := parseCell(cells[0])
		if !ok {
			return nil, &TableError{Name: name, Line: lineNo, Column: 1, Msg: fmt.Sprintf("axis value %q is not a number", cells[0])}
		}
		rowAxis = append(rowAxis, a)
		vals := make([]float64, len(cols))
		for k, cell := range cells[1:] {
			v, ok, d := parseCell(cell)
			if !ok {
				return nil, &TableError{Name: name, Line: lineNo, Column: k + 2, Msg: fmt.Sprintf("cell %q is not a number", cell)}
			}
			vals[k] = v
			decimals = max(decimals, d)
		}
		rows = append(rows, vals)
	}
	if err := sc.Err(); err != nil {
		return nil, &TableError{Name: name, Line: lineNo + 1, Msg: err.Error()}
	}
	if header == nil {
		return nil, &TableError{Name: name, Line: 1, Msg: "empty file"}
	}
	if len(rows) == 0 {
		return nil, &TableError{Name: name, Line: lineNo, Msg: "no data rows"}
	}
	var t *Table
	var err2 error
	if layout == RPMMajor {
		t, err2 = NewTable(rowAxis, cols, math.NaN())
	} else {
		t, err2 = NewTable(cols, rowAxis, math.NaN())
	}
	if err2 != nil {
		return nil, &TableError{Name: name, Line: 1, Msg: err2.Error()}
	}
	for r, vals := range rows {
		for c, v := range vals {
			if layout == RPMMajor {
				t.Set(r, c, v)
			} else {
				t.Set(c, r, v)
			}
		}
	}
	t.Precision = min(decimals, MaxPrecision)
	return t, nil
}

func sniffDelimiter(header string) string {
	best, bestN := ",", 0
	for _, d := range []string{",", "\t", ";"} {
		if n := strings.Count(header, d); n > bestN {
			best, bestN = d, n
		}
	}
	return best
}

func splitTrim(line, delim string) []string {
	parts := strings.Split(line, delim)
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return parts
}

// parseCell parses one grid cell, returning the value (NaN for an empty
// cell), whether it parsed, and how many decimals it was written with.
func parseCell(s string) (float64, bool, int) {
	s = strings.Trim(strings.TrimSpace(s), "\"")
	s = strings.TrimPrefix(s, "'")
	s = strings.TrimPrefix(s, "+")
	if s == "" || strings.EqualFold(s, "nan") || strings.EqualFold(s, "n/a") {
		return math.NaN(), true, 0
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, false, 0
	}
	d := 0
	if i := strings.IndexByte(s, '.'); i >= 0 && !strings.ContainsAny(s, "eE") {
		d = len(s) - i - 1
	}
	return v, true, d
}

// CellFormat says how grid cells are printed.
type CellFormat struct {
	Decimals int  // digits after the point
	Signed   bool // always print a sign, as "%+.2f"
	// Guard prefixes a cell that starts with = + - or @ with "'", the
	// spreadsheet-injection guard the predecessor writes.
	Guard bool
}

// Format prints one cell; an empty cell (NaN) is "".
func (f CellFormat) Format(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	var b []byte
	if f.Signed && (v > 0 || (v == 0 && !math.Signbit(v))) {
		b = append(b, '+')
	}
	b = strconv.AppendFloat(b, v, 'f', f.Decimals, 64)
	if f.Guard && len(b) > 0 && (b[0] == '=' || b[0] == '+' || b[0] == '-' || b[0] == '@') {
		return "'" + string(b)
	}
	return string(b)
}

// CSVFormat says how a grid CSV is laid out.
type CSVFormat struct {
	Layout Layout
	Cell   CellFormat
	CRLF   bool   // end lines with CRLF (every line, the last included)
	Corner string // header's first cell; "RPM" or "MAP_kPa" when empty
}

// WriteCSV writes t as a grid CSV. Axis values are printed as integers when
// they are whole numbers.
func (t *Table) WriteCSV(w io.Writer, f CSVFormat) error {
	bw := bufio.NewWriter(w)
	eol := "\n"
	if f.CRLF {
		eol = "\r\n"
	}
	rowAxis, colAxis := t.RPM, t.MAP
	corner := "RPM"
	if f.Layout == MAPMajor {
		rowAxis, colAxis = t.MAP, t.RPM
		corner = "MAP_kPa"
	}
	if f.Corner != "" {
		corner = f.Corner
	}
	bw.WriteString(corner)
	for _, c := range colAxis {
		bw.WriteByte(',')
		bw.WriteString(formatAxis(c))
	}
	bw.WriteString(eol)
	for r, a := range rowAxis {
		bw.WriteString(formatAxis(a))
		for c := range colAxis {
			bw.WriteByte(',')
			v := t.Get(r, c)
			if f.Layout == MAPMajor {
				v = t.Get(c, r)
			}
			bw.WriteString(f.Cell.Format(v))
		}
		bw.WriteString(eol)
	}
	return bw.Flush()
}

func formatAxis(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// PasteBlock returns the table's values as a tab-separated block, one line
// per RPM row, no axis labels and no final newline: what Power Vision and
// similar tuning software accept when pasted onto a selected table.
func (t *Table) PasteBlock(f CellFormat) string {
	var b strings.Builder
	for i := range t.RPM {
		if i > 0 {
			b.WriteByte('\n')
		}
		for j := range t.MAP {
			if j > 0 {
				b.WriteByte('\t')
			}
			b.WriteString(f.Format(t.Get(i, j)))
		}
	}
	return b.String()
}
