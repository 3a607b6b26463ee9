package ve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrHashMismatch reports that a table handed to Rollback is not the one
// its manifest recorded.
var ErrHashMismatch = errors.New("ve: hash mismatch")

// ErrPrecision reports a base table whose values carry more decimals than an
// exact Apply/Rollback can guarantee.
var ErrPrecision = errors.New("ve: base table precision")

// MaxBasePrecision is the most decimal places a base table may carry for
// Apply; the applied table carries three more, which keeps Rollback exact.
const MaxBasePrecision = 6

// multiplierPrecision is the decimals of an effective correction table.
const multiplierPrecision = 12

// Limits bound what one Apply may do to a calibration.
type Limits struct {
	// MaxAdjustPercent clamps each multiplier to 1 +/- this percent. Zero
	// means 7 (the predecessor's VEApply default); negative disables it.
	MaxAdjustPercent float64
	// MinVE and MaxVE are absolute rails for the result; both zero means
	// none.
	MinVE, MaxVE float64
	// Baseline is the calibration the tune started from. With
	// MaxCumulativePercent > 0 no cell may end further than that percent from
	// its baseline value, however many corrections were applied since.
	Baseline             *Table
	MaxCumulativePercent float64
}

// ApplyOptions configure Apply.
type ApplyOptions struct {
	Limits Limits
	// Settings are the analyzer settings that produced the correction,
	// recorded in the manifest as they are.
	Settings json.RawMessage
	Comment  string
	// Now stamps the manifest; nil means time.Now.
	Now func() time.Time
}

// Manifest is the provenance of one Apply: what went in, what came out,
// and everything needed to undo it exactly.
type Manifest struct {
	Schema    string    `json:"schema"` // "dynoai.apply@1"
	Operation string    `json:"operation"`
	AppliedAt time.Time `json:"applied_at"`
	Version   string    `json:"library_version"`

	BaseSHA256       string `json:"base_sha256"`
	RequestedSHA256  string `json:"requested_correction_sha256"`
	CorrectionSHA256 string `json:"effective_correction_sha256"`
	ResultSHA256     string `json:"result_sha256"`
	BasePrecision    int    `json:"base_precision"`
	ResultPrecision  int    `json:"result_precision"`

	MaxAdjustPercent     float64 `json:"max_adjust_percent"`
	MinVE                float64 `json:"min_ve,omitempty"`
	MaxVE                float64 `json:"max_ve,omitempty"`
	BaselineSHA256       string  `json:"baseline_sha256,omitempty"`
	MaxCumulativePercent float64 `json:"max_cumulative_percent,omitempty"`

	CellsChanged int `json:"cells_changed"`
	Clamped      int `json:"cells_clamped"`
	Railed       int `json:"cells_railed"`
	Capped       int `json:"cells_capped"`

	Settings json.RawMessage `json:"settings,omitempty"`
	Comment  string          `json:"comment,omitempty"`
}

// CellChange is one cell of an Apply's diff.
type CellChange struct {
	RPM, MAP   float64
	Before     float64
	After      float64
	Multiplier float64 // the effective multiplier
	Limited    string  `json:",omitempty"` // "", "clamp", "rail" or "cap"
}

// Applied is the outcome of Apply: the new table, the correction actually
// applied after the limits, the manifest, and the diff.
type Applied struct {
	Table     *Table
	Effective *Table
	Manifest  Manifest
	Diff      []CellChange
}

