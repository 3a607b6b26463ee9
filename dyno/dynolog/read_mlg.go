package dynolog

import (
	"errors"
	"io"
	"math"

	"github.com/dynoai/dynoai/dyno"
)

// mlgState is a Reader's MegaLogViewer binary log: the decoder, and the
// records of the judged prefix, kept raw to be read again.
type mlgState struct {
	d        *mlgDecoder
	prefix   *mlgPrefix
	replayed int // prefix records handed out
}

// mlgPrefix holds the first records of an MLG log, raw.
type mlgPrefix struct {
	d        *mlgDecoder
	recLen   int
	buf      []byte
	offs     []int64
	complete bool
	// a checksum error met while reading ahead, handed out in its place
	badAt  int
	badErr error
}

func (p *mlgPrefix) rows() int        { return len(p.offs) }
func (p *mlgPrefix) isComplete() bool { return p.complete }

func (p *mlgPrefix) record(i int) []byte { return p.buf[i*p.recLen : (i+1)*p.recLen] }

func (p *mlgPrefix) each(fn func(get func(col int, wallclock bool) (float64, cellKind))) {
	var rec []byte
	get := func(col int, _ bool) (float64, cellKind) {
		if col < 0 || col >= len(p.d.fields) {
			return math.NaN(), cellEmpty
		}
		v := p.d.value(&p.d.fields[col], rec)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return math.NaN(), cellEmpty
		}
		return v, cellNumber
	}
	for i := range p.offs {
		rec = p.record(i)
		fn(get)
	}
}

// initMLG reads an MLG log's header and field table, reads ahead the
// judged prefix, and binds the fields like a text log's columns.
func (r *Reader) initMLG() error {
	d, err := newMLGDecoder(r.br, r.name)
	if err != nil {
		return err
	}
	r.format = FormatMLG
	m := &mlgState{d: d}
	r.mlg = m
	fields := d.Fields()
	r.headers = make([]string, len(fields))
	units := make([]string, len(fields))
	for i, f := range fields {
		r.headers[i] = f.Name
		units[i] = f.Units
	}
	if celsius, ok := d.TemperatureUnit(); ok {
		r.tempHint, r.tempHintWhy = dyno.UnitFahrenheit, "the log's TunerStudio project says FAHRENHEIT"
		if celsius {
			r.tempHint, r.tempHintWhy = dyno.UnitCelsius, "the log's TunerStudio project says CELSIUS"
		}
	}
	limit := r.opts.PrefixRows
	if limit <= 0 {
		limit = DefaultPrefixRows
	}
	p := &mlgPrefix{d: d, recLen: d.recLen, badAt: -1}
	for len(p.offs) < limit && len(p.buf) < prefixBytes {
		err := d.Next()
		if err == io.EOF {
			p.complete = true
			break
		}
		if err != nil && !errors.Is(err, ErrMLGChecksum) {
			return err
		}
		if err != nil {
			// Keep the place: the record is handed out as a bad row.
			p.badAt, p.badErr = len(p.offs), err
		}
		p.buf = append(p.buf, d.block[mlgBlockHeader:mlgBlockHeader+d.recLen]...)
		p.offs = append(p.offs, d.Offset())
		if p.badAt >= 0 {
			break
		}
	}
	m.prefix = p
	r.prefix = p
	r.units = units
	return r.bind(units)
}

// nextMLG fills s with the next record: the prefix's first, then the
// decoder's.
func (r *Reader) nextMLG(s *dyno.Sample) error {
	m := r.mlg
	for {
		var rec []byte
		var off int64
		switch p := m.prefix; {
		case m.replayed < p.rows():
			i := m.replayed
			m.replayed++
			if i == p.badAt {
				if err := r.badRow(asParseError(p.badErr), reasonChecksum); err != nil {
					return err
				}
				continue
			}
			rec, off = p.record(i), p.offs[i]
		case !p.complete:
			err := m.d.Next()
			if err == io.EOF {
				return io.EOF
			}
			if errors.Is(err, ErrMLGChecksum) {
				if err := r.badRow(asParseError(err), reasonChecksum); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return err
			}
			rec, off = m.d.block[mlgBlockHeader:mlgBlockHeader+m.d.recLen], m.d.Offset()
		default:
			return io.EOF
		}
		r.stats.Lines++
		r.lineOff = off
		*s = missingSample
		timeSet := false
		for i := range r.binds {
			b := &r.binds[i]
			v := m.d.value(&m.d.fields[b.col], rec)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				r.stats.MissingCells++
				continue
			}
			if b.linear {
				if b.mul != 1 {
					v *= b.mul
				}
				store(b, v, s)
				continue
			}
			if r.assign(b, v, s) {
				timeSet = true
			}
		}
		r.stats.Markers = m.d.Markers()
		r.finishRow(s, timeSet)
		return nil
	}
}

func asParseError(err error) *ParseError {
	var pe *ParseError
	if errors.As(err, &pe) {
		return pe
	}
	return &ParseError{Err: err}
}
