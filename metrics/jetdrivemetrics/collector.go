// Package jetdrivemetrics exposes a JetDrive client's statistics as
// Prometheus metrics.
//
// jetdrivemetrics reads a snapshot (jetdrive.Stats) at every scrape through
// the small [StatsSource] interface that *jetdrive.Client implements, so the
// client never imports Prometheus and costs nothing between scrapes.
// Counters of the client become *_total counters, per-provider state
// becomes gauges labelled by the provider's host id and name. The number of
// providers reported is bounded and provider names (which arrive from the
// network) are sanitised, so a misbehaving sender cannot create unbounded
// series.
package jetdrivemetrics

import (
	"strconv"
	"strings"
	"time"

	"github.com/dynoai/dynoai/jetdrive"
	"github.com/prometheus/client_golang/prometheus"
)

// StatsSource is what the collector reads; *jetdrive.Client implements it.
type StatsSource interface {
	Stats() jetdrive.Stats
}

// Options configures [New]. The zero value is usable.
type Options struct {
	// MaxProviders bounds the providers reported per scrape (those with the
	// lowest host ids win). Zero means 32.
	MaxProviders int
	// Now is the clock for the age gauges (time.Now when nil).
	Now func() time.Time
}

// Collector is a prometheus.Collector over a StatsSource.
type Collector struct {
	src  StatsSource
	opts Options

	datagrams, bytes, decodeErrors, skipped, discarded      *prometheus.Desc
	values, samples, overflow, collisions, readErrors, gone *prometheus.Desc
	buffered, hostID, providers                             *prometheus.Desc
	provMessages, provSeq, provStale, provSynced, provRTT   *prometheus.Desc
	provAge, provChannels                                   *prometheus.Desc
}

const ns = "dynoai_jetdrive_"

