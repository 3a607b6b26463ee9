package dynolog

import (
	"bytes"
	"io"
	"math"
	"time"
)

// prefixData is the first rows of a log, held while the reader decides
// its columns: raw, so that reading starts over from them with the
// decided bindings.
type prefixData interface {
	// rows is the number of data rows held.
	rows() int
	// each calls fn once per data row, in order; get returns the row's
	// cell col as a number (a date-time's seconds since the first row's
	// when wallclock is set) and what the cell held.
	each(fn func(get func(col int, wallclock bool) (float64, cellKind)))
	// isComplete reports whether the prefix is the whole log.
	isComplete() bool
}

// textPrefix is a delimited log's prefix: the data lines after the header
// (and units row), in one buffer.
type textPrefix struct {
	r        *Reader
	buf      []byte
	ends     []int   // end of each line in buf
	offs     []int64 // byte offset of each line in the input
	data     []bool  // whether each line is a data row (not blank, MARK, a section)
	nData    int
	complete bool
}

func (p *textPrefix) rows() int        { return p.nData }
func (p *textPrefix) isComplete() bool { return p.complete }

func (p *textPrefix) line(i int) []byte {
	start := 0
	if i > 0 {
		start = p.ends[i-1]
	}
	return p.buf[start:p.ends[i]]
}

func (p *textPrefix) each(fn func(get func(col int, wallclock bool) (float64, cellKind))) {
	var fs []field
	var l []byte
	var wall0 time.Time
	haveWall := false
	get := func(col int, wallclock bool) (float64, cellKind) {
		if col >= len(fs) {
			return math.NaN(), cellEmpty
		}
		cell := l[fs[col].start:fs[col].end]
		if len(cell) == 0 {
			return math.NaN(), cellEmpty
		}
		if wallclock {
			t, ok := parseWallclock(cell)
			if !ok {
				return math.NaN(), cellWords
			}
			if !haveWall {
				wall0, haveWall = t, true
			}
			return t.Sub(wall0).Seconds(), cellNumber
		}
		v, ok := parseNumber(cell, p.r.decComma)
		switch {
		case ok && isFinite(v):
			return v, cellNumber
		case ok || isPlaceholder(cell):
			return math.NaN(), cellEmpty
		}
		return math.NaN(), cellWords
	}
	for i := range p.ends {
		if !p.data[i] {
			continue
		}
		l = p.line(i)
		fs = splitLine(fs, l, p.r.delim)
		fn(get)
	}
}

// isPlaceholder reports whether a cell is one of the texts loggers write
// for "no value": HP Tuners' "∞", "NaN", "N/A", dashes.
func isPlaceholder(cell []byte) bool {
	c := bytes.TrimLeft(cell, "+-")
	if len(c) == 0 {
		return len(cell) > 0 // "-", "--", "---"
	}
	switch string(bytes.ToLower(c)) {
	case "∞", "inf", "infinity", "nan", "n/a", "na", "null", "none", "--", "---":
		return true
	}
	return false
}

// readPrefix reads up to the prefix bound of lines after the header into
// a textPrefix and queues them to be read again.
func (r *Reader) readPrefix() error {
	limit := r.opts.PrefixRows
	if limit <= 0 {
		limit = DefaultPrefixRows
	}
	p := &textPrefix{r: r}
	start := r.line
	for p.nData < limit && len(p.buf) < prefixBytes {
		l, err := r.readLine()
		if err != nil {
			if err == io.EOF {
				p.complete = true
				break
			}
			return err
		}
		p.buf = append(p.buf, l...)
		p.ends = append(p.ends, len(p.buf))
		p.offs = append(p.offs, r.lineOff)
		isData := !isBlank(l) && !r.skipLine(l)
		p.data = append(p.data, isData)
		if isData {
			p.nData++
		}
	}
	// Queue the lines to be read again, with their numbers.
	for i := range p.ends {
		r.pending = append(r.pending, p.line(i))
		r.pendingOff = append(r.pendingOff, p.offs[i])
	}
	r.line = start
	r.prefix = p
	return nil
}
