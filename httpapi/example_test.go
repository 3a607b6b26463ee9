package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/dynoai/dynoai/httpapi"
	"github.com/dynoai/dynoai/runstore"
)

// Example builds a server on in-memory stores and asks for its liveness.
func Example() {
	srv, err := httpapi.New(httpapi.Config{
		Runs:  runstore.NewMemory(runstore.Options{}),
		Files: runstore.NewMemFileStore(),
	})
	if err != nil {
		panic(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		panic(err)
	}
	defer srv.Shutdown(context.Background())
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	res, err := http.Get(ts.URL + "/api/runs")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Println(res.StatusCode, string(body))
	// Output: 200 {"next":"","runs":[]}
}

func ExampleParseRates() {
	r, err := httpapi.ParseRates("5/minute;20/hour")
	if err != nil {
		panic(err)
	}
	fmt.Println(len(r), r[0].N, r[0].Per, r[1].N, r[1].Per == time.Hour, r)
	_, err = httpapi.ParseRates("5/fortnight")
	fmt.Println(err)
	// Output:
	// 2 5 1m0s 20 true 5/minute;20/hour
	// httpapi: bad rate limit: limit 1 at byte 0 ("5/fortnight"): unit "fortnight" is not second, minute, hour, day or a duration in 1ms..168h
}

func ExampleParseAnalysisOptions() {
	o, err := httpapi.ParseAnalysisOptions(map[string]string{"smoothPasses": "2", "clamp": "10"})
	fmt.Println(o.SmoothPasses, o.ClampPercent, o.Weighting, err)
	_, err = httpapi.ParseAnalysisOptions(map[string]string{"decelManagement": "true"})
	fmt.Println(err)
	// Output:
	// 2 10 equal <nil>
	// field "decelManagement" (value "true"): not supported by this analyzer; only false (the predecessor's default) is accepted
}
