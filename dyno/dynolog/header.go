package dynolog

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"
)

// sniffDelimiter picks among ',' '\t' ';' the separator whose per-line count
// is the same non-zero number on the most of the first lines (quoted text
// excluded); ties go in that order.
func sniffDelimiter(head []byte) byte {
	lines := bytes.Split(head, []byte("\n"))
	if len(lines) > 1 && len(head) == peekSize {
		lines = lines[:len(lines)-1] // the last may be cut
	}
	if len(lines) > 30 {
		lines = lines[:30]
	}
	best, bestScore := byte(','), 0
	for _, d := range []byte{',', '\t', ';'} {
		counts := map[int]int{}
		for _, l := range lines {
			n := countOutsideQuotes(l, d)
			if n > 0 {
				counts[n]++
			}
		}
		score := 0
		for _, c := range counts {
			score = max(score, c)
		}
		if score > bestScore {
			best, bestScore = d, score
		}
	}
	return best
}

func countOutsideQuotes(l []byte, d byte) int {
	n := 0
	in := false
	for _, c := range l {
		if c == '"' {
			in = !in
		} else if c == d && !in {
			n++
		}
	}
	return n
}

func looksProXY(head []byte) bool {
	first := head
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		first = head[:i]
	}
	return bytes.Contains(bytes.ToLower(first), []byte("power vision log file")) ||
		bytes.Contains(head[:min(len(head), 4096)], []byte("Pro-XY"))
}

func (r *Reader) readHeader(head []byte) error {
	r.delim = r.opts.Delimiter
	if r.delim == 0 {
		r.delim = sniffDelimiter(head)
	}
	r.decComma = r.delim != ','
	var pre int
	if looksHPTuners(head) {
		n, err := r.skipHPTunersPreamble()
		if err != nil {
			return err
		}
		pre += n
		r.format = FormatHPTuners
	}
	var hdr []byte
	for {
		l, err := r.readLine()
		if err == io.EOF {
			return &ParseError{File: r.name, Line: r.line, Offset: r.nextOff, Err: ErrNoHeader}
		}
		if err != nil {
			return err
		}
		r.stats.Lines++
		r.fields = splitLine(r.fields, l, r.delim)
		named := 0
		for _, f := range r.fields {
			if f.end > f.start {
				named++
			}
		}
		if named >= 2 {
			hdr = toUTF8(l)
			break
		}
		pre++
		if pre > 50 {
			return &ParseError{File: r.name, Line: r.line, Offset: r.lineOff, Err: ErrNoHeader}
		}
	}
	headerLine := r.line
	r.fields = splitLine(r.fields, hdr, r.delim)
	r.headers = make([]string, len(r.fields))
	for i, f := range r.fields {
		r.headers[i] = strings.TrimPrefix(cellText(hdr, f), "\ufeff")
	}
	// A units row right after the header: no cell is a number.
	var units []string
	l, err := r.readLine()
	if err != nil && err != io.EOF {
		return err
	}
	if err == nil {
		fs := splitLine(nil, l, r.delim)
		nonEmpty, numeric := 0, 0
		for _, f := range fs {
			if f.end > f.start {
				nonEmpty++
				if _, ok := parseNumber(l[f.start:f.end], r.decComma); ok {
					numeric++
				}
			}
		}
		if nonEmpty > 0 && numeric == 0 && !r.looksLikeTimeRow(l, fs) {
			r.stats.Lines++
			u := toUTF8(l)
			fs = splitLine(fs, u, r.delim)
			units = make([]string, len(fs))
			for i, f := range fs {
				units[i] = cellText(u, f)
			}
			// Keep the first data line at hand (looksWallclock peeks at it).
			l, err = r.readLine()
			if err != nil && err != io.EOF {
				return err
			}
		}
		if err == nil {
			// A data line: read it again with the prefix.
			r.pending = append(r.pending, append([]byte(nil), l...))
			r.pendingOff = append(r.pendingOff, r.lineOff)
			r.line--
		}
	}
	if r.opts.Format != "" {
		r.format = r.opts.Format
	} else if r.format == "" {
		r.format = detectFormat(r.headers, pre > 0 || units != nil)
	}
	r.units = units
	r.log.Debug("dynolog: header", "file", r.name, "line", headerLine, "format", r.format,
		"delimiter", string(r.delim), "columns", len(r.headers), "units_row", units != nil)
	if err := r.readPrefix(); err != nil {
		return err
	}
	return r.bind(units)
}

