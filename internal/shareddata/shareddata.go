// Package shareddata locates the team's shared reference material
// (../shared/testdata next to the module root) for tests.
//
// A user's clone has no ../shared, so tests that need it skip with a clear
// message; under CI=true its absence is a failure, because CI always has it.
package shareddata

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir returns the absolute path of ../shared/testdata/<elem...> relative to the
// module root. When it does not exist, the test fails under CI=true and is
// skipped otherwise.
func Dir(tb testing.TB, elem ...string) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("shareddata: cannot locate the module root")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	p := filepath.Join(append([]string{root, "..", "shared", "testdata"}, elem...)...)
	p, err := filepath.Abs(p)
	if err != nil {
		tb.Fatalf("shareddata: %v", err)
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("shareddata: %s is missing under CI=true: %v", p, err)
		}
		tb.Skipf("shareddata: %s not found (a clone without ../shared); set CI=true to make this a failure", p)
	}
	return p
}
