package authkeys

import (
	"errors"
	"strings"
	"testing"
)

func FuzzParseFile(f *testing.F) {
	for _, s := range []string{
		"", "k1\n", "\uFEFFk1\r\nk2", "  # c\n\n k3 \n", "a b\n", "\xff", "k1\n\x00", "#\n#\n", strings.Repeat("k\n", 50),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseFile(data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is not a *ParseError: %v", err)
			}
			if pe.Offset < 0 || pe.Offset > len(data) {
				t.Fatalf("offset %d outside input of %d bytes", pe.Offset, len(data))
			}
			if pe.Reason == "" && (pe.Line < 1 || pe.Column < 1) {
				t.Fatalf("no position in %v", err)
			}
			return
		}
		for _, k := range keys {
			if k == "" || k[0] == '#' {
				t.Fatalf("bad key %q", k)
			}
			if _, _, bad := badKeyChar(k); bad {
				t.Fatalf("key with a forbidden character %q", k)
			}
			if !strings.Contains(string(data), k) {
				t.Fatalf("key %q not in the input", k)
			}
		}
		// Every parsed key verifies against a store built from them.
		m := NewMemory(keys...)
		for _, k := range keys {
			if _, err := m.Verify(t.Context(), k); err != nil {
				t.Fatalf("parsed key %q does not verify: %v", k, err)
			}
		}
	})
}

func FuzzParseList(f *testing.F) {
	for _, s := range []string{"", "a,b", " a , b ,", "a b", ",,,", "\x01", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := ParseList(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Entry < 1 || pe.Offset < 0 || pe.Offset >= len(s) {
				t.Fatalf("bad error for %q: %v", s, err)
			}
			return
		}
		for _, k := range keys {
			if k == "" || strings.Contains(k, ",") {
				t.Fatalf("bad key %q", k)
			}
			if _, _, bad := badKeyChar(k); bad {
				t.Fatalf("key with a forbidden character %q", k)
			}
		}
	})
}
