package ve

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The predecessor writes its JSON side files with Python's
// json.dumps(indent=2): keys in insertion order, ints without ".0", floats
// as repr, LF, no final newline (ve-afr spec §5.9, §8). These helpers write
// that layout; the values are Go values of a small closed set.

// DynoAI3Field is one key of a JSON object as the predecessor writes it.
// Value is nil (null), bool, int (a Python int: no ".0"), float64 (a Python
// float: repr, so 7.0 keeps its ".0"), string, DynoAI3Object or []any of
// those.
type DynoAI3Field struct {
	Key   string
	Value any
}

// DynoAI3Object is a JSON object with its keys in the predecessor's order.
type DynoAI3Object []DynoAI3Field

// Get returns the value of key and whether the object has it.
func (o DynoAI3Object) Get(key string) (any, bool) {
	for _, f := range o {
		if f.Key == key {
			return f.Value, true
		}
	}
	return nil, false
}

// pyRound is Python's round(x, n) on a float: the exact binary value rounded
// half-even to n decimals, as a float.
func pyRound(x float64, n int) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', n, 64), 64)
	return v
}

// pyRepr is Python's repr of a float: the shortest round-trip digits,
// positional for decimal exponents -4..15 (with ".0" when integral), else
// d.ddde±XX; json says NaN/Infinity where text says nan/inf.
func pyRepr(x float64, json bool) string {
	switch {
	case math.IsNaN(x):
		if json {
			return "NaN"
		}
		return "nan"
	case math.IsInf(x, 1):
		if json {
			return "Infinity"
		}
		return "inf"
	case math.IsInf(x, -1):
		if json {
			return "-Infinity"
		}
		return "-inf"
	}
	e := strconv.FormatFloat(x, 'e', -1, 64)
	i := strings.LastIndexByte(e, 'e')
	exp, _ := strconv.Atoi(e[i+1:])
	if exp < -4 || exp >= 16 {
		return e
	}
	s := strconv.FormatFloat(x, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

// writePyJSON appends v to b the way json.dumps(v, indent=2,
// ensure_ascii=ascii) writes it, starting at nesting level level.
func writePyJSON(b *bytes.Buffer, v any, level int, ascii bool) error {
	nl := func(l int) {
		b.WriteByte('\n')
		for range l * 2 {
			b.WriteByte(' ')
		}
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case int:
		b.WriteString(strconv.Itoa(x))
	case float64:
		b.WriteString(pyRepr(x, true))
	case string:
		writePyString(b, x, ascii)
	case DynoAI3Object:
		if len(x) == 0 {
			b.WriteString("{}")
			return nil
		}
		b.WriteByte('{')
		for i, f := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			nl(level + 1)
			writePyString(b, f.Key, ascii)
			b.WriteString(": ")
			if err := writePyJSON(b, f.Value, level+1, ascii); err != nil {
				return err
			}
		}
		nl(level)
		b.WriteByte('}')
	case []any:
		if len(x) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			nl(level + 1)
			if err := writePyJSON(b, e, level+1, ascii); err != nil {
				return err
			}
		}
		nl(level)
		b.WriteByte(']')
	default:
		return fmt.Errorf("ve: no Python JSON form for %T", v)
	}
	return nil
}

// writePyString writes s as a JSON string with Python's escapes: \" \\ \n
// \r \t \b \f, other control characters as \u00XX, and with ascii every
// rune outside ' '..'~' as \uXXXX (surrogate pairs above the BMP).
func writePyString(b *bytes.Buffer, s string, ascii bool) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r < 0x20 || (ascii && r > '~'):
				if r > 0xffff {
					r -= 0x10000
					fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
				} else {
					fmt.Fprintf(b, `\u%04x`, r)
				}
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}
