package ve

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
)

// Table is a grid of values over strictly increasing RPM (rows) and MAP
// (columns, kPa) axes: a VE table, a target-AFR table, a correction. A cell
// without a value holds NaN; use Has to test it.
//
// Precision is the number of decimal places the values carry (a table read
// from a file gets the largest count it saw). It decides how the table is
// written and hashed, and makes Apply and Rollback exact.
type Table struct {
	RPM       []float64
	MAP       []float64
	Values    []float64 // row-major: Values[i*len(MAP)+j] is (RPM[i], MAP[j])
	Precision int
}

// ErrAxis reports an axis that is empty, not finite or not strictly increasing.
var ErrAxis = errors.New("ve: bad axis")

// ErrShape reports tables or value slices whose shapes do not match.
var ErrShape = errors.New("ve: shape mismatch")

// MaxPrecision is the most decimal places a Table may carry.
const MaxPrecision = 12

// NewTable returns a table over the given axes with every cell set to fill.
// The axes are copied.
func NewTable(rpm, mapKPa []float64, fill float64) (*Table, error) {
	if err := checkAxis("RPM", rpm); err != nil {
		return nil, err
	}
	if err := checkAxis("MAP", mapKPa); err != nil {
		return nil, err
	}
	t := &Table{
		RPM:       append([]float64(nil), rpm...),
		MAP:       append([]float64(nil), mapKPa...),
		Values:    make([]float64, len(rpm)*len(mapKPa)),
		Precision: 4,
	}
	for i := range t.Values {
		t.Values[i] = fill
	}
	return t, nil
}

// MustTable is NewTable for axes known to be valid (literals in code); it
// panics on a bad axis.
func MustTable(rpm, mapKPa []float64, fill float64) *Table {
	t, err := NewTable(rpm, mapKPa, fill)
	if err != nil {
		panic(err)
	}
	return t
}

func checkAxis(name string, a []float64) error {
	if len(a) == 0 {
		return fmt.Errorf("%w: %s axis is empty", ErrAxis, name)
	}
	for i, v := range a {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: %s axis value %d is %v", ErrAxis, name, i, v)
		}
		if i > 0 && v <= a[i-1] {
			return fmt.Errorf("%w: %s axis is not strictly increasing at index %d (%v after %v)", ErrAxis, name, i, v, a[i-1])
		}
	}
	return nil
}

// Validate checks the axes and that Values has len(RPM)*len(MAP) entries.
func (t *Table) Validate() error {
	if err := checkAxis("RPM", t.RPM); err != nil {
		return err
	}
	if err := checkAxis("MAP", t.MAP); err != nil {
		return err
	}
	if len(t.Values) != len(t.RPM)*len(t.MAP) {
		return fmt.Errorf("%w: %d values for a %dx%d grid", ErrShape, len(t.Values), len(t.RPM), len(t.MAP))
	}
	if t.Precision < 0 || t.Precision > MaxPrecision {
		return fmt.Errorf("ve: precision %d outside 0..%d", t.Precision, MaxPrecision)
	}
	return nil
}

// Rows and Cols return the grid's dimensions.
func (t *Table) Rows() int { return len(t.RPM) }

// Cols returns the number of MAP columns.
func (t *Table) Cols() int { return len(t.MAP) }

// Get returns the value at row i (RPM) and column j (MAP).
func (t *Table) Get(i, j int) float64 { return t.Values[i*len(t.MAP)+j] }

// Set stores v at row i and column j.
func (t *Table) Set(i, j int, v float64) { t.Values[i*len(t.MAP)+j] = v }

// Has reports whether v is a value rather than an empty cell.
func Has(v float64) bool { return !math.IsNaN(v) }

// Clone returns a deep copy.
func (t *Table) Clone() *Table {
	c := *t
	c.RPM = append([]float64(nil), t.RPM...)
	c.MAP = append([]float64(nil), t.MAP...)
	c.Values = append([]float64(nil), t.Values...)
	return &c
}

