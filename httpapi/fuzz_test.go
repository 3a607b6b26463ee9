package httpapi

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParseRates(f *testing.F) {
	for _, s := range []string{"100/minute", "5/minute;20/hour", "1 per day", "10/30s", "0/x", ";", "9999999/second", "5/minute,,7/hour"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRates(s)
		if err != nil {
			if !errors.Is(err, ErrRate) {
				t.Fatalf("error does not wrap ErrRate: %v", err)
			}
			return
		}
		for _, l := range r {
			if l.N < 1 || l.N > MaxRateN || l.Per < 1e6 {
				t.Fatalf("out of range limit %+v from %q", l, s)
			}
		}
		if len(r) > 0 {
			again, err := ParseRates(r.String())
			if err != nil || len(again) != len(r) {
				t.Fatalf("String %q does not parse back: %v", r.String(), err)
			}
		}
	})
}

func FuzzParseAnalysisOptions(f *testing.F) {
	f.Add("smoothPasses", "2", "clamp", "7.5")
	f.Add("weighting", "TORQUE", "fuel", "e85")
	f.Add("rearBias", "0.0", "decelManagement", "no")
	f.Add("vehicle", "FLHX\x00", "maxBadRows", "-1")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		o, err := ParseAnalysisOptions(map[string]string{k1: v1, k2: v2})
		if err != nil {
			var oe *OptionError
			if !errors.As(err, &oe) || oe.Field == "" || !utf8.ValidString(oe.Value) {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		if o.SmoothPasses < 0 || o.SmoothPasses > 5 || !(o.ClampPercent > 0 && o.ClampPercent <= 50) || o.MinSamples < 1 {
			t.Fatalf("out of range options %+v", o)
		}
		if _, err := o.VE(); err != nil {
			t.Fatalf("validated options do not convert: %v", err)
		}
	})
}

func FuzzUploadName(f *testing.F) {
	for _, s := range []string{"a.csv", "../../etc/passwd.csv", `..\x.txt`, "тест_файл.csv", "", ".csv", "a.CSV\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := uploadName(s)
		if err != nil {
			return
		}
		if strings.ContainsAny(n, `/\`) || n == "." || n == ".." || !utf8.ValidString(n) || len(n) > maxFilenameBytes {
			t.Fatalf("unsafe name %q from %q", n, s)
		}
		for _, r := range n {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("control character in %q", n)
			}
		}
	})
}

// FuzzRequestHeaders throws arbitrary paths, request ids and
// X-Forwarded-For values at the whole handler: it must answer, never
// panic, and every error body is the envelope with a well-formed id.
func FuzzRequestHeaders(f *testing.F) {
	e := newEnv(f, func(c *Config) {
		c.RateLimit = RateLimitConfig{Enabled: true, Default: Rates{{1000000, 1e9}}}
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	})
	f.Add("/api/runs", "id-1", "1.2.3.4")
	f.Add("/api/download/../x", "", "garbage,,")
	f.Add("/api/ve-data/%00", "a b", "::1, 10.0.0.1")
	f.Fuzz(func(t *testing.T, path, rid, xff string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " ?#") {
			return
		}
		req := httptest.NewRequest("GET", "http://x/", nil)
		req.URL.Path = path
		req.RemoteAddr = "192.0.2.1:1234"
		req.Header.Set(HeaderRequestID, rid)
		req.Header.Set("X-Forwarded-For", xff)
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, req)
		got := rec.Header().Get(HeaderRequestID)
		if !ValidRequestID(got) {
			t.Fatalf("bad request id %q", got)
		}
		if rec.Code >= 400 && !bytes.Contains(rec.Body.Bytes(), []byte(`"request_id":"`+got+`"`)) {
			t.Fatalf("%d without the envelope: %s", rec.Code, rec.Body.String())
		}
		if rec.Code == http.StatusInternalServerError {
			t.Fatalf("500 for %q", path)
		}
	})
}