// Apply multiplies base by correction (a multiplier per cell; an empty cell
// means 1) within the limits, and returns the result with its provenance.
// It changes neither input. Use Rollback with the result, Effective and the
// manifest to get base back bit for bit. A dry run is Apply without saving
// what it returns: the Diff says what would change.
func Apply(base, correction *Table, opts ApplyOptions) (*Applied, error) {
	if err := base.Validate(); err != nil {
		return nil, fmt.Errorf("ve: base table: %w", err)
	}
	if err := correction.Validate(); err != nil {
		return nil, fmt.Errorf("ve: correction table: %w", err)
	}
	if !base.SameAxes(correction) {
		return nil, fmt.Errorf("%w: base is %dx%d over RPM %v / MAP %v, correction is %dx%d over RPM %v / MAP %v",
			ErrShape, base.Rows(), base.Cols(), base.RPM, base.MAP, correction.Rows(), correction.Cols(), correction.RPM, correction.MAP)
	}
	lim := opts.Limits
	if lim.MaxAdjustPercent == 0 {
		lim.MaxAdjustPercent = 7
	}
	if lim.MaxVE < lim.MinVE || math.IsNaN(lim.MinVE) || math.IsNaN(lim.MaxVE) {
		return nil, fmt.Errorf("ve: VE rails %v..%v are empty", lim.MinVE, lim.MaxVE)
	}
	if lim.MaxCumulativePercent < 0 || (lim.MaxCumulativePercent > 0 && lim.Baseline == nil) {
		return nil, fmt.Errorf("ve: a cumulative cap needs a non-negative percent and a baseline table")
	}
	if lim.Baseline != nil && !lim.Baseline.SameAxes(base) {
		return nil, fmt.Errorf("%w: baseline table axes differ from the base table's", ErrShape)
	}
	p, err := basePrecision(base)
	if err != nil {
		return nil, err
	}
	b := base.Clone()
	b.Precision = p
	out := b.Clone()
	out.Precision = p + 3
	eff := MustTable(base.RPM, base.MAP, 1)
	eff.Precision = multiplierPrecision
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	m := Manifest{
		Schema: "dynoai.apply@1", Operation: "apply", AppliedAt: now().UTC(), Version: Version,
		BaseSHA256: b.Hash(), RequestedSHA256: correction.Hash(),
		BasePrecision: p, ResultPrecision: out.Precision,
		MaxAdjustPercent: lim.MaxAdjustPercent, MinVE: lim.MinVE, MaxVE: lim.MaxVE,
		MaxCumulativePercent: lim.MaxCumulativePercent,
		Settings:             opts.Settings, Comment: opts.Comment,
	}
	if lim.Baseline != nil {
		m.BaselineSHA256 = lim.Baseline.Hash()
	}
	var diff []CellChange
	for i, x := range b.Values {
		mult := correction.Values[i]
		if !Has(x) || !Has(mult) || x == 0 {
			continue
		}
		if mult <= 0 || math.IsInf(mult, 0) {
			r, c := i/b.Cols(), i%b.Cols()
			return nil, fmt.Errorf("ve: correction at RPM %v / MAP %v is %v; a multiplier must be positive", b.RPM[r], b.MAP[c], mult)
		}
		limited := ""
		if lim.MaxAdjustPercent > 0 {
			lo, hi := 1-lim.MaxAdjustPercent/100, 1+lim.MaxAdjustPercent/100
			if mult < lo || mult > hi {
				mult = math.Max(lo, math.Min(hi, mult))
				limited = "clamp"
				m.Clamped++
			}
		}
		y := x * mult
		if lim.MaxVE > lim.MinVE && (y < lim.MinVE || y > lim.MaxVE) {
			y = math.Max(lim.MinVE, math.Min(lim.MaxVE, y))
			limited = "rail"
			m.Railed++
		}
		if lim.MaxCumulativePercent > 0 {
			if bl := lim.Baseline.Values[i]; Has(bl) && bl > 0 {
				lo, hi := bl*(1-lim.MaxCumulativePercent/100), bl*(1+lim.MaxCumulativePercent/100)
				if y < lo || y > hi {
					y = math.Max(lo, math.Min(hi, y))
					limited = "cap"
					m.Capped++
				}
			}
		}
		meff := roundDecimal(y/x, multiplierPrecision)
		if meff <= 0 {
			meff = math.SmallestNonzeroFloat64 // a rail at 0: keep the multiplier invertible
		}
		eff.Values[i] = meff
		yv := roundDecimal(x*meff, out.Precision)
		out.Values[i] = yv
		if yv != x {
			m.CellsChanged++
			r, c := i/b.Cols(), i%b.Cols()
			diff = append(diff, CellChange{RPM: b.RPM[r], MAP: b.MAP[c], Before: x, After: yv, Multiplier: meff, Limited: limited})
		}
	}
	m.CorrectionSHA256 = eff.Hash()
	m.ResultSHA256 = out.Hash()
	// Prove the inverse before handing the result out: a result that could
	// not be rolled back exactly is an error, not a surprise later.
	if _, err := Rollback(out, eff, &m); err != nil {
		return nil, fmt.Errorf("ve: apply would not be exactly reversible: %w", err)
	}
	return &Applied{Table: out, Effective: eff, Manifest: m, Diff: diff}, nil
}

