package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dynoai/dynoai/httpapi"
	"github.com/dynoai/dynoai/runstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// TestAgainstTheServer checks the real server's readiness route, found
// from DYNOAI_HOST and DYNOAI_PORT as in the container: ready, then not
// ready when its run store fails, then ready again.
func TestAgainstTheServer(t *testing.T) {
	runs := runstore.NewMemory(runstore.Options{})
	srv, err := httpapi.New(httpapi.Config{Runs: runs, Files: runstore.NewMemFileStore()})
	require.NoError(t, err)
	require.NoError(t, srv.Start(context.Background()))
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	_, port, err := net.SplitHostPort(ts.Listener.Addr().String())
	require.NoError(t, err)
	env := envOf(map[string]string{"DYNOAI_HOST": "0.0.0.0", "DYNOAI_PORT": port})

	var out, errOut bytes.Buffer
	require.Equal(t, 0, run(context.Background(), nil, env, &out, &errOut), "stderr: %s", errOut.String())
	assert.Contains(t, out.String(), "200 OK")
	assert.Contains(t, out.String(), `"ready"`)

	runs.SetUnavailable(errors.New("disk full"))
	// The server reuses a storage check's result for a moment.
	require.Eventually(t, func() bool {
		errOut.Reset()
		return run(context.Background(), nil, env, &out, &errOut) == 1
	}, 10*time.Second, 100*time.Millisecond)
	assert.Contains(t, errOut.String(), "503")
	assert.Contains(t, errOut.String(), `"component":"database"`, "the log says which component")
	runs.SetUnavailable(nil)
	require.Eventually(t, func() bool {
		return run(context.Background(), nil, env, &out, &errOut) == 0
	}, 10*time.Second, 100*time.Millisecond)
}

func TestFailures(t *testing.T) {
	stop := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer slow.Close()
	defer close(stop)
	redirect := httptest.NewServer(http.RedirectHandler("/elsewhere", http.StatusFound))
	defer redirect.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"timeout", []string{"-url", slow.URL, "-timeout", "100ms"}, "no answer within 100ms"},
		{"connection refused", []string{"-url", closed.URL}, "connection refused"},
		{"a redirect is not followed", []string{"-url", redirect.URL}, "302 Found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			// The slow server answers only when the test ends: the message
			// proves the check gave up at its own timeout.
			assert.Equal(t, 1, run(context.Background(), tc.args, envOf(nil), &out, &errOut))
			assert.Contains(t, errOut.String(), tc.want)
		})
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"http://x"}, nil, "unexpected argument"},
		{[]string{"-timeout", "0s"}, nil, "-timeout must be positive"},
		{[]string{"-nope"}, nil, "flag provided but not defined"},
		{nil, map[string]string{"DYNOAI_PORT": "http"}, `DYNOAI_PORT "http" is not a port`},
		{nil, map[string]string{"DYNOAI_PORT": "0"}, `DYNOAI_PORT "0" is not a port`},
		{nil, map[string]string{"DYNOAI_HOST": "example.com"}, "not an IP address"},
	} {
		var out, errOut bytes.Buffer
		assert.Equal(t, 2, run(context.Background(), tc.args, envOf(tc.env), &out, &errOut), tc.args)
		assert.Contains(t, errOut.String(), tc.want)
	}
}

func TestDefaultURL(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{nil, "http://127.0.0.1:5001/api/health/ready"},
		{map[string]string{"DYNOAI_HOST": " ", "DYNOAI_PORT": ""}, "http://127.0.0.1:5001/api/health/ready"},
		{map[string]string{"DYNOAI_HOST": "0.0.0.0", "DYNOAI_PORT": "8080"}, "http://127.0.0.1:8080/api/health/ready"},
		{map[string]string{"DYNOAI_HOST": "::"}, "http://127.0.0.1:5001/api/health/ready"},
		{map[string]string{"DYNOAI_HOST": "::1"}, "http://[::1]:5001/api/health/ready"},
		{map[string]string{"DYNOAI_HOST": "10.1.2.3"}, "http://10.1.2.3:5001/api/health/ready"},
		{map[string]string{"DYNOAI_HOST": "localhost"}, "http://localhost:5001/api/health/ready"},
	} {
		got, err := defaultURL(envOf(tc.env))
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, tc.env)
		assert.True(t, strings.HasSuffix(got, ReadyPath))
	}
}
