package jetstream_test

import (
	"testing"

	"github.com/dynoai/dynoai/jetstream"
	"github.com/dynoai/dynoai/jetstream/jetstreamtest"
)

func TestMemoryStoreConformance(t *testing.T) {
	jetstreamtest.RunStateStore(t, func(*testing.T) jetstream.StateStore { return jetstream.NewMemoryStore() })
}
