package jetdrive

import (
	"testing"

	"github.com/dynoai/dynoai/jetdrive/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTimestampUnwrap(t *testing.T) {
	var p provState
	steps := []struct {
		ts   uint32
		want int64
	}{
		{0xFFFF_FF00, 0xFFFF_FF00},
		{0xFFFF_FFF0, 0xFFFF_FFF0},
		{0x0000_0010, 1<<32 + 0x10},        // wrapped
		{0xFFFF_FFF8, 0xFFFF_FFF8},         // a late one from before the wrap
		{0x0000_0020, 1<<32 + 0x20},        // after the wrap again
		{0x0000_0018, 1<<32 + 0x18},        // slightly late, same epoch
		{0x7FFF_0000, 1<<32 + 0x7FFF_0000}, // forward by almost half the range
		{0xF000_0000, 1<<32 + 0xF000_0000},
		{0x0000_0040, 2<<32 + 0x40}, // second wrap
	}
	for i, s := range steps {
		assert.Equal(t, s.want, p.unwrap(s.ts), "step %d", i)
	}
}

func TestResolveInterface(t *testing.T) {
	for _, spec := range []string{"loopback", "lo", "127.0.0.1"} {
		ifi, err := ResolveInterface(spec)
		require.NoError(t, err, spec)
		assert.Equal(t, "lo", ifi.Name, spec)
	}
	for _, spec := range []string{"nosuchif0", "203.0.113.77"} {
		_, err := ResolveInterface(spec)
		require.Error(t, err)
		assert.Contains(t, err.Error(), spec)
	}
	ifs, err := Interfaces()
	require.NoError(t, err)
	found := false
	for _, i := range ifs {
		if i.Loopback {
			found = true
		}
	}
	assert.True(t, found, "Interfaces lists the loopback interface")
}

func TestClockSyncWorkedExample(t *testing.T) {
	// §3.8: ping at 1000, pong (V6) at 1040 → latency 20, offset −122416; a
	// sample at 123500 maps to 1064.
	p := &provState{}
	c := &Client{cfg: ClientConfig{PingInterval: 30e9}, node: &node{}}
	c.base = c.node.base
	at := c.node.base.Add(1040e6)
	c.sync(p, wire.Pong{Version: 1, HostTS: 1000, RemoteTS: 123456}, at)
	require.True(t, p.synced)
	assert.Equal(t, int64(-122416-20), p.offset)
	assert.Equal(t, int64(1064), p.unwrap(123500)+p.offset)
}
