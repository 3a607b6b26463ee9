// Command healthcheck asks a DynoAI server (examples/server) whether it is
// ready, and exits 0 when it answers 2xx, 1 otherwise. The server's
// container image (deploy/Dockerfile) is distroless: it has no shell, curl
// or wget, so its HEALTHCHECK and the compose file's health checks run this
// small static binary instead.
//
//	healthcheck                                        # http://127.0.0.1:$DYNOAI_PORT/api/health/ready
//	healthcheck -url http://127.0.0.1:5001/api/health/live
//	healthcheck -timeout 5s
//
// The default URL is the server's readiness route on the port the server
// reads from DYNOAI_PORT (5001 when unset), on DYNOAI_HOST when that names
// one address and on 127.0.0.1 when it is unset or a wildcard (0.0.0.0,
// ::). Readiness fails (503) while the run store, the file store or the
// analysis workers are unhealthy, so a replica that cannot store anything
// is reported unhealthy rather than merely alive. The answer's first line
// is printed, which Docker keeps in the container's health log.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"
)

// ReadyPath is the server's readiness route (httpapi's routeTable).
const ReadyPath = "/api/health/ready"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

// run checks once and returns the exit code.
func run(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "the URL to check (default: the readiness route on DYNOAI_HOST:DYNOAI_PORT)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "healthcheck: unexpected argument %q (use -url)\n", fs.Arg(0))
		return 2
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "healthcheck: -timeout must be positive")
		return 2
	}
	if *url == "" {
		u, err := defaultURL(env)
		if err != nil {
			fmt.Fprintln(stderr, "healthcheck:", err)
			return 2
		}
		*url = u
	}
	if err := check(ctx, *url, *timeout, stdout); err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	return 0
}

// defaultURL is the readiness route of the server the environment
// configures.
func defaultURL(env func(string) (string, bool)) (string, error) {
	host := "127.0.0.1"
	if h, ok := env("DYNOAI_HOST"); ok && strings.TrimSpace(h) != "" {
		h = strings.TrimSpace(h)
		a, err := netip.ParseAddr(h)
		switch {
		case h == "localhost":
			host = h
		case err != nil:
			return "", fmt.Errorf("DYNOAI_HOST %q is not an IP address", h)
		case !a.IsUnspecified():
			host = a.String()
		}
	}
	port := "5001"
	if p, ok := env("DYNOAI_PORT"); ok && strings.TrimSpace(p) != "" {
		port = strings.TrimSpace(p)
		if n, err := netip.ParseAddrPort("127.0.0.1:" + port); err != nil || n.Port() == 0 {
			return "", fmt.Errorf("DYNOAI_PORT %q is not a port (1..65535)", port)
		}
	}
	return "http://" + net.JoinHostPort(host, port) + ReadyPath, nil
}

// check GETs url and reports anything but a 2xx answer as an error.
func check(ctx context.Context, url string, timeout time.Duration, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "dynoai-healthcheck")
	// No proxy (the server is on this host, whatever HTTP_PROXY says), and
	// no redirects: the route answers itself or the check fails.
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%s: no answer within %v", url, timeout)
		}
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	first, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("%s: %s %s", url, res.Status, first)
	}
	fmt.Fprintf(stdout, "%s: %s %s\n", url, res.Status, first)
	return nil
}
