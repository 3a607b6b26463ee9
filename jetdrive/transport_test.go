package jetdrive_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/jetdrive"
	"github.com/dynoai/dynoai/jetdrive/jetdrivetest"
)

// TestTransportConformance runs the Transport suite against every
// implementation: real UDP multicast on loopback and the in-memory bus.
func TestTransportConformance(t *testing.T) {
	t.Run("MulticastConn", func(t *testing.T) {
		jetdrivetest.EnsureLoopbackMulticast(t)
		jetdrivetest.RunTransport(t, func(t *testing.T) (jetdrive.Transport, jetdrive.Transport) {
			port := jetdrivetest.Port(t)
			a, err := jetdrive.Listen(context.Background(), jetdrivetest.Net(port))
			require.NoError(t, err)
			b, err := jetdrive.Listen(context.Background(), jetdrivetest.Net(port))
			require.NoError(t, err)
			return a, b
		})
	})
	t.Run("Bus", func(t *testing.T) {
		jetdrivetest.RunTransport(t, func(t *testing.T) (jetdrive.Transport, jetdrive.Transport) {
			var bus jetdrivetest.Bus
			return bus.Endpoint(), bus.Endpoint()
		})
	})
}
