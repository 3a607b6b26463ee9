package shareddata

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDirFindsCases(t *testing.T) {
	d := Dir(t, "dynoai3")
	if _, err := os.Stat(filepath.Join(d, "CASES.md")); err != nil {
		t.Fatalf("CASES.md not in %s: %v", d, err)
	}
}
