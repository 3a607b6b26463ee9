package authkeys

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

func benchStore(n int) (*Memory, string) {
	keys, _ := GenerateN(n)
	entries := make([]Entry, n)
	for i, k := range keys {
		entries[i] = Entry{Key: k}
	}
	m, _ := NewMemory(entries...)
	return m, keys[n-1]
}

// BenchmarkVerify measures one verification against n keys; the cost is the
// same for a valid and an invalid key (no early exit).
func BenchmarkVerify(b *testing.B) {
	for _, n := range []int{10, 1000} {
		store, last := benchStore(n)
		for _, tc := range []struct{ name, key string }{{"valid", last}, {"invalid", Generate()}} {
			b.Run(fmt.Sprintf("keys=%d/%s", n, tc.name), func(b *testing.B) {
				b.ReportAllocs()
				ctx := context.Background()
				for b.Loop() {
					_, _ = store.Verify(ctx, tc.key)
				}
			})
		}
	}
}

// BenchmarkMiddleware measures the middleware's overhead per request
// (header read, verify, context value) around an empty handler.
func BenchmarkMiddleware(b *testing.B) {
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, n := range []int{10, 1000} {
		store, last := benchStore(n)
		h := Middleware(store, Options{})(noop)
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			req := httptest.NewRequest(http.MethodPost, "/api/apply", nil)
			req.Header.Set(HeaderAPIKey, last)
			w := httptest.NewRecorder()
			for b.Loop() {
				h.ServeHTTP(w, req)
			}
		})
	}
}