// looksHPTuners reports whether a log starts the way HP Tuners VCM
// Scanner's CSV export does.
func looksHPTuners(head []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(head, "\xef\xbb\xbf \t\r\n"), []byte("HP Tuners CSV Log File"))
}

// skipHPTunersPreamble consumes an HP Tuners export's sections up to and
// including the channel-id row under "[Channel Information]", leaving the
// names row (the header) and the units row to read. It returns how many
// lines it consumed.
func (r *Reader) skipHPTunersPreamble() (int, error) {
	n := 0
	for {
		l, err := r.readLine()
		if err == io.EOF {
			return n, &ParseError{File: r.name, Line: r.line, Offset: r.nextOff,
				Err: fmt.Errorf("%w: HP Tuners log without a [Channel Information] section", ErrNoHeader)}
		}
		if err != nil {
			return n, err
		}
		r.stats.Lines++
		n++
		if n > 1000 {
			return n, &ParseError{File: r.name, Line: r.line, Offset: r.lineOff,
				Err: fmt.Errorf("%w: no [Channel Information] section in the first 1000 lines", ErrNoHeader)}
		}
		if strings.EqualFold(strings.TrimSpace(string(l)), "[Channel Information]") {
			break
		}
	}
	// The channel-id row: numbers only. Older exports may not have it.
	l, err := r.readLine()
	if err != nil {
		if err == io.EOF {
			return n, &ParseError{File: r.name, Line: r.line, Offset: r.nextOff, Err: ErrNoHeader}
		}
		return n, err
	}
	fs := splitLine(nil, l, r.delim)
	ids := 0
	for _, f := range fs {
		if _, ok := parseNumber(l[f.start:f.end], false); ok {
			ids++
		}
	}
	if ids == len(fs) && ids > 0 {
		r.stats.Lines++
		return n + 1, nil
	}
	r.pending = append(r.pending, append([]byte(nil), l...))
	r.pendingOff = append(r.pendingOff, r.lineOff)
	r.line--
	return n, nil
}

// skipLine reports whether a line after the header is not a data row: a
// MegaLogViewer "MARK" line, an HP Tuners section header ("[Channel Data]").
func (r *Reader) skipLine(l []byte) bool {
	switch r.format {
	case FormatMSL:
		return bytes.HasPrefix(l, []byte("MARK"))
	case FormatHPTuners:
		t := bytes.TrimSpace(l)
		return len(t) > 0 && t[0] == '['
	}
	return false
}

// looksLikeTimeRow reports whether a row without numbers is a data row whose
// numbers are all missing but whose first cell is a date-time.
func (r *Reader) looksLikeTimeRow(l []byte, fs []field) bool {
	if len(fs) == 0 {
		return false
	}
	_, ok := parseWallclock(l[fs[0].start:fs[0].end])
	return ok
}

func detectFormat(headers []string, mslish bool) string {
	dwrt, pv := false, false
	for _, h := range headers {
		n := NormalizeHeader(h)
		if mod, _, ok := splitModule(n); ok {
			switch {
			case strings.HasPrefix(mod, "dwrt") || strings.HasPrefix(mod, "dwr "):
				dwrt = true
			case mod == "pv" || strings.HasPrefix(mod, "harley"):
				pv = true
			}
		}
	}
	switch {
	case dwrt:
		return FormatWinPEP8
	case pv:
		return FormatPowerVision
	case mslish:
		return FormatMSL
	}
	return FormatCSV
}

// looksWallclock peeks at the first data row's cell i.
func (r *Reader) looksWallclock(i int) bool {
	var l []byte
	for _, p := range r.pending {
		if !isBlank(p) && !r.skipLine(p) {
			l = p
			break
		}
	}
	if l == nil {
		return false
	}
	fs := splitLine(nil, l, r.delim)
	if i >= len(fs) {
		return false
	}
	cell := l[fs[i].start:fs[i].end]
	if _, ok := parseNumber(cell, r.decComma); ok {
		return false
	}
	_, ok := parseWallclock(cell)
	return ok
}

var wallLayouts = []string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006/01/02 15:04:05.999999999",
	"15:04:05.999999999",
}

func parseWallclock(b []byte) (time.Time, bool) {
	if len(b) < 8 || len(b) > 40 {
		return time.Time{}, false
	}
	var buf [40]byte
	s := string(append(buf[:0], b...))
	for _, l := range wallLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
