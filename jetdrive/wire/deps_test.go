package wire_test

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/dynoai/dynoai/internal/services"
)

// TestNoNetworkDependencies checks the promise of the package: an
// integrator who imports only the codec pulls in no network or system
// module. It asks the go command for the package's dependencies, so it is
// skipped only where no go command exists (never under CI, which sets
// DYNOAI_SERVICES_REQUIRED=1).
func TestNoNetworkDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		if services.Required() { // CI: the test must run
			t.Fatalf("the go command is needed to list dependencies: %v", err)
		}
		t.Skipf("no go command to list dependencies: %v", err)
	}
	cmd := exec.Command(gobin, "list", "-deps", "-json=ImportPath,Standard", ".")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var nonstd []string
	for {
		var p struct {
			ImportPath string
			Standard   bool
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		if strings.HasPrefix(p.ImportPath, "golang.org/x/") || p.ImportPath == "net" || strings.HasPrefix(p.ImportPath, "net/") {
			t.Errorf("the codec depends on %s", p.ImportPath)
		}
		if !p.Standard {
			nonstd = append(nonstd, p.ImportPath)
		}
	}
	if len(nonstd) != 1 || nonstd[0] != "github.com/dynoai/dynoai/jetdrive/wire" {
		t.Errorf("the codec's non-standard dependencies are %v, want only itself", nonstd)
	}
}
