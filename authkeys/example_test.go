package authkeys_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/dynoai/dynoai/authkeys"
)

func ExampleGenerate() {
	key := authkeys.Generate()
	fmt.Println(strings.HasPrefix(key, authkeys.Prefix), len(key))
	// Output: true 50
}

func ExampleMemory_Verify() {
	store := authkeys.NewMemory("dynoai_example_key")
	id, err := store.Verify(context.Background(), "dynoai_example_key")
	fmt.Println(id == authkeys.IDOf("dynoai_example_key"), err)
	_, err = store.Verify(context.Background(), "wrong")
	fmt.Println(err)
	// Output:
	// true <nil>
	// authkeys: invalid API key
}

func ExampleMiddleware() {
	store := authkeys.NewMemory("dynoai_example_key")
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := authkeys.KeyIDFromContext(r.Context())
		fmt.Fprintf(w, "hello %s", id)
	})
	h := authkeys.Middleware(store, authkeys.Options{
		Require:   authkeys.RequireMutating,
		RequestID: func(context.Context) string { return "0123456789ab" },
	})(hello)

	for _, key := range []string{"", "wrong", "dynoai_example_key"} {
		req := httptest.NewRequest(http.MethodPost, "/api/apply", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	// Output:
	// 401 {"error":{"code":"AUTH_REQUIRED","message":"API key required. Provide X-API-Key header or Authorization: Bearer.","request_id":"0123456789ab"}}
	// 403 {"error":{"code":"INVALID_API_KEY","message":"Invalid or expired API key.","request_id":"0123456789ab"}}
	// 200 hello ba43195cd308
}
