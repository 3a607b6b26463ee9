package dynolog

import (
	"bytes"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// field is one cell of a split line: [start, end) into the line, already
// stripped of surrounding spaces and quotes. esc is set when a quoted cell
// holds doubled quotes ("") that still need unescaping.
type field struct {
	start, end int32
	esc        bool
}

// splitLine splits line at delim into dst (reused), honouring double quotes
// (a quoted cell may contain the delimiter and "" escapes; it may not span
// lines). Spaces around cells are dropped.
func splitLine(dst []field, line []byte, delim byte) []field {
	return splitLineN(dst, line, delim, math.MaxInt)
}

// splitLineN is splitLine that may stop once it has limit fields (more may
// follow). Lines without quotes take a single-pass fast path.
func splitLineN(dst []field, line []byte, delim byte, limit int) []field {
	dst = dst[:0]
	if bytes.IndexByte(line, '"') < 0 {
		start := 0
		for i, c := range line {
			if c != delim {
				continue
			}
			f := field{start: int32(start), end: int32(i)}
			if i > start && (line[start] <= ' ' || line[i-1] <= ' ') {
				f = trimmedField(line, start, i, delim)
			}
			dst = append(dst, f)
			if len(dst) >= limit {
				return dst
			}
			start = i + 1
		}
		return append(dst, trimmedField(line, start, len(line), delim))
	}
	n := len(line)
	i := 0
	for {
		j := i
		for j < n && (line[j] == ' ' || (line[j] == '\t' && delim != '\t')) {
			j++
		}
		if j < n && line[j] == '"' {
			k := j + 1
			esc := false
			end := n
			for k < n {
				q := bytes.IndexByte(line[k:], '"')
				if q < 0 {
					k = n
					break
				}
				k += q
				if k+1 < n && line[k+1] == '"' {
					esc = true
					k += 2
					continue
				}
				end = k
				k++
				break
			}
			if end > n {
				end = n
			}
			dst = append(dst, field{start: int32(j + 1), end: int32(end), esc: esc})
			d := bytes.IndexByte(line[min(k, n):], delim)
			if d < 0 {
				return dst
			}
			i = min(k, n) + d + 1
			continue
		}
		d := bytes.IndexByte(line[j:], delim)
		end := n
		if d >= 0 {
			end = j + d
		}
		e := end
		for e > j && (line[e-1] == ' ' || (line[e-1] == '\t' && delim != '\t')) {
			e--
		}
		dst = append(dst, field{start: int32(j), end: int32(e)})
		if d < 0 {
			return dst
		}
		i = end + 1
	}
}

func trimmedField(line []byte, start, end int, delim byte) field {
	for start < end && (line[start] == ' ' || (line[start] == '\t' && delim != '\t')) {
		start++
	}
	for end > start && (line[end-1] == ' ' || (line[end-1] == '\t' && delim != '\t')) {
		end--
	}
	return field{start: int32(start), end: int32(end)}
}

// cellText returns the text of f as a string, unescaping "" when needed.
func cellText(line []byte, f field) string {
	b := line[f.start:f.end]
	if f.esc {
		return string(bytes.ReplaceAll(b, []byte(`""`), []byte(`"`)))
	}
	return string(b)
}

var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseNumber parses a decimal number. decimalComma accepts ',' as the
// decimal point (for ';'-separated European logs). It takes the exact fast
// path (mantissa below 2^53, power of ten at most 22: one correctly rounded
// multiply or divide) for the plain numbers logs hold and falls back to
// strconv.ParseFloat for everything else, without allocating. ok is false for
// text that is not a number; NaN and infinities parse (the caller treats them
// as Missing).
func parseNumber(b []byte, decimalComma bool) (v float64, ok bool) {
	n := len(b)
	i := 0
	neg := false
	if n > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		i++
	}
	var mant uint64
	nd := 0 // digits taken into mant, leading zeros included
	for ; i < n; i++ {
		d := b[i] - '0'
		if d > 9 {
			break
		}
		mant = mant*10 + uint64(d)
		nd++
	}
	frac := 0
	if i < n && (b[i] == '.' || (b[i] == ',' && decimalComma)) {
		i++
		for ; i < n; i++ {
			d := b[i] - '0'
			if d > 9 {
				break
			}
			mant = mant*10 + uint64(d)
			nd++
			frac++
		}
	}
	if nd == 0 || nd > 19 || i < n || mant > 1<<53 {
		// Exponents, long mantissas, NaN, Inf, garbage: the careful path.
		return slowNumber(b, decimalComma)
	}
	f := float64(mant)
	if frac > 0 {
		if frac > 22 {
			return slowNumber(b, decimalComma)
		}
		f /= pow10[frac]
	}
	if neg {
		f = -f
	}
	return f, true
}

func slowNumber(b []byte, decimalComma bool) (float64, bool) {
	if decimalComma {
		if i := bytes.IndexByte(b, ','); i >= 0 && bytes.IndexByte(b, '.') < 0 {
			var buf [64]byte
			if len(b) > len(buf) {
				return 0, false
			}
			c := buf[:len(b)]
			copy(c, b)
			c[i] = '.'
			return slowNumber(c, false)
		}
	}
	if len(b) == 0 {
		return 0, false
	}
	// Digit separators are not accepted (strconv only takes them after a base prefix).
	v, err := strconv.ParseFloat(unsafe.String(&b[0], len(b)), 64)
	if err != nil {
		var ne *strconv.NumError
		if asNumErr(err, &ne) && ne.Err == strconv.ErrRange {
			return v, true // ±Inf or 0: a number, if an extreme one
		}
		return 0, false
	}
	return v, true
}

func asNumErr(err error, target **strconv.NumError) bool {
	ne, ok := err.(*strconv.NumError)
	if ok {
		*target = ne
	}
	return ok
}

// isFinite reports whether v is neither NaN nor infinite (v − v is NaN for both).
func isFinite(v float64) bool { return v-v == 0 }

// cp1252High maps bytes 0x80..0x9F of Windows-1252 to runes; 0xA0..0xFF are
// Latin-1 and map to themselves.
var cp1252High = [32]rune{
	'€', 0x81, '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', 0x8D, 'Ž', 0x8F,
	0x90, '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', 0x9D, 'ž', 'Ÿ',
}

// toUTF8 returns b as UTF-8 text: as is when valid, else decoded as
// Windows-1252 (what Windows tools write when they do not write UTF-8).
func toUTF8(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b)+8)
	for _, c := range b {
		switch {
		case c < 0x80:
			out = append(out, c)
		case c < 0xA0:
			out = utf8.AppendRune(out, cp1252High[c-0x80])
		default:
			out = utf8.AppendRune(out, rune(c))
		}
	}
	return out
}
