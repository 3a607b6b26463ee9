package httpapi

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLimiterFlood (heavy): 200,000 distinct client addresses, half IPv4,
// half IPv6 each in a /64 of its own (the worst case for the limiter's
// table), post uploads without a valid key through a trusted proxy while a
// valid key uploads steadily. The valid key is never refused, and the heap
// grows by less than 64 MiB (the limiter's tables are bounded at 100,000
// buckets each). Budget: 3 minutes on a 2-core machine (about 30 s
// measured).
func TestLimiterFlood(t *testing.T) {
	heavy(t)
	const (
		budget    = 3 * time.Minute
		addresses = 200_000
		workers   = 64
	)
	start := time.Now()
	log := testLog(t)[:32<<10]
	log = log[:bytes.LastIndexByte(log, '\n')+1]
	e := newEnv(t, func(c *Config) {
		c.RateLimit = RateLimitConfig{Enabled: true, Default: Rates{{600, time.Minute}}, Expensive: Rates{{600, time.Minute}, {20000, time.Hour}}}
		c.Auth = AuthConfig{Enabled: true, Keys: memKeys(t, testKey)}
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		c.Queue = 256
	})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers + 4, MaxConnsPerHost: workers + 4}}
	addr := func(i int) string {
		if i%2 == 0 {
			return netip.AddrFrom4([4]byte{100, byte(64 + i>>17), byte(i >> 9), byte(i >> 1)}).String()
		}
		var b [16]byte
		b[0], b[1] = 0x20, 0x01
		b[4], b[5], b[6], b[7] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		b[15] = 1
		return netip.AddrFrom16(b).String()
	}
	seen := map[string]bool{}
	for i := range addresses {
		seen[addr(i)] = true
	}
	require.Len(t, seen, addresses, "distinct addresses")
	seen = nil
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	// The valid key uploads steadily, five a second.
	stop := make(chan struct{})
	var keyOK, keyRefused atomic.Int64
	var refusal atomic.Value
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			body, ct := multipartBody(t, "steady.csv", log, nil)
			req, _ := http.NewRequest("POST", e.ts.URL+"/api/analyze", body)
			req.Header.Set("Content-Type", ct)
			req.Header.Set("X-API-Key", testKey)
			req.Header.Set("X-Forwarded-For", "198.51.100.7")
			res, err := client.Do(req)
			if err != nil {
				keyRefused.Add(1)
				refusal.Store(err.Error())
				continue
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusAccepted {
				keyRefused.Add(1)
				refusal.Store(fmt.Sprintf("%d %s", res.StatusCode, b))
				continue
			}
			keyOK.Add(1)
		}
	})

	var next atomic.Int64
	var codes [600]atomic.Int64
	var errs atomic.Int64
	var flood sync.WaitGroup
	for range workers {
		flood.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= addresses {
					return
				}
				req, _ := http.NewRequest("POST", e.ts.URL+"/api/analyze", bytes.NewReader([]byte("--x--\r\n")))
				req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
				req.Header.Set("X-Forwarded-For", addr(i))
				if i%3 == 0 {
					req.Header.Set("X-API-Key", "dynoai_made_up_key_0123456789")
				}
				res, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				codes[res.StatusCode].Add(1)
			}
		})
	}
	flood.Wait()
	floodTime := time.Since(start)
	time.Sleep(time.Second) // a few more steady uploads after the flood
	close(stop)
	wg.Wait()

	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	buckets := e.srv.limExpensive.anonymous.len()
	t.Logf("flood: %d requests in %v (%.0f/s): 401 %d, 403 %d, 429 %d, transport errors %d",
		addresses, floodTime.Round(time.Millisecond), float64(addresses)/floodTime.Seconds(),
		codes[401].Load(), codes[403].Load(), codes[429].Load(), errs.Load())
	t.Logf("valid key: %d uploads accepted, %d refused; limiter: %d anonymous buckets; heap growth %.1f MiB",
		keyOK.Load(), keyRefused.Load(), buckets, float64(growth)/(1<<20))

	assert.Zero(t, errs.Load(), "transport errors")
	assert.Zero(t, keyRefused.Load(), "the valid key was refused: %v", refusal.Load())
	assert.Greater(t, keyOK.Load(), int64(5), "the valid key uploaded steadily")
	assert.LessOrEqual(t, buckets, DefaultMaxClients)
	assert.Less(t, growth, int64(64<<20), "limiter memory over 64 MiB")
	elapsed := time.Since(start)
	assert.Less(t, elapsed, budget, "over its time budget")
}
