// Package services decides what a test does when the external service it
// needs (PostgreSQL, Redis, an S3-compatible server) is not configured.
//
// A user's clone usually has none of them, so such tests skip with a message
// that says how to start one; with DYNOAI_SERVICES_REQUIRED=1 (which .ci/run
// sets after starting them) a missing service is a failure. The switch is
// the project's own: CI services set CI=true on any clone, and that must not
// turn a user's run into failures.
package services

import (
	"os"
	"testing"
)

// RequiredEnv names the variable that makes a missing service a failure
// instead of a skip.
const RequiredEnv = "DYNOAI_SERVICES_REQUIRED"

// Required reports whether DYNOAI_SERVICES_REQUIRED=1.
func Required() bool { return os.Getenv(RequiredEnv) == "1" }

// Need returns the value of the variable env. When it is empty the test
// fails under DYNOAI_SERVICES_REQUIRED=1 and is skipped otherwise; hint says
// how to provide the service.
func Need(tb testing.TB, env, hint string) string {
	tb.Helper()
	v := os.Getenv(env)
	if v != "" {
		return v
	}
	if Required() {
		tb.Fatalf("%s is not set and %s=1: %s", env, RequiredEnv, hint)
	}
	tb.Skipf("%s is not set: skipping (%s)", env, hint)
	return ""
}
