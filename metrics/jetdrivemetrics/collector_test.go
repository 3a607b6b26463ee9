package jetdrivemetrics

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynoai/dynoai/jetdrive"
	"github.com/dynoai/dynoai/jetdrive/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var _ StatsSource = (*jetdrive.Client)(nil)

type fixed jetdrive.Stats

func (f fixed) Stats() jetdrive.Stats { return jetdrive.Stats(f) }

func scrape(t *testing.T, c prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var b bytes.Buffer
	for _, mf := range mfs {
		_, err := expfmt.MetricFamilyToText(&b, mf)
		require.NoError(t, err)
	}
	return b.String()
}

func TestCollector(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st := jetdrive.Stats{
		HostID: 0x1234, Datagrams: 100, Bytes: 4096,
		Errors:    jetdrive.ErrorCounts{ShortHeader: 2, Truncated: 1, Panics: 1, PartialRecord: 4},
		Discarded: jetdrive.DiscardCounts{Late: 11, Duplicate: 12, UnmappedFrames: 13},
		OwnEchoes: 5, NotForUs: 6, Ignored: 7, Peer: 8, Values: 80, Unknown: 3,
		Samples: 40, Overflow: 1, Buffered: 9, Collisions: 1, ReadErrors: 2, Gone: 1,
		Providers: []jetdrive.ProviderStats{
			{Host: 7, Name: "Dyno\x00One", Messages: 90, Seq: wire.SeqStats{Dropped: 4, Reordered: 1, Duplicates: 2},
				LastValues: now.Add(-1500 * time.Millisecond), Synced: true, RTT: 3 * time.Millisecond,
				Channels: []jetdrive.ChannelStats{{Stale: true}, {Frozen: true}, {}, {}}},
			{Host: 9, Name: strings.Repeat("x", 100), Stale: true},
		},
	}
	out := scrape(t, New(fixed(st), Options{Now: func() time.Time { return now }}))
	for _, want := range []string{
		"dynoai_jetdrive_datagrams_total 100\n",
		"dynoai_jetdrive_received_bytes_total 4096\n",
		`dynoai_jetdrive_decode_errors_total{reason="short_header"} 2` + "\n",
		`dynoai_jetdrive_decode_errors_total{reason="panic"} 1` + "\n",
		`dynoai_jetdrive_decode_errors_total{reason="bad_version"} 0` + "\n",
		`dynoai_jetdrive_skipped_datagrams_total{reason="ignored_key"} 7` + "\n",
		`dynoai_jetdrive_decode_errors_total{reason="partial_record"} 4` + "\n",
		`dynoai_jetdrive_skipped_datagrams_total{reason="peer"} 8` + "\n",
		`dynoai_jetdrive_discarded_total{reason="late"} 11` + "\n",
		`dynoai_jetdrive_discarded_total{reason="duplicate"} 12` + "\n",
		`dynoai_jetdrive_discarded_total{reason="unmapped_frame"} 13` + "\n",
		`dynoai_jetdrive_values_total{channel="unknown"} 3` + "\n",
		"dynoai_jetdrive_samples_dropped_total 1\n",
		"dynoai_jetdrive_buffered_samples 9\n",
		"dynoai_jetdrive_host_id 4660\n",
		"dynoai_jetdrive_providers 2\n",
		`dynoai_jetdrive_provider_messages_total{host="7",provider="Dyno_One"} 90` + "\n",
		`dynoai_jetdrive_provider_sequence_events_total{host="7",kind="dropped",provider="Dyno_One"} 4` + "\n",
		`dynoai_jetdrive_provider_clock_synced{host="7",provider="Dyno_One"} 1` + "\n",
		`dynoai_jetdrive_provider_rtt_seconds{host="7",provider="Dyno_One"} 0.003` + "\n",
		`dynoai_jetdrive_provider_last_values_age_seconds{host="7",provider="Dyno_One"} 1.5` + "\n",
		`dynoai_jetdrive_provider_channels{host="7",provider="Dyno_One",state="ok"} 2` + "\n",
		`dynoai_jetdrive_provider_channels{host="7",provider="Dyno_One",state="frozen"} 1` + "\n",
		`dynoai_jetdrive_provider_stale{host="9",provider="` + strings.Repeat("x", 64) + `"} 1` + "\n",
	} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, `dynoai_jetdrive_provider_last_values_age_seconds{host="9"`, "no age before the first values")
}

func TestCollectorBoundsProviders(t *testing.T) {
	var st jetdrive.Stats
	for h := range 50 {
		st.Providers = append(st.Providers, jetdrive.ProviderStats{Host: uint16(h + 1), Name: "p"})
	}
	st.Providers = append(st.Providers, jetdrive.ProviderStats{Host: 1, Name: "dup"})
	out := scrape(t, New(fixed(st), Options{MaxProviders: 4}))
	assert.Equal(t, 4, strings.Count(out, "dynoai_jetdrive_provider_messages_total{"))
	assert.Contains(t, out, "dynoai_jetdrive_providers 51\n")
	out = scrape(t, New(fixed(st), Options{}))
	assert.Equal(t, 32, strings.Count(out, "dynoai_jetdrive_provider_messages_total{"))
}

// chanTransport feeds datagrams to a real jetdrive.Client.
type chanTransport struct {
	in   chan []byte
	once sync.Once
	done chan struct{}
}

func (c *chanTransport) ReadPacket(b []byte) (int, netip.AddrPort, error) {
	select {
	case d, ok := <-c.in:
		if !ok {
			return 0, netip.AddrPort{}, io.EOF
		}
		return copy(b, d), netip.MustParseAddrPort("127.0.0.1:22344"), nil
	case <-c.done:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}
func (c *chanTransport) WritePacket([]byte) error { return nil }
func (c *chanTransport) Close() error             { c.once.Do(func() { close(c.done) }); return nil }

// TestCollectorOverClient scrapes a real jetdrive.Client fed malformed
// datagrams: the collector sees the client's own counters.
func TestCollectorOverClient(t *testing.T) {
	tr := &chanTransport{in: make(chan []byte, 4), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := jetdrive.NewClient(ctx, jetdrive.ClientConfig{Transport: tr, Passive: true})
	require.NoError(t, err)
	defer c.Close()
	tr.in <- []byte{1, 2, 3}
	tr.in <- []byte{0, 0, 0, 0, 0, 0, 0, 0, 0}
	require.Eventually(t, func() bool { return c.Stats().Datagrams == 2 }, 5*time.Second, time.Millisecond)
	out := scrape(t, New(c, Options{}))
	assert.Contains(t, out, "dynoai_jetdrive_datagrams_total 2\n")
	assert.Contains(t, out, "dynoai_jetdrive_received_bytes_total 12\n")
	assert.Contains(t, out, `dynoai_jetdrive_decode_errors_total{reason="short_header"} 1`+"\n")
}
