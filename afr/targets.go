package afr

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/dynoai/dynoai/dyno"
)

// Targets is a target-AFR table: engine speed (rows, rev/min) by manifold
// pressure (columns, kPa). At interpolates bilinearly inside the grid and
// holds the edge values outside it (no extrapolation: a target beyond the
// table is the nearest edge's, never a made-up slope). Targets implements
// dyno.Surface, so the simulator can take it as the ECU's target table. A
// Targets is immutable and safe for concurrent use.
type Targets struct {
	rpm, mapKPa []float64
	v           []float64 // len(rpm) × len(mapKPa), row-major by RPM
	name        string
}

var _ dyno.Surface = (*Targets)(nil)

// ErrInvalidTargets is wrapped by every error about a target table's content.
var ErrInvalidTargets = errors.New("afr: invalid target table")

// TargetsError locates a problem in a target table. Line and Column are
// 1-based positions in a CSV file (Column counts bytes, as encoding/csv
// does); Row and Col are 0-based table indexes (-1 for an axis). Any of them
// may be zero or -1 when it does not apply. errors.Is(err, ErrInvalidTargets)
// holds.
type TargetsError struct {
	Name         string // file name, when known
	Line, Column int
	Row, Col     int
	Msg          string
}

func (e *TargetsError) Error() string {
	var b strings.Builder
	b.WriteString("afr: target table")
	if e.Name != "" {
		b.WriteString(" " + e.Name)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	} else if e.Row >= 0 || e.Col >= 0 {
		fmt.Fprintf(&b, " [row %d, col %d]", e.Row, e.Col)
	}
	return b.String() + ": " + e.Msg
}

// Unwrap returns ErrInvalidTargets.
func (e *TargetsError) Unwrap() error { return ErrInvalidTargets }

// TargetOptions say how to read and check a target table. The zero value
// reads AFR values for gasoline.
type TargetOptions struct {
	// Fuel sets the accepted value range (its MinAFR..MaxAFR) and the
	// ratio Lambda tables are converted with. The zero Fuel is Gasoline.
	Fuel Fuel
	// Lambda says the values are lambda rather than AFR; they are stored
	// converted to AFR.
	Lambda bool
	// Name names the table in error messages, typically its file name.
	Name string
}

// NewTargets returns a table with RPM axis rpm, MAP axis mapKPa and
// values[i][j] the target at rpm[i], mapKPa[j]. The axes must be finite,
// positive and strictly increasing (one point is allowed: the table is then
// constant along that axis); every value must be within the fuel's AFR range.
// The slices are copied.
func NewTargets(rpm, mapKPa []float64, values [][]float64, opt TargetOptions) (*Targets, error) {
	fuel := opt.Fuel.orGasoline()
	if err := fuel.Validate(); err != nil {
		return nil, err
	}
	bad := func(row, col int, format string, a ...any) error {
		return &TargetsError{Name: opt.Name, Row: row, Col: col, Msg: fmt.Sprintf(format, a...)}
	}
	if err := checkAxis("RPM", rpm); err != nil {
		return nil, bad(-1, -1, "%v", err)
	}
	if err := checkAxis("MAP", mapKPa); err != nil {
		return nil, bad(-1, -1, "%v", err)
	}
	if len(values) != len(rpm) {
		return nil, bad(-1, -1, "%d value rows for %d RPM points", len(values), len(rpm))
	}
	t := &Targets{rpm: slices.Clone(rpm), mapKPa: slices.Clone(mapKPa), v: make([]float64, 0, len(rpm)*len(mapKPa)), name: opt.Name}
	for i, row := range values {
		if len(row) != len(mapKPa) {
			return nil, bad(i, -1, "%d values for %d MAP points", len(row), len(mapKPa))
		}
		for j, v := range row {
			if opt.Lambda {
				v = fuel.AFR(v)
			}
			if math.IsNaN(v) || math.IsInf(v, 0) || v < fuel.MinAFR || v > fuel.MaxAFR {
				return nil, bad(i, j, "target %v at %v rpm, %v kPa is outside %s's AFR range [%.4g, %.4g]",
					v, rpm[i], mapKPa[j], fuel.Name, fuel.MinAFR, fuel.MaxAFR)
			}
			t.v = append(t.v, v)
		}
	}
	return t, nil
}

func checkAxis(name string, ax []float64) error {
	if len(ax) == 0 {
		return fmt.Errorf("the %s axis is empty", name)
	}
	for i, v := range ax {
		if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
			return fmt.Errorf("%s axis point %d is %v, want a finite positive number", name, i, v)
		}
		if i > 0 && v <= ax[i-1] {
			return fmt.Errorf("%s axis is not strictly increasing at point %d (%v after %v)", name, i, v, ax[i-1])
		}
	}
	return nil
}

