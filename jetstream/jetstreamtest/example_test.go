package jetstreamtest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/dynoai/dynoai/jetstream"
	"github.com/dynoai/dynoai/jetstream/jetstreamtest"
)

// A fake Jetstream with one seeded run and two injected faults: the client
// retries through a 503 and a 429, then reports a 404 as ErrNotFound.
func ExampleServer() {
	srv := jetstreamtest.NewServer(jetstreamtest.Options{APIKey: "test-key-123456"})
	defer srv.Close()
	srv.Add(jetstreamtest.GenerateRuns(1, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Minute, 1)...)
	srv.Inject(
		jetstreamtest.Fault{Kind: jetstreamtest.FaultStatus, Status: 503, Endpoint: jetstreamtest.EndpointList},
		jetstreamtest.Fault{Kind: jetstreamtest.FaultRateLimit, RetryAfter: "0", Endpoint: jetstreamtest.EndpointList},
	)
	c, err := jetstream.NewHTTPClient(jetstream.HTTPOptions{BaseURL: srv.URL, APIKey: "test-key-123456",
		Retry: jetstream.RetryPolicy{BaseDelay: time.Millisecond}})
	if err != nil {
		log.Fatal(err)
	}
	page, err := c.ListRuns(context.Background(), jetstream.ListRequest{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(page.Runs[0].ID, "after", srv.Requests(jetstreamtest.EndpointList), "requests")
	_, err = c.Run(context.Background(), "JS-missing")
	fmt.Println(errors.Is(err, jetstream.ErrNotFound), err)
	// Output:
	// JS-1-0000 after 3 requests
	// true jetstream: run metadata run "JS-missing": not found (HTTP 404): {"error":"run \"JS-missing\" not found"}
}