// basePrecision returns the fewest decimals (at least the table's own
// Precision, at most MaxBasePrecision) at which every value of t prints and
// parses back to itself.
func basePrecision(t *Table) (int, error) {
	for p := min(t.Precision, MaxBasePrecision); p <= MaxBasePrecision; p++ {
		ok := true
		for _, v := range t.Values {
			if Has(v) && roundDecimal(v, p) != v {
				ok = false
				break
			}
		}
		if ok {
			return p, nil
		}
	}
	for i, v := range t.Values {
		if Has(v) && roundDecimal(v, MaxBasePrecision) != v {
			r, c := i/t.Cols(), i%t.Cols()
			return 0, fmt.Errorf("%w: value %v at RPM %v / MAP %v has more than %d decimals; round the table first (Table.Round)",
				ErrPrecision, v, t.RPM[r], t.MAP[c], MaxBasePrecision)
		}
	}
	return MaxBasePrecision, nil
}

// Rollback undoes an Apply: given the applied table, the effective
// correction and the manifest, it returns the base table bit for bit. It
// refuses with ErrHashMismatch when the applied table or the correction is
// not the one the manifest recorded, or when the result would not hash to
// the recorded base.
func Rollback(applied, effective *Table, m *Manifest) (*Table, error) {
	if m.Operation != "apply" {
		return nil, fmt.Errorf("ve: manifest operation is %q, not \"apply\"", m.Operation)
	}
	if err := applied.Validate(); err != nil {
		return nil, fmt.Errorf("ve: applied table: %w", err)
	}
	if err := effective.Validate(); err != nil {
		return nil, fmt.Errorf("ve: correction table: %w", err)
	}
	a := applied.Clone()
	a.Precision = m.ResultPrecision
	if h := a.Hash(); h != m.ResultSHA256 {
		return nil, fmt.Errorf("%w: applied table hashes to %s, the manifest recorded %s (was it edited after Apply?)", ErrHashMismatch, h, m.ResultSHA256)
	}
	e := effective.Clone()
	e.Precision = multiplierPrecision
	if h := e.Hash(); h != m.CorrectionSHA256 {
		return nil, fmt.Errorf("%w: correction hashes to %s, the manifest recorded %s", ErrHashMismatch, h, m.CorrectionSHA256)
	}
	if !a.SameAxes(e) {
		return nil, fmt.Errorf("%w: applied and correction tables have different axes", ErrShape)
	}
	out := a.Clone()
	out.Precision = m.BasePrecision
	for i, y := range a.Values {
		mult := e.Values[i]
		if !Has(y) {
			continue
		}
		if !Has(mult) {
			mult = 1
		}
		out.Values[i] = roundDecimal(y/mult, m.BasePrecision)
	}
	if h := out.Hash(); h != m.BaseSHA256 {
		return nil, fmt.Errorf("%w: the restored table hashes to %s, not the recorded base %s", ErrHashMismatch, h, m.BaseSHA256)
	}
	return out, nil
}

// ApplyFileNames are the names an apply of the cylinder called cyl is
// stored under, in the order of Applied.Encode: the applied table, the
// effective correction and the manifest.
func ApplyFileNames(cyl string) [3]string {
	return [3]string{"VE_Applied_" + cyl + ".csv", "VE_Effective_" + cyl + ".csv", "VE_Apply_" + cyl + ".manifest.json"}
}

// Encode returns the apply's three files in the order of ApplyFileNames:
// the applied table and the effective correction as CSV at their
// precisions, and the manifest as indented JSON. Rollback reads them back.
func (a *Applied) Encode() ([3][]byte, error) {
	var out [3][]byte
	for i, t := range []*Table{a.Table, a.Effective} {
		var b bytes.Buffer
		if err := t.WriteCSV(&b, CSVFormat{Cell: CellFormat{Decimals: t.Precision}}); err != nil {
			return out, err
		}
		out[i] = b.Bytes()
	}
	man, err := json.MarshalIndent(a.Manifest, "", "  ")
	if err != nil {
		return out, err
	}
	out[2] = man
	return out, nil
}
