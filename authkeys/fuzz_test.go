package authkeys

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func FuzzParseFile(f *testing.F) {
	long := strings.Repeat("k", MinKeyLen)
	for _, s := range []string{
		"", "k1\n", "\uFEFFk1\r\nk2", "  # c\n\n k3 \n", "a b\n", "\xff", "k1\n\x00", "#\n#\n", strings.Repeat("k\n", 50),
		long + "\n", long + " tenant=a scopes=read+apply\n", FileHeader + "\n" + long + "\n" + FileTrailer + "\n", long,
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
		checkEntriesFuzz(t, string(data), keys)
		// Whole files only: every entry line ended with a newline.
		if len(keys) > 0 && !strings.Contains(string(data), keys[len(keys)-1].Key+"\n") &&
			!strings.Contains(string(data), keys[len(keys)-1].Key+" ") && !strings.Contains(string(data), keys[len(keys)-1].Key+"\t") &&
			!strings.Contains(string(data), keys[len(keys)-1].Key+"\r") {
			t.Fatalf("last key %q not followed by a newline or its attributes", keys[len(keys)-1].Key)
		}
		// Every parsed key verifies against a store built from them, with
		// its tenant and scopes.
		m, err := NewMemory(keys...)
		if err != nil {
			t.Fatalf("parsed entries refused by NewMemory: %v", err)
		}
		for _, k := range keys {
			id, err := m.Verify(t.Context(), k.Key)
			if err != nil {
				t.Fatalf("parsed key %q does not verify: %v", k.Key, err)
			}
			if k.Tenant != "" && id.Tenant != k.Tenant || k.Scopes != 0 && id.Scopes != k.Scopes {
				t.Fatalf("entry %+v verified as %+v", k, id)
			}
		}
	})
}

func FuzzParseList(f *testing.F) {
	long := strings.Repeat("k", MinKeyLen)
	for _, s := range []string{"", "a,b", " a , b ,", "a b", ",,,", "\x01", "é", long + "," + long + "x tenant=t scopes=admin"} {
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
		checkEntriesFuzz(t, s, keys)
		for _, k := range keys {
			if strings.Contains(k.Key, ",") {
				t.Fatalf("bad key %q", k.Key)
			}
		}
	})
}

func checkEntriesFuzz(t *testing.T, input string, entries []Entry) {
	for _, k := range entries {
		if len(k.Key) < MinKeyLen || len(k.Key) > MaxKeyLen || k.Key[0] == '#' {
			t.Fatalf("bad key %q", k.Key)
		}
		if _, _, bad := badKeyChar(k.Key); bad {
			t.Fatalf("key with a forbidden character %q", k.Key)
		}
		if !strings.Contains(input, k.Key) {
			t.Fatalf("key %q not in the input", k.Key)
		}
		if k.Tenant != "" && !ValidTenant(k.Tenant) {
			t.Fatalf("bad tenant %q", k.Tenant)
		}
	}
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
		m, err := NewMemory(Entry{Key: K("key1")})
		if err != nil {
			t.Fatal(err)
		}
		Middleware(m, Options{})(successHandler).ServeHTTP(rec, r)
		if rec.Code != 200 && rec.Code != 401 && rec.Code != 403 {
			t.Fatalf("status %d", rec.Code)
		}
	})
}
