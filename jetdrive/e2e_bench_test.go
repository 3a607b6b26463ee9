package jetdrive_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/jetdrive"
	"github.com/dynoai/dynoai/jetdrive/jetdrivetest"
	"github.com/dynoai/dynoai/jetdrive/wire"
)

// BenchmarkEndToEnd publishes frames of 50 channels at fixed rates from a
// Provider to a Client over real multicast on loopback for one second each
// and reports what arrived. Rates come from DYNOAI_JETDRIVE_RATES (frames
// per second, comma-separated; default 1000,5000,10000,20000). Each frame
// has its own timestamp (one clock tick per frame) so every frame is one
// sample. Run with -benchtime=1x.
func BenchmarkEndToEnd(b *testing.B) {
	jetdrivetest.EnsureLoopbackMulticast(b)
	rates := []int{1000, 5000, 10000, 20000}
	if s := os.Getenv("DYNOAI_JETDRIVE_RATES"); s != "" {
		rates = nil
		for _, f := range strings.Split(s, ",") {
			r, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				b.Fatalf("DYNOAI_JETDRIVE_RATES: %v", err)
			}
			rates = append(rates, r)
		}
	}
	const nchan = 50
	chans := make([]wire.ChannelDef, nchan)
	for i := range chans {
		chans[i] = wire.ChannelDef{ID: uint16(i), Name: fmt.Sprintf("Aux %d", i), Unit: wire.UnitVolts}
	}
	chans[0] = wire.ChannelDef{ID: 0, Name: "Engine RPM", Unit: wire.UnitEngineSpeed}
	for _, rate := range rates {
		b.Run(fmt.Sprintf("frames=%d/s×%dch", rate, nchan), func(b *testing.B) {
			for b.Loop() {
				endToEnd(b, rate, chans, time.Second)
			}
		})
	}
}

func endToEnd(b *testing.B, rate int, chans []wire.ChannelDef, dur time.Duration) {
	ctx := context.Background()
	port := jetdrivetest.Port(b)
	c, err := jetdrive.NewClient(ctx, jetdrive.ClientConfig{Net: jetdrivetest.Net(port), Passive: true, Buffer: 1 << 14})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	p, err := jetdrive.NewProvider(ctx, jetdrive.ProviderConfig{Net: jetdrivetest.Net(port), HostID: 0x1A2B}, chans)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	var got atomic.Int64
	cctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := dyno.NewSample()
		for c.Next(cctx, &s) == nil {
			if dyno.Has(s.RPM) {
				got.Add(1)
			}
		}
	}()
	// Wait until the client knows the channels.
	for deadline := time.Now().Add(2 * time.Second); len(c.Mapping()) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("client never learned the channels")
		}
	}
	vals := make([]wire.Value, 0, 64*len(chans))
	total := int(float64(rate) * dur.Seconds())
	start := time.Now()
	sent := 0
	for sent < total {
		due := min(total, int(time.Since(start).Seconds()*float64(rate)))
		vals = vals[:0]
		for sent < due && len(vals) < 140*8 {
			for _, ch := range chans {
				vals = append(vals, wire.Value{Channel: ch.ID, TS: uint32(sent), Value: float32(sent)})
			}
			sent++
		}
		if len(vals) > 0 {
			if err := p.Publish(vals); err != nil {
				b.Fatal(err)
			}
		} else {
			time.Sleep(200 * time.Microsecond)
		}
	}
	elapsed := time.Since(start)
	for deadline := time.Now().Add(2 * time.Second); got.Load() < int64(total) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	<-done
	st := c.Stats()
	var seq wire.SeqStats
	for _, ps := range st.Providers {
		seq = ps.Seq
	}
	b.ReportMetric(float64(total*len(chans))/elapsed.Seconds(), "values/s")
	b.ReportMetric(float64(total-int(got.Load())), "lost_frames")
	b.ReportMetric(float64(seq.Dropped), "dropped_datagrams")
	b.ReportMetric(float64(st.Overflow), "overflow")
	b.ReportMetric(float64(p.Stats().Messages)/elapsed.Seconds(), "datagrams/s")
}