// New returns a collector over src. Register it on the same Registerer as
// the metrics package's collectors.
func New(src StatsSource, opts Options) *Collector {
	if opts.MaxProviders <= 0 {
		opts.MaxProviders = 32
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(ns+name, help, labels, nil)
	}
	prov := []string{"host", "provider"}
	return &Collector{
		src: src, opts: opts,
		datagrams:    d("datagrams_total", "JetDrive datagrams received, including the client's own echoes."),
		bytes:        d("received_bytes_total", "JetDrive bytes received."),
		decodeErrors: d("decode_errors_total", "JetDrive datagrams rejected, by reason.", "reason"),
		skipped:      d("skipped_datagrams_total", "Well-formed JetDrive datagrams not acted on, by reason.", "reason"),
		discarded:    d("discarded_total", "JetDrive value records (late, duplicate) and frames (unmapped_frame) that decoded but made no sample, by reason.", "reason"),
		values:       d("values_total", "Channel values decoded, by whether the channel was described by a ChannelInfo.", "channel"),
		samples:      d("samples_total", "Samples put into the client's buffer."),
		overflow:     d("samples_dropped_total", "Samples discarded because the client's buffer was full."),
		collisions:   d("host_collisions_total", "Host-id collisions that made the client renegotiate."),
		readErrors:   d("read_errors_total", "Transport read errors the client survived."),
		gone:         d("providers_gone_total", "Providers forgotten after going silent."),
		buffered:     d("buffered_samples", "Samples waiting in the client's buffer."),
		hostID:       d("host_id", "The client's negotiated host id (0 while passive or negotiating)."),
		providers:    d("providers", "Providers currently known (all of them, even beyond the reported bound)."),
		provMessages: d("provider_messages_total", "Messages received from a provider.", prov...),
		provSeq:      d("provider_sequence_events_total", "Sequence-number anomalies of a provider, by kind.", append(prov, "kind")...),
		provStale:    d("provider_stale", "1 when a provider sent no values within the stale period.", prov...),
		provSynced:   d("provider_clock_synced", "1 when a provider's clock is synchronised by Ping/Pong.", prov...),
		provRTT:      d("provider_rtt_seconds", "Best Ping/Pong round trip to a provider.", prov...),
		provAge:      d("provider_last_values_age_seconds", "Seconds since a provider's last channel values (absent before the first).", prov...),
		provChannels: d("provider_channels", "Channels of a provider, by state (ok, stale, frozen).", append(prov, "state")...),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.datagrams, c.bytes, c.decodeErrors, c.skipped, c.discarded, c.values, c.samples, c.overflow, c.collisions,
		c.readErrors, c.gone, c.buffered, c.hostID, c.providers, c.provMessages, c.provSeq, c.provStale,
		c.provSynced, c.provRTT, c.provAge, c.provChannels,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one Stats snapshot per scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(c.datagrams, s.Datagrams)
	counter(c.bytes, s.Bytes)
	for _, e := range []struct {
		reason string
		n      uint64
	}{
		{"short_header", s.Errors.ShortHeader}, {"truncated", s.Errors.Truncated},
		{"payload_too_short", s.Errors.PayloadTooShort}, {"bad_version", s.Errors.BadVersion},
		{"unknown_key", s.Errors.UnknownKey}, {"source_all_hosts", s.Errors.SourceAllHosts},
		{"panic", s.Errors.Panics}, {"partial_record", s.Errors.PartialRecord}, {"over_limit", s.Errors.OverLimit},
	} {
		counter(c.decodeErrors, e.n, e.reason)
	}
	counter(c.skipped, s.OwnEchoes, "own_echo")
	counter(c.skipped, s.NotForUs, "not_for_us")
	counter(c.skipped, s.Ignored, "ignored_key")
	counter(c.skipped, s.Peer, "peer")
	counter(c.discarded, s.Discarded.Late, "late")
	counter(c.discarded, s.Discarded.Duplicate, "duplicate")
	counter(c.discarded, s.Discarded.UnmappedFrames, "unmapped_frame")
	counter(c.values, s.Values, "known")
	counter(c.values, s.Unknown, "unknown")
	counter(c.samples, s.Samples)
	counter(c.overflow, s.Overflow)
	counter(c.collisions, s.Collisions)
	counter(c.readErrors, s.ReadErrors)
	counter(c.gone, s.Gone)
	gauge(c.buffered, float64(s.Buffered))
	gauge(c.hostID, float64(s.HostID))
	gauge(c.providers, float64(len(s.Providers)))

	now := c.opts.Now()
	seen := make(map[string]bool)
	for i, p := range s.Providers { // Stats sorts providers by host id
		if i >= c.opts.MaxProviders {
			break
		}
		host := strconv.Itoa(int(p.Host))
		if seen[host] { // defensive: one series per host
			continue
		}
		seen[host] = true
		lv := []string{host, providerName(p.Name)}
		counter(c.provMessages, p.Messages, lv...)
		counter(c.provSeq, p.Seq.Dropped, append(lv, "dropped")...)
		counter(c.provSeq, p.Seq.Reordered, append(lv, "reordered")...)
		counter(c.provSeq, p.Seq.Duplicates, append(lv, "duplicate")...)
		gauge(c.provStale, b2f(p.Stale), lv...)
		gauge(c.provSynced, b2f(p.Synced), lv...)
		gauge(c.provRTT, p.RTT.Seconds(), lv...)
		if !p.LastValues.IsZero() {
			gauge(c.provAge, max(0, now.Sub(p.LastValues).Seconds()), lv...)
		}
		var ok, stale, frozen int
		for _, chs := range p.Channels {
			switch {
			case chs.Stale:
				stale++
			case chs.Frozen:
				frozen++
			default:
				ok++
			}
		}
		gauge(c.provChannels, float64(ok), append(lv, "ok")...)
		gauge(c.provChannels, float64(stale), append(lv, "stale")...)
		gauge(c.provChannels, float64(frozen), append(lv, "frozen")...)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// maxNameLen bounds a provider name label.
const maxNameLen = 64

// providerName makes a network-supplied name safe as a label value:
// printable ASCII only (others become '_'), at most 64 bytes.
func providerName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < maxNameLen; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7F {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
