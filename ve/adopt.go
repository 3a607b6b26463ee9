package ve

import (
	"fmt"
	"time"
)

// Adopt records an apply that another tool made (the predecessor's
// VE_Before_Apply.csv and VE_Applied.csv, say) as if Apply had made it:
// the effective correction is the ratio applied/base of each cell, and the
// manifest hashes the base, the correction and the result, so Rollback
// undoes it bit for bit like any apply of this package. The manifest's
// limits are opts.Limits as given (the other tool's, for the record; Adopt
// does not enforce them) and its requested correction is the effective
// one.
//
// Adopt fails when the tables' axes differ, when a cell has a value in
// one table and not the other, or when a multiplier would not be positive.
// The multiplier keeps 12 decimals, so the base comes back exactly however
// coarsely the other tool rounded its result; Adopt proves it with
// Rollback before returning.
func Adopt(base, applied *Table, opts ApplyOptions) (*Applied, error) {
	if err := base.Validate(); err != nil {
		return nil, fmt.Errorf("ve: base table: %w", err)
	}
	if err := applied.Validate(); err != nil {
		return nil, fmt.Errorf("ve: applied table: %w", err)
	}
	if !base.SameAxes(applied) {
		return nil, fmt.Errorf("%w: base is %dx%d over RPM %v / MAP %v, applied is %dx%d over RPM %v / MAP %v",
			ErrShape, base.Rows(), base.Cols(), base.RPM, base.MAP, applied.Rows(), applied.Cols(), applied.RPM, applied.MAP)
	}
	bp, err := basePrecision(base)
	if err != nil {
		return nil, fmt.Errorf("ve: base table: %w", err)
	}
	rp, err := basePrecision(applied)
	if err != nil {
		return nil, fmt.Errorf("ve: applied table: %w", err)
	}
	b := base.Clone()
	b.Precision = bp
	out := applied.Clone()
	out.Precision = rp
	eff := MustTable(base.RPM, base.MAP, 1)
	eff.Precision = multiplierPrecision
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	lim := opts.Limits
	m := Manifest{
		Schema: "dynoai.apply@1", Operation: "apply", AppliedAt: now().UTC(), Version: Version,
		BaseSHA256: b.Hash(), BasePrecision: bp, ResultPrecision: rp,
		MaxAdjustPercent: lim.MaxAdjustPercent, MinVE: lim.MinVE, MaxVE: lim.MaxVE,
		MaxCumulativePercent: lim.MaxCumulativePercent,
		Settings:             opts.Settings, Comment: opts.Comment,
	}
	var diff []CellChange
	for i, x := range b.Values {
		y := out.Values[i]
		r, c := i/b.Cols(), i%b.Cols()
		switch {
		case Has(x) != Has(y):
			return nil, fmt.Errorf("%w: the cell at RPM %v / MAP %v has a value in one table only (base %v, applied %v)",
				ErrShape, b.RPM[r], b.MAP[c], x, y)
		case !Has(x) || (x == 0 && y == 0):
			continue
		case x <= 0 || y <= 0:
			return nil, fmt.Errorf("ve: the cell at RPM %v / MAP %v goes from %v to %v; adopting needs a positive multiplier", b.RPM[r], b.MAP[c], x, y)
		}
		mult := roundDecimal(y/x, multiplierPrecision)
		eff.Values[i] = mult
		if y != x {
			m.CellsChanged++
			diff = append(diff, CellChange{RPM: b.RPM[r], MAP: b.MAP[c], Before: x, After: y, Multiplier: mult})
		}
	}
	m.RequestedSHA256 = eff.Hash()
	m.CorrectionSHA256 = eff.Hash()
	m.ResultSHA256 = out.Hash()
	if _, err := Rollback(out, eff, &m); err != nil {
		return nil, fmt.Errorf("ve: the applied table cannot be undone exactly to the base: %w", err)
	}
	return &Applied{Table: out, Effective: eff, Manifest: m, Diff: diff}, nil
}