// defaultTargetsByMAP is DefaultTargets' value per MAP column, 20..100 kPa.
var defaultTargetsByMAP = [...]float64{14.6, 14.6, 14.6, 14.4, 14.0, 13.6, 13.2, 13.0, 12.9}

// DefaultTargets returns a gasoline target table for a Harley-style V-twin
// on the RPM axis 1500..6500 step 500 and the MAP axis 20..100 step 10 kPa:
// 14.6 (lambda 0.99, economy cruise) up to 40 kPa, richening through 14.4,
// 14.0, 13.6 and 13.2 to 13.0 at 90 kPa and 12.9 at 100 kPa (lambda 0.88,
// best power), with the WOT columns (90 and 100 kPa) 0.1 richer from
// 5000 rev/min up for exhaust-valve temperature. These are common
// closed-loop-cruise / open-loop-power targets, not a product's table.
func DefaultTargets() *Targets {
	rpm := make([]float64, 0, 11)
	for r := 1500.0; r <= 6500; r += 500 {
		rpm = append(rpm, r)
	}
	mp := make([]float64, 0, len(defaultTargetsByMAP))
	for m := 20.0; m <= 100; m += 10 {
		mp = append(mp, m)
	}
	vals := make([][]float64, len(rpm))
	for i, r := range rpm {
		vals[i] = slices.Clone(defaultTargetsByMAP[:])
		if r >= 5000 {
			vals[i][7] -= 0.1
			vals[i][8] -= 0.1
		}
	}
	t, err := NewTargets(rpm, mp, vals, TargetOptions{Name: "default"})
	if err != nil {
		panic(err) // the literal above is valid; a test holds it so
	}
	return t
}

// DefaultTargetsFor returns DefaultTargets for fuel f: the same lambdas
// (0.99 at cruise to 0.88 at full load) in f's air-fuel ratio. The zero
// Fuel means gasoline. The table's String says what it is, for reports.
func DefaultTargetsFor(f Fuel) *Targets {
	t := DefaultTargets()
	if f.Stoich == 0 {
		return t
	}
	k := f.Stoich / Gasoline().Stoich
	for i := range t.v {
		t.v[i] *= k
	}
	t.name = "default targets for " + f.Name
	return t
}

// String names the table for reports: its name, or "target table".
func (t *Targets) String() string {
	if t.name == "" {
		return "target table"
	}
	return "target table " + t.name
}

// RPM returns a copy of the RPM axis.
func (t *Targets) RPM() []float64 { return slices.Clone(t.rpm) }

// MAP returns a copy of the MAP axis.
func (t *Targets) MAP() []float64 { return slices.Clone(t.mapKPa) }

// Value returns the stored target at RPM index i and MAP index j.
func (t *Targets) Value(i, j int) float64 { return t.v[i*len(t.mapKPa)+j] }

// At returns the target AFR at rpm and mapKPa: bilinear inside the grid, the
// nearest edge outside it. A Missing input gives Missing.
func (t *Targets) At(rpm, mapKPa float64) float64 {
	if math.IsNaN(rpm) || math.IsNaN(mapKPa) {
		return dyno.Missing
	}
	i0, i1, fr := bracket(t.rpm, rpm)
	j0, j1, fm := bracket(t.mapKPa, mapKPa)
	n := len(t.mapKPa)
	a := t.v[i0*n+j0]*(1-fm) + t.v[i0*n+j1]*fm
	b := t.v[i1*n+j0]*(1-fm) + t.v[i1*n+j1]*fm
	return a*(1-fr) + b*fr
}

// bracket returns the indexes bracketing x on ax and x's fraction between
// them, clamped to the axis ends.
func bracket(ax []float64, x float64) (lo, hi int, frac float64) {
	n := len(ax)
	if n == 1 || x <= ax[0] {
		return 0, 0, 0
	}
	if x >= ax[n-1] {
		return n - 1, n - 1, 0
	}
	hi, _ = slices.BinarySearch(ax, x) // ax[hi-1] < x <= ax[hi]
	lo = hi - 1
	return lo, hi, (x - ax[lo]) / (ax[hi] - ax[lo])
}

// LoadTargetsCSV reads a target table from the CSV file at path (see
// ReadTargetsCSV); opt.Name defaults to path.
func LoadTargetsCSV(path string, opt TargetOptions) (*Targets, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("afr: target table: %w", err)
	}
	defer f.Close()
	if opt.Name == "" {
		opt.Name = path
	}
	return ReadTargetsCSV(f, opt)
}

// MaxTargetAxis bounds the points of each axis ReadTargetsCSV accepts.
const MaxTargetAxis = 1024

