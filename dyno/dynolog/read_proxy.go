package dynolog

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/dynoai/dynoai/dyno"
)

// proxyState is the streaming pivot of a Pro-XY long-format log: rows
// (time ms, signal, value) sorted by time become one Sample per time stamp,
// each signal keeping its last value until it changes (forward fill), and
// the first value of a signal at one time stamp winning over later ones.
type proxyState struct {
	version string
	values  []float64 // per signal, forward-filled
	seen    []bool    // set at the current time stamp
	curMS   float64
	have    bool // a time stamp is being gathered
	eof     bool
}

// proxyAliases renames Power Vision signal names (jetstream-dyno spec
// §2.2.3) where the built-in aliases do not already cover them.
var proxyAliases = []Alias{
	{Name: "spark knock f", Channel: dyno.ChanKnock, Cyl: dyno.Front, Unit: dyno.UnitDegrees},
	{Name: "spark knock r", Channel: dyno.ChanKnock, Cyl: dyno.Rear, Unit: dyno.UnitDegrees},
}

func (r *Reader) initProXY() error {
	r.format = FormatProXY
	r.delim = ','
	p := &proxyState{}
	var names, units []string
	for {
		l, err := r.readLine()
		if err == io.EOF {
			return &ParseError{File: r.name, Line: r.line, Offset: r.nextOff,
				Err: fmt.Errorf("%w: no \"Time(ms)\" data header", ErrNoHeader)}
		}
		if err != nil {
			return err
		}
		r.stats.Lines++
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		u := toUTF8(l)
		fs := splitLine(nil, u, ',')
		first := cellText(u, fs[0])
		switch {
		case first == "Time(ms)" || first == "Time (ms)":
			r.headers = names
			p.values = make([]float64, len(names))
			p.seen = make([]bool, len(names))
			for i := range p.values {
				p.values[i] = dyno.Missing
			}
			r.proxy = p
			extra := append([]Alias(nil), r.opts.Aliases...)
			r.opts.Aliases = append(extra, proxyAliases...)
			if err := r.bind(units); err != nil {
				return err
			}
			r.layout.Channels = r.layout.Channels.With(dyno.ChanTime)
			return nil
		case first == "Format:" && len(fs) > 1:
			p.version = cellText(u, fs[1])
		case len(fs) >= 5:
			idx, err := strconv.Atoi(first)
			if err != nil {
				continue // the title line and other prose
			}
			if idx < 0 || idx > 4096 {
				return &ParseError{File: r.name, Line: r.line, Offset: r.lineOff, Value: shorten(l),
					Err: fmt.Errorf("%w: signal index %d out of range", ErrBadNumber, idx)}
			}
			for len(names) <= idx {
				names = append(names, "")
				units = append(units, "")
			}
			names[idx] = cellText(u, fs[3])
			units[idx] = cellText(u, fs[4])
		}
	}
}

// ProXYVersion returns the "Format:" string of a Pro-XY log, for example
// "Pro-XY CSV 1.0.0", or "" for other formats.
func (r *Reader) ProXYVersion() string {
	if r.proxy == nil {
		return ""
	}
	return r.proxy.version
}

// parseProXYValue reads a Pro-XY value: decimal when it holds only digits,
// '.' and '-', otherwise a hexadecimal integer ("3E8" is 1000), as Power
// Vision writes them.
func parseProXYValue(b []byte) (float64, bool) {
	dec := true
	for _, c := range b {
		if (c < '0' || c > '9') && c != '.' && c != '-' {
			dec = false
			break
		}
	}
	if dec {
		return parseNumber(b, false)
	}
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(d)
	}
	return float64(v), true
}

func (r *Reader) nextProXY(s *dyno.Sample) error {
	p := r.proxy
	for !p.eof {
		l, err := r.readLine()
		if err == io.EOF {
			p.eof = true
			break
		}
		if err != nil {
			return err
		}
		r.stats.Lines++
		if len(bytes.TrimSpace(l)) == 0 {
			r.stats.Blank++
			continue
		}
		r.fields = splitLine(r.fields, l, ',')
		var perr *ParseError
		var ms, v float64
		sig := -1
		if len(r.fields) < 3 {
			perr = &ParseError{File: r.name, Line: r.line, Offset: r.lineOff, Value: shorten(l),
				Err: fmt.Errorf("%w: %d fields, want time, signal, value", ErrShortRow, len(r.fields))}
		} else {
			f0, f1, f2 := r.fields[0], r.fields[1], r.fields[2]
			var ok bool
			if ms, ok = parseNumber(l[f0.start:f0.end], false); !ok || !isFinite(ms) {
				perr = &ParseError{File: r.name, Line: r.line, Column: "Time(ms)", ColumnIndex: 1,
					Offset: r.lineOff + int64(f0.start), Value: shorten(l[f0.start:f0.end]), Err: ErrBadTime}
			} else if n, ok := parseNumber(l[f1.start:f1.end], false); !ok || n != float64(int(n)) || n < 0 || int(n) >= len(p.values) {
				perr = &ParseError{File: r.name, Line: r.line, Column: "Signal", ColumnIndex: 2,
					Offset: r.lineOff + int64(f1.start), Value: shorten(l[f1.start:f1.end]),
					Err: fmt.Errorf("%w: not a defined signal", ErrBadNumber)}
			} else if v, ok = parseProXYValue(l[f2.start:f2.end]); !ok {
				perr = &ParseError{File: r.name, Line: r.line, Column: "Value", ColumnIndex: 3,
					Offset: r.lineOff + int64(f2.start), Value: shorten(l[f2.start:f2.end]), Err: ErrBadNumber}
			} else {
				sig = int(n)
			}
		}
		if perr != nil {
			if r.opts.MaxBadRows < 0 || r.bad < r.opts.MaxBadRows {
				r.bad++
				r.skipped[0]++
				continue
			}
			perr.TooMany = r.opts.MaxBadRows > 0
			return perr
		}
		if p.have && ms != p.curMS {
			r.emitProXY(s)
			p.curMS = ms
			clear(p.seen)
			r.storeProXY(sig, v)
			return nil
		}
		p.curMS, p.have = ms, true
		r.storeProXY(sig, v)
	}
	if !p.have {
		return io.EOF
	}
	r.emitProXY(s)
	p.have = false
	return nil
}

func (r *Reader) storeProXY(sig int, v float64) {
	p := r.proxy
	if !p.seen[sig] {
		p.seen[sig] = true
		p.values[sig] = v
	}
}

func (r *Reader) emitProXY(s *dyno.Sample) {
	p := r.proxy
	s.Reset()
	for i := range r.binds {
		b := &r.binds[i]
		if v := p.values[b.col]; dyno.Has(v) {
			r.assign(b, v, s)
		}
	}
	s.Time = time.Duration(math.Round(p.curMS * float64(time.Millisecond)))
	if r.rowIndex > 0 && s.Time < r.lastTime {
		r.stats.TimeBackwards++
	}
	r.finishRow(s, true)
}
