package runstore_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBuildsWithoutCgo: the portable run store (types, interface, memory
// fake, conformance suite) and the HTTP server that uses only the interface
// build with CGO_ENABLED=0 and do not depend on the SQLite driver; only
// runstore/sqlstore needs cgo.
func TestBuildsWithoutCgo(t *testing.T) {
	gobin, err := exec.LookPath("go")
	require.NoError(t, err, "the test builds with the go command, which go test puts on PATH")
	pkgs := []string{"github.com/dynoai/dynoai/runstore", "github.com/dynoai/dynoai/runstore/runstoretest",
		"github.com/dynoai/dynoai/httpapi", "github.com/dynoai/dynoai/authkeys"}
	env := append(os.Environ(), "CGO_ENABLED=0")
	build := exec.Command(gobin, append([]string{"build"}, pkgs...)...)
	build.Env = env
	out, err := build.CombinedOutput()
	require.NoError(t, err, "CGO_ENABLED=0 go build:\n%s", out)

	list := exec.Command(gobin, append([]string{"list", "-deps"}, pkgs...)...)
	list.Env = env
	out, err = list.Output()
	require.NoError(t, err)
	deps := string(out)
	assert.NotContains(t, deps, "github.com/mattn/go-sqlite3")
	assert.NotContains(t, deps, "github.com/dynoai/dynoai/runstore/sqlstore")
	assert.True(t, strings.Contains(deps, "github.com/dynoai/dynoai/runstore\n"))
}
