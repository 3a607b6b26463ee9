package dynolog

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParseNumber(t *testing.T) {
	cases := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"0", 0, true}, {"-0", math.Copysign(0, -1), true}, {"12", 12, true}, {"+12.5", 12.5, true},
		{"0.05", 0.05, true}, {".5", 0.5, true}, {"5.", 5, true}, {"1e3", 1000, true}, {"1.5E-3", 0.0015, true},
		{"14.288399696350098", 14.288399696350098, true}, {"123456789012345678", 123456789012345678, true},
		{"1e400", math.Inf(1), true}, {"nan", math.NaN(), true}, {"-Inf", math.Inf(-1), true},
		{"", 0, false}, {"-", 0, false}, {".", 0, false}, {"1e", 0, false}, {"1e+", 0, false}, {"8O", 0, false},
		{"1.2.3", 0, false}, {"1_000", 1000, true}, {"0x10", 0, false}, {"12 3", 0, false},
	}
	for _, c := range cases {
		got, ok := parseNumber([]byte(c.in), false)
		assert.Equal(t, c.ok, ok, c.in)
		if c.ok {
			if math.IsNaN(c.want) {
				assert.True(t, math.IsNaN(got), c.in)
			} else {
				assert.Equal(t, math.Float64bits(c.want), math.Float64bits(got), c.in)
			}
		}
	}
	v, ok := parseNumber([]byte("80,5"), true)
	assert.True(t, ok)
	assert.Equal(t, 80.5, v)
	_, ok = parseNumber([]byte("80,5"), false)
	assert.False(t, ok)
}

func TestSplitLine(t *testing.T) {
	cases := []struct {
		line  string
		delim byte
		want  []string
	}{
		{"a,b,c", ',', []string{"a", "b", "c"}},
		{" a , b ,", ',', []string{"a", "b", ""}},
		{`"a,1","b""q",c`, ',', []string{"a,1", `b"q`, "c"}},
		{`"unterminated,x`, ',', []string{"unterminated,x"}},
		{"a\t b\t", '\t', []string{"a", "b", ""}},
		{"", ',', []string{""}},
		{`"x" ,y`, ',', []string{"x", "y"}},
	}
	for _, c := range cases {
		fs := splitLine(nil, []byte(c.line), c.delim)
		got := make([]string, len(fs))
		for i, f := range fs {
			got[i] = cellText([]byte(c.line), f)
		}
		assert.Equal(t, c.want, got, c.line)
	}
}

func TestParseSecondsNS(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1.5": 1_500_000_000, "-0.05": -50_000_000,
		"3.123456789": 3_123_456_789, "12.": 12_000_000_000, ".25": 250_000_000} {
		got, ok := parseSecondsNS([]byte(in))
		assert.True(t, ok, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", ".", "1e3", "1.1234567891", "99999999999", "1-2", "a"} {
		_, ok := parseSecondsNS([]byte(in))
		assert.False(t, ok, in)
	}
}

// FuzzParseNumber checks the fast path against strconv.ParseFloat on
// everything strconv reads as plain decimal.
func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{"0", "1.5", "-0.001", "1e22", "123456789012345", "9007199254740993", "1e-22", "4.9e-324", ".5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseNumber([]byte(s), false)
		plain := s != "" && strings.Trim(s, "0123456789.eE+-") == "" && !strings.ContainsAny(s, "_xXpP")
		want, err := strconv.ParseFloat(s, 64)
		if err != nil {
			if ne, isNE := err.(*strconv.NumError); isNE && ne.Err == strconv.ErrRange {
				err = nil
			}
		}
		if plain && err == nil {
			if !ok || math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("parseNumber(%q) = %v, %v; strconv says %v", s, got, ok, want)
			}
		}
		if plain && err != nil && ok {
			t.Fatalf("parseNumber(%q) = %v accepted what strconv refuses: %v", s, got, err)
		}
	})
}