// ReadTargetsCSV reads an RPM-major target table, the layout of the
// predecessor's grid files:
//
//	RPM,20,30,40,...      header: a label cell, then the MAP axis in kPa
//	1500,14.6,14.6,...    one row per RPM point: the RPM, then the targets
//
// The label cell may hold anything (RPM, RPM\kPa, empty). Cells are trimmed,
// one leading apostrophe (the CSV-injection guard of spreadsheet exports) is
// dropped, empty lines and lines starting with # are skipped. Every cell
// must be present and numeric: an error names its line and column.
func ReadTargetsCSV(r io.Reader, opt TargetOptions) (*Targets, error) {
	fuel := opt.Fuel.orGasoline()
	if err := fuel.Validate(); err != nil {
		return nil, err
	}
	conv := func(v float64) float64 {
		if opt.Lambda {
			return fuel.AFR(v)
		}
		return v
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	fail := func(line, col int, format string, a ...any) error {
		return &TargetsError{Name: opt.Name, Line: line, Column: col, Row: -1, Col: -1, Msg: fmt.Sprintf(format, a...)}
	}
	var (
		mapAx  []float64
		rpmAx  []float64
		values [][]float64
	)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fail(pe.Line, pe.Column, "%v", pe.Err)
			}
			return nil, fmt.Errorf("afr: target table %s: %w", opt.Name, err)
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		num := func(k int, what string) (float64, error) {
			line, col := cr.FieldPos(k)
			s := strings.TrimSpace(rec[k])
			s = strings.TrimPrefix(s, "'")
			if s == "" {
				return 0, fail(line, col, "empty %s", what)
			}
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return 0, fail(line, col, "%s %q is not a finite number", what, s)
			}
			return v, nil
		}
		if mapAx == nil {
			if len(rec) < 2 {
				line, col := cr.FieldPos(0)
				return nil, fail(line, col, "header has %d cells, want a label then at least one MAP value", len(rec))
			}
			for k := 1; k < len(rec); k++ {
				v, err := num(k, "MAP axis value")
				if err != nil {
					return nil, err
				}
				mapAx = append(mapAx, v)
			}
			if len(mapAx) > MaxTargetAxis {
				line, col := cr.FieldPos(0)
				return nil, fail(line, col, "%d MAP points, more than %d", len(mapAx), MaxTargetAxis)
			}
			if err := checkAxis("MAP", mapAx); err != nil {
				line, col := cr.FieldPos(0)
				return nil, fail(line, col, "%v", err)
			}
			continue
		}
		line, col := cr.FieldPos(0)
		if len(rec) != len(mapAx)+1 {
			return nil, fail(line, col, "row has %d cells, want %d (RPM and %d targets)", len(rec), len(mapAx)+1, len(mapAx))
		}
		if len(rpmAx) >= MaxTargetAxis {
			return nil, fail(line, col, "more than %d RPM rows", MaxTargetAxis)
		}
		rv, err := num(0, "RPM")
		if err != nil {
			return nil, err
		}
		if !(rv > 0) {
			return nil, fail(line, col, "RPM %v is not positive", rv)
		}
		if n := len(rpmAx); n > 0 && rv <= rpmAx[n-1] {
			return nil, fail(line, col, "RPM %v does not increase (previous row %v)", rv, rpmAx[n-1])
		}
		row := make([]float64, len(mapAx))
		for k := range row {
			if row[k], err = num(k+1, "target"); err != nil {
				return nil, err
			}
			if v := conv(row[k]); v < fuel.MinAFR || v > fuel.MaxAFR {
				line, col := cr.FieldPos(k + 1)
				return nil, fail(line, col, "target %v at %v rpm, %v kPa is outside %s's AFR range [%.4g, %.4g]",
					v, rv, mapAx[k], fuel.Name, fuel.MinAFR, fuel.MaxAFR)
			}
		}
		rpmAx = append(rpmAx, rv)
		values = append(values, row)
	}
	if mapAx == nil {
		return nil, &TargetsError{Name: opt.Name, Row: -1, Col: -1, Msg: "no header line"}
	}
	if len(rpmAx) == 0 {
		return nil, &TargetsError{Name: opt.Name, Row: -1, Col: -1, Msg: "no RPM rows"}
	}
	return NewTargets(rpmAx, mapAx, values, opt)
}

// WriteCSV writes t in the layout ReadTargetsCSV reads, header label "RPM",
// values with the fewest digits that read back exactly.
func (t *Targets) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	rec := make([]string, len(t.mapKPa)+1)
	rec[0] = "RPM"
	for j, m := range t.mapKPa {
		rec[j+1] = strconv.FormatFloat(m, 'g', -1, 64)
	}
	if err := cw.Write(rec); err != nil {
		return err
	}
	for i, r := range t.rpm {
		rec[0] = strconv.FormatFloat(r, 'g', -1, 64)
		for j := range t.mapKPa {
			rec[j+1] = strconv.FormatFloat(t.Value(i, j), 'g', -1, 64)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
