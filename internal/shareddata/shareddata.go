// Package shareddata locates the team's shared reference material
// (../shared/testdata next to the module root) for tests.
//
// A user's clone has no ../shared, so tests that need it skip with a clear
// message; with DYNOAI_SHARED_REQUIRED=1 (which .ci/run sets) its absence is
// a failure, because CI always has it. The switch is the project's own: CI
// services set CI=true on any clone, and that must not turn a user's run
// into failures.
package shareddata

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// RequiredEnv names the variable that makes missing shared testdata a
// failure instead of a skip.
const RequiredEnv = "DYNOAI_SHARED_REQUIRED"

// Dir returns the absolute path of ../shared/testdata/<elem...> relative to the
// module root. When it does not exist, the test fails under
// DYNOAI_SHARED_REQUIRED=1 and is skipped otherwise.
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
		if os.Getenv(RequiredEnv) == "1" {
			tb.Fatalf("shareddata: %s is missing and %s=1: %v", p, RequiredEnv, err)
		}
		tb.Skipf("shareddata: %s not found (a clone without ../shared); set %s=1 to make this a failure", p, RequiredEnv)
	}
	return p
}
