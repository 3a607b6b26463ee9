package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func runCmd(t *testing.T, ctx context.Context, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var o, e bytes.Buffer
	code := run(ctx, args, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, &o, &e)
	return code, o.String(), e.String()
}

// A variable that does not parse is a usage error naming it.
func TestBadEnvironment(t *testing.T) {
	for name, bad := range map[string]string{"JETSTREAM_POLL_INTERVAL": "soon", "JETSTREAM_STUB_MODE": "maybe"} {
		code, _, errOut := runCmd(t, context.Background(), map[string]string{name: bad}, "-once")
		assert.Equal(t, 2, code, name)
		assert.Contains(t, errOut, name+"=", name)
	}
}

func TestStubOnce(t *testing.T) {
	code, out, errOut := runCmd(t, context.Background(), nil, "-stub", "-once")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "7 new, 6 done, 1 failed, 0 to retry")
	assert.Contains(t, out, "JS-ALPHA-001     done:")
	assert.Contains(t, out, "JS-GAMMA-404     failed (attempt 1)")
	assert.Contains(t, out, "missing required columns")
	assert.Contains(t, out, "(key ********6789)", "at most the last 4 characters of the key")
	assert.NotContains(t, out, "stub-key-0123456789")
}

// With a SQLite store, a second run picks up nothing new: the runs are
// recorded once.
func TestStubSQLiteRunsUntilCancelled(t *testing.T) {
	db := filepath.Join(t.TempDir(), "runs.db")
	code, out, errOut := runCmd(t, context.Background(), map[string]string{"JETSTREAM_STUB_MODE": "true"}, "-once", "-db", db)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "6 done")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	code, out, errOut = runCmd(t, ctx, map[string]string{"JETSTREAM_STUB_MODE": "true"}, "-db", db, "-interval", "50ms")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "stopped: 0 done, 0 failed")
	assert.False(t, strings.Contains(out, "done:"), out)
}

func TestUsage(t *testing.T) {
	code, _, errOut := runCmd(t, context.Background(), nil)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "-stub")
}
