package authkeys_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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

func ExampleOpenFile() {
	dir, _ := os.MkdirTemp("", "keys")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "api_keys.txt")
	_ = os.WriteFile(path, []byte("\uFEFF# production keys\n\ndynoai_first\r\n  dynoai_second  \n"), 0o600)

	f, err := authkeys.OpenFile(path, authkeys.FileOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f.Len(), "keys")

	// Rotation: rewrite the file, then Reload (or let Watch pick it up).
	_ = os.WriteFile(path, []byte("dynoai_second\ndynoai_third\nbad key\n"), 0o600)
	_, err = f.Reload(context.Background())
	fmt.Println(strings.Replace(err.Error(), path, "api_keys.txt", 1))
	_, err = f.Verify(context.Background(), "dynoai_first")
	fmt.Println("first still valid:", err == nil)
	// Output:
	// 2 keys
	// authkeys: api_keys.txt: line 3, column 4 (byte offset 30): character U+0020 is not allowed in a key (keys are printable ASCII without spaces)
	// first still valid: true
}
