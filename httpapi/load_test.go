package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynoai/dynoai/authkeys"
	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/sqlstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLoad is a bounded load test over loopback with a real http.Client on
// the SQLite store and the local file store: requests/s and p50/p99 for
// liveness, health (store ping), runs listing, and analyses of a
// 100000-row upload, with and without authentication. It fails on any
// error or any run that does not complete. Run it with
//
//	DYNOAI_LOADTEST=1 go test -run TestLoad -v ./httpapi
//
// DYNOAI_LOADTEST_SECONDS sets the time per scenario (default 3).
func TestLoad(t *testing.T) {
	if os.Getenv("DYNOAI_LOADTEST") != "1" {
		t.Skip("set DYNOAI_LOADTEST=1 to run the load test")
	}
	secs := 3
	if v := os.Getenv("DYNOAI_LOADTEST_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err)
		secs = n
	}
	dur := time.Duration(secs) * time.Second
	big := simLog(t, 100_000)
	t.Logf("upload: 100000 rows, %.1f MiB", float64(len(big))/(1<<20))
	for _, auth := range []bool{false, true} {
		t.Run("auth="+strconv.FormatBool(auth), func(t *testing.T) {
			dir := t.TempDir()
			ctx := context.Background()
			rs, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "dynoai.db"), sqlstore.Options{})
			require.NoError(t, err)
			defer rs.Close()
			fs, err := runstore.NewLocalFileStore(filepath.Join(dir, "files"), runstore.LocalFileStoreOptions{})
			require.NoError(t, err)
			key := authkeys.Generate()
			cfg := Config{Runs: rs, Files: fs, Workers: 2, Queue: 64,
				RateLimit: RateLimitConfig{Enabled: true, Default: Rates{{1_000_000, time.Second}}, Expensive: Rates{{1000, time.Second}}}}
			if auth {
				cfg.Auth = AuthConfig{Enabled: true, Keys: memKeys(t, key)}
			}
			srv, err := New(cfg)
			require.NoError(t, err)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			sctx, stop := context.WithCancel(ctx)
			served := make(chan error, 1)
			go func() { served <- srv.Serve(sctx, ln, 30*time.Second) }()
			defer func() { stop(); require.NoError(t, <-served) }()
			base := "http://" + ln.Addr().String()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 60 * time.Second}
			hdr := http.Header{}
			if auth {
				hdr.Set("X-API-Key", key)
			}
			// Some runs to list.
			for i := range 200 {
				_, err := rs.Create(ctx, runstore.NewRun{Source: runstore.SourceAPI, Filename: "seed" + strconv.Itoa(i) + ".csv"})
				require.NoError(t, err)
			}
			get := func(path string) func() error {
				return func() error {
					req, _ := http.NewRequest("GET", base+path, nil)
					req.Header = hdr.Clone()
					res, err := client.Do(req)
					if err != nil {
						return err
					}
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						return fmt.Errorf("GET %s: %d", path, res.StatusCode)
					}
					return nil
				}
			}
			for _, sc := range []struct {
				name string
				conc int
				fn   func() error
			}{
				{"GET /api/health/live", 8, get("/api/health/live")},
				{"GET /api/health", 8, get("/api/health")},
				{"GET /api/runs?limit=50", 8, get("/api/runs?limit=50")},
			} {
				st := hammer(t, dur, sc.conc, sc.fn)
				t.Logf("%-24s c=%d  %7.0f req/s  p50 %6.2f ms  p99 %6.2f ms  n=%d errors=%d",
					sc.name, sc.conc, st.rps, ms(st.p50), ms(st.p99), st.n, st.errs)
				assert.Zero(t, st.errs)
			}

			// Analyses: each client uploads and waits for its run.
			body, ct := multipartBody(t, "big.csv", big, nil)
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(body)
			payload := buf.Bytes()
			var ids sync.Map
			var accepted atomic.Int64
			var acceptLat []time.Duration
			var mu sync.Mutex
			upload := func() error {
				req, _ := http.NewRequest("POST", base+"/api/analyze", bytes.NewReader(payload))
				req.Header = hdr.Clone()
				req.Header.Set("Content-Type", ct)
				t0 := time.Now()
				res, err := client.Do(req)
				if err != nil {
					return err
				}
				var acc map[string]any
				err = json.NewDecoder(res.Body).Decode(&acc)
				res.Body.Close()
				if err != nil || res.StatusCode != 202 {
					return fmt.Errorf("analyze: %d %v %v", res.StatusCode, acc, err)
				}
				mu.Lock()
				acceptLat = append(acceptLat, time.Since(t0))
				mu.Unlock()
				id := acc["run_id"].(string)
				ids.Store(id, true)
				accepted.Add(1)
				for { // wait for the run, as a client would poll
					req, _ := http.NewRequest("GET", base+"/api/status/"+id, nil)
					req.Header = hdr.Clone()
					res, err := client.Do(req)
					if err != nil {
						return err
					}
					var st map[string]any
					_ = json.NewDecoder(res.Body).Decode(&st)
					res.Body.Close()
					switch st["status"] {
					case "completed":
						return nil
					case "error":
						return fmt.Errorf("run %s failed: %v", id, st["error"])
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			st := hammer(t, dur, 2, upload)
			slices.Sort(acceptLat)
			t.Logf("%-24s c=%d  %7.2f analyses/s  end-to-end p50 %6.0f ms  p99 %6.0f ms  upload+accept p50 %5.0f ms  n=%d errors=%d",
				"POST /api/analyze 100k", 2, st.rps, ms(st.p50), ms(st.p99), ms(pct(acceptLat, 0.5)), st.n, st.errs)
			assert.Zero(t, st.errs)
			// No lost runs: every accepted run is completed in the store.
			n := 0
			ids.Range(func(k, _ any) bool {
				run, err := rs.Get(ctx, k.(string))
				require.NoError(t, err)
				assert.Equal(t, runstore.StatusCompleted, run.Status)
				var doc struct{ Samples int }
				require.NoError(t, json.Unmarshal(run.Results, &doc))
				assert.Equal(t, 100_000, doc.Samples, "every row analyzed")
				n++
				return true
			})
			assert.EqualValues(t, accepted.Load(), n)
			assert.Positive(t, n)
		})
	}
}

type loadStats struct {
	n, errs  int
	rps      float64
	p50, p99 time.Duration
}

func pct(s []time.Duration, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// hammer runs fn from conc goroutines for d and reports throughput and
// latency percentiles (calls already running at the deadline finish).
func hammer(t *testing.T, d time.Duration, conc int, fn func() error) loadStats {
	t.Helper()
	var mu sync.Mutex
	var lat []time.Duration
	var errs atomic.Int64
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := fn(); err != nil {
					if errs.Add(1) <= 3 {
						t.Log(err)
					}
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(lat)
	return loadStats{n: len(lat), errs: int(errs.Load()), rps: float64(len(lat)) / el.Seconds(), p50: pct(lat, 0.5), p99: pct(lat, 0.99)}
}
