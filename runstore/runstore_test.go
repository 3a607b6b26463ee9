package runstore_test

import (
	"testing"
	"time"

	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/runstoretest"
)

func TestMemoryConformance(t *testing.T) {
	runstoretest.Run(t, func(t *testing.T, now func() time.Time) runstore.RunStore {
		return runstore.NewMemory(runstore.Options{Now: now})
	})
}
