package jetstreamtest_test

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynolog"
	"github.com/dynoai/dynoai/jetstream"
	"github.com/dynoai/dynoai/jetstream/jetstreamtest"
)

func get(t *testing.T, url, key string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

func TestServerContract(t *testing.T) {
	s := jetstreamtest.NewServer(jetstreamtest.Options{APIKey: "k1"})
	defer s.Close()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.Add(jetstreamtest.GenerateRuns(3, t0, time.Second, 5)...)

	tests := []struct {
		name, path, key string
		status          int
		contains        string
	}{
		{"no key", "/api/v1/health", "", 401, "API key"},
		{"wrong key", "/api/v1/health", "k2", 401, "API key"},
		{"health", "/api/v1/health", "k1", 200, "ok"},
		{"list", "/api/v1/runs", "k1", 200, `"id":"JS-5-0002"`},
		{"since inclusive", "/api/v1/runs?since=2026-01-02T03%3A04%3A07Z", "k1", 200, `"id":"JS-5-0002"`},
		{"bad since", "/api/v1/runs?since=yesterday", "k1", 400, "RFC 3339"},
		{"bad limit", "/api/v1/runs?limit=-1", "k1", 400, "limit"},
		{"bad cursor", "/api/v1/runs?cursor=!!", "k1", 400, "cursor"},
		{"metadata", "/api/v1/runs/JS-5-0001", "k1", 200, `"peak_hp"`},
		{"unknown run", "/api/v1/runs/nope", "k1", 404, "not found"},
		{"download", "/api/v1/runs/JS-5-0000/download", "k1", 200, "Engine_RPM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, s.URL+tc.path, tc.key)
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Contains(t, string(body), tc.contains)
		})
	}
	resp, body := get(t, s.URL+"/api/v1/runs?since=2026-01-02T03%3A04%3A07Z", "k1")
	require.Equal(t, 200, resp.StatusCode)
	var page jetstream.RunPage
	require.NoError(t, json.Unmarshal(body, &page))
	require.Len(t, page.Runs, 1)
	assert.Equal(t, t0.Add(2*time.Second), page.Runs[0].Timestamp)
}

func TestServerFaultsApplyInOrder(t *testing.T) {
	s := jetstreamtest.NewServer(jetstreamtest.Options{})
	defer s.Close()
	s.Inject(jetstreamtest.Fault{Kind: jetstreamtest.FaultStatus, Status: 502, Endpoint: jetstreamtest.EndpointHealth, After: 1, Times: 2},
		jetstreamtest.Fault{Kind: jetstreamtest.FaultRateLimit, Endpoint: jetstreamtest.EndpointHealth, RetryAfter: "9"})
	var got []int
	var retryAfter string
	for range 5 {
		resp, _ := get(t, s.URL+"/api/v1/health", "x")
		got = append(got, resp.StatusCode)
		if resp.StatusCode == 429 {
			retryAfter = resp.Header.Get("Retry-After")
		}
	}
	// First request: the 502 fault waits (After), the 429 hits.
	assert.Equal(t, []int{429, 502, 502, 200, 200}, got)
	assert.Equal(t, "9", retryAfter)
	assert.Equal(t, map[jetstreamtest.FaultKind]int{jetstreamtest.FaultStatus: 2, jetstreamtest.FaultRateLimit: 1}, s.Injected())
	assert.Equal(t, 5, s.Requests(jetstreamtest.EndpointHealth))
}

func TestStubRunsConvertAndMatchTheSpec(t *testing.T) {
	runs, err := jetstreamtest.StubRuns(context.Background(), time.Now())
	require.NoError(t, err)
	require.Len(t, runs, 7)
	spec := map[string][2]float64{"JS-ALPHA-001": {118.4, 123.7}, "JS-DELTA-087": {128.3, 131.2},
		"JS-EPSILON-142": {95.7, 109.4}, "JS-ZETA-205": {82.6, 98.3}, "JS-ETA-318": {91.2, 106.8}}
	for _, r := range runs {
		t.Run(r.ID, func(t *testing.T) {
			rd, err := jetstream.NewReader(strings.NewReader(string(r.Data)), jetstream.ReaderOptions{Name: r.ID})
			if r.ID == "JS-GAMMA-404" {
				assert.ErrorIs(t, err, dynolog.ErrMissingColumns)
				assert.ErrorContains(t, err, "map")
				return
			}
			require.NoError(t, err)
			samples, err := dyno.Collect(context.Background(), rd)
			require.NoError(t, err)
			assert.Equal(t, r.DataPoints, len(samples))
			peak := 0.0
			for _, s := range samples {
				peak = math.Max(peak, s.Torque*s.RPM/5252)
			}
			assert.InDelta(t, r.PeakHP, peak, 0.06, "metadata peaks are the data's")
			if want, ok := spec[r.ID]; ok {
				assert.InDelta(t, want[0], r.PeakHP, 0.02*want[0], "peak HP near the spec's sample value")
				assert.InDelta(t, want[1], r.PeakTorque, 0.02*want[1], "peak torque near the spec's sample value")
			}
		})
	}
}

func TestGenerateRunsIsDeterministic(t *testing.T) {
	a := jetstreamtest.GenerateRuns(4, time.Unix(0, 0), time.Second, 11)
	b := jetstreamtest.GenerateRuns(4, time.Unix(0, 0), time.Second, 11)
	assert.Equal(t, a, b)
	assert.NotEqual(t, a[0].Data, jetstreamtest.GenerateRuns(1, time.Unix(0, 0), time.Second, 12)[0].Data)
}
