package authkeys

import (
	"errors"
	"net/http"
	"net/http/httptest"
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
			if len(k) > MaxKeyLen {
				t.Fatalf("key of %d bytes accepted", len(k))
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

func FuzzPresentedKey(f *testing.F) {
	f.Add("key1", "")
	f.Add("", "Bearer key1")
	f.Add("", "bearer   key1")
	f.Add("", "Basic x")
	f.Add("", "Bearer")
	f.Fuzz(func(t *testing.T, apiKey, authz string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if apiKey != "" {
			r.Header.Set(HeaderAPIKey, apiKey)
		}
		r.Header.Set("Authorization", authz)
		key, ok := PresentedKey(r)
		if !ok {
			t.Fatal("one header value reported ambiguous")
		}
		switch {
		case apiKey != "":
			if key != apiKey {
				t.Fatalf("X-API-Key %q gave %q", apiKey, key)
			}
		case key != "":
			if !strings.HasSuffix(authz, key) || !strings.EqualFold(authz[:7], "bearer ") {
				t.Fatalf("Authorization %q gave %q", authz, key)
			}
		}
		// The middleware never panics and answers 200, 401 or 403.
		rec := httptest.NewRecorder()
		Middleware(NewMemory("key1"), Options{})(successHandler).ServeHTTP(rec, r)
		if rec.Code != 200 && rec.Code != 401 && rec.Code != 403 {
			t.Fatalf("status %d", rec.Code)
		}
	})
}
