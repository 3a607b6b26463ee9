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
	store, err := authkeys.NewMemory(
		authkeys.Entry{Key: "dynoai_example_key_shop_7", Tenant: "shop-7", Scopes: authkeys.ScopeRead | authkeys.ScopeAnalyze},
		authkeys.Entry{Key: "dynoai_example_key_bare_1"},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	id, err := store.Verify(context.Background(), "dynoai_example_key_shop_7")
	fmt.Println(id.ID == authkeys.IDOf("dynoai_example_key_shop_7"), id.Tenant, id.Scopes, err)
	id, _ = store.Verify(context.Background(), "dynoai_example_key_bare_1")
	fmt.Println(id.Tenant == authkeys.OwnTenant(id.ID), id.Scopes)
	_, err = store.Verify(context.Background(), "wrong")
	fmt.Println(err)
	_, err = authkeys.NewMemory(authkeys.Entry{Key: "x"})
	fmt.Println(err)
	// Output:
	// true shop-7 read+analyze <nil>
	// true read+analyze+apply
	// authkeys: invalid API key
	// authkeys: entry 1: key of 1 characters is too short: keys need at least 24 (make them with examples/keygen)
}

func ExampleParseEntry() {
	e, err := authkeys.ParseEntry("dynoai_0123456789abcdefghij tenant=shop-7 scopes=read+apply")
	fmt.Println(e.Tenant, e.Scopes, err)
	_, err = authkeys.ParseEntry("dynoai_0123456789abcdefghij scopes=read+write")
	fmt.Println(err)
	// Output:
	// shop-7 read+apply <nil>
	// authkeys: byte offset 28: unknown scope "write" (want read, analyze, apply or admin, joined by +)
}

func ExampleMiddleware() {
	store, _ := authkeys.NewMemory(
		authkeys.Entry{Key: "dynoai_example_key_shop_7", Tenant: "shop-7", Scopes: authkeys.ScopeApply},
		authkeys.Entry{Key: "dynoai_example_key_reader", Tenant: "shop-7", Scopes: authkeys.ScopeRead},
	)
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := authkeys.IdentityFromContext(r.Context())
		fmt.Fprintf(w, "hello %s of %s", id.ID, id.Tenant)
	})
	h := authkeys.Middleware(store, authkeys.Options{
		Require:   authkeys.RequireMutating,
		Scope:     authkeys.ScopeApply,
		RequestID: func(context.Context) string { return "0123456789ab" },
	})(hello)

	for _, key := range []string{"", "wrong", "dynoai_example_key_reader", "dynoai_example_key_shop_7"} {
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
	// 403 {"error":{"code":"INSUFFICIENT_SCOPE","message":"This API key may not do this: it needs the apply scope.","request_id":"0123456789ab"}}
	// 200 hello 996c5de80874 of shop-7
}

func ExampleOpenFile() {
	dir, _ := os.MkdirTemp("", "keys")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "api_keys.txt")
	_ = os.WriteFile(path, []byte("\uFEFF# dynoai-keys v1\n# production keys\n\ndynoai_first_0123456789abcdef tenant=shop-1\r\n"+
		"  dynoai_second_0123456789abcde   tenant=shop-2 scopes=read\n# end\n"), 0o600)

	f, err := authkeys.OpenFile(path, authkeys.FileOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f.Len(), "keys")

	// Rotation: rewrite the file, then Reload (or let Watch pick it up).
	// A rewrite cut off before its end line is refused; the keys in force
	// stay.
	_ = os.WriteFile(path, []byte("# dynoai-keys v1\ndynoai_second_0123456789abcde\ndynoai_third_01234"), 0o600)
	_, err = f.Reload(context.Background())
	fmt.Println(strings.Replace(err.Error(), path, "api_keys.txt", 1))
	id, err := f.Verify(context.Background(), "dynoai_first_0123456789abcdef")
	fmt.Println("first still valid:", err == nil, id.Tenant)
	// Output:
	// 2 keys
	// authkeys: api_keys.txt: line 3, column 1 (byte offset 47): the last line has no newline: the file looks cut off (end every line with a newline)
	// first still valid: true shop-1
}