// SameAxes reports whether u has exactly t's axes. Tables on different grids
// are never interpolated into each other.
func (t *Table) SameAxes(u *Table) bool {
	return equalFloats(t.RPM, u.RPM) && equalFloats(t.MAP, u.MAP)
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Equal reports whether u has t's axes and bit-identical values (empty cells
// equal each other).
func (t *Table) Equal(u *Table) bool {
	if !t.SameAxes(u) || len(t.Values) != len(u.Values) {
		return false
	}
	for i, v := range t.Values {
		w := u.Values[i]
		if math.IsNaN(v) != math.IsNaN(w) || (!math.IsNaN(v) && math.Float64bits(v) != math.Float64bits(w)) {
			return false
		}
	}
	return true
}

// At returns the bilinear interpolation of the table at (rpm, mapKPa). Outside
// the axes the edge value is held (no extrapolation). Empty cells among the
// four neighbours are skipped and the remaining weights renormalised; when all
// four are empty At returns NaN. At makes Table a dyno.Surface.
func (t *Table) At(rpm, mapKPa float64) float64 {
	i0, i1, fr := bracket(t.RPM, rpm)
	j0, j1, fm := bracket(t.MAP, mapKPa)
	w := [4]float64{(1 - fr) * (1 - fm), (1 - fr) * fm, fr * (1 - fm), fr * fm}
	v := [4]float64{t.Get(i0, j0), t.Get(i0, j1), t.Get(i1, j0), t.Get(i1, j1)}
	var sum, wsum float64
	for k := range v {
		if w[k] == 0 || math.IsNaN(v[k]) {
			continue
		}
		sum += w[k] * v[k]
		wsum += w[k]
	}
	if wsum == 0 {
		// The point sits exactly on empty cells; report empty.
		return math.NaN()
	}
	return sum / wsum
}

// bracket finds the interval of axis a around x: indexes i0 <= i1 and the
// fraction f in [0, 1] of the way from a[i0] to a[i1]. Outside the axis it
// returns the edge with f = 0.
func bracket(a []float64, x float64) (i0, i1 int, f float64) {
	n := len(a)
	if n == 1 || x <= a[0] || math.IsNaN(x) {
		return 0, 0, 0
	}
	if x >= a[n-1] {
		return n - 1, n - 1, 0
	}
	k := sort.SearchFloat64s(a, x) // a[k-1] < x <= a[k]
	if a[k] == x {
		return k, k, 0
	}
	return k - 1, k, (x - a[k-1]) / (a[k] - a[k-1])
}

// Nearest returns the index of the axis value nearest to x; ties go to the
// lower value and values off the axis go to the edge (the predecessor's
// binning rule).
func Nearest(a []float64, x float64) int {
	best, bestD := 0, math.Inf(1)
	for i, v := range a {
		if d := math.Abs(v - x); d < bestD {
			best, bestD = i, d
		}
	}
	return best
}

// Round returns v rounded to the table's precision: the float64 nearest to
// the decimal the table would write.
func (t *Table) Round(v float64) float64 { return roundDecimal(v, t.Precision) }

// roundDecimal rounds the exact binary value of v half-even to p decimals and
// returns the float64 nearest that decimal, as printing and parsing it would.
func roundDecimal(v float64, p int) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	var buf [64]byte
	b := strconv.AppendFloat(buf[:0], v, 'f', p, 64)
	r, _ := strconv.ParseFloat(string(b), 64)
	return r
}

// Hash returns the hex SHA-256 of the table's canonical form: the axes and
// the values printed at the table's precision, empty cells as "nan". Two
// tables that would be written identically hash identically.
func (t *Table) Hash() string {
	h := sha256.New()
	var buf []byte
	put := func(s string) { h.Write([]byte(s)) }
	put("dynoai.table@1\n")
	for _, a := range [][]float64{t.RPM, t.MAP} {
		for _, v := range a {
			buf = strconv.AppendFloat(buf[:0], v, 'g', -1, 64)
			buf = append(buf, ',')
			h.Write(buf)
		}
		put("\n")
	}
	for _, v := range t.Values {
		if math.IsNaN(v) {
			put("nan,")
			continue
		}
		buf = strconv.AppendFloat(buf[:0], v, 'f', t.Precision, 64)
		buf = append(buf, ',')
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))
}
