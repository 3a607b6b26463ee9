package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/dynoai/dynoai/jetdrive"
	"github.com/dynoai/dynoai/jetdrive/jetdrivetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSimulateListenRecordReplay(t *testing.T) {
	jetdrivetest.EnsureLoopbackMulticast(t)
	portN := jetdrivetest.Port(t)
	port := strconv.Itoa(portN)
	ctx := context.Background()
	capture := filepath.Join(t.TempDir(), "run.jdcap")
	net := []string{"-iface", "loopback", "-port", port}

	// A client of the test's own sees the simulator's final ClearChannelInfo.
	watch, err := jetdrive.NewClient(ctx, jetdrive.ClientConfig{Net: jetdrivetest.Net(portN), Passive: true})
	require.NoError(t, err)
	defer watch.Close()

	// listen and record run until cancelled, like a SIGINT; the test waits
	// for their first line (they joined the group) instead of sleeping.
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	var simOut, listenOut, recOut syncBuffer
	var simErr, listenErr, recErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		listenErr = run(lctx, append([]string{"listen", "-every", "500ms"}, net...), &listenOut, os.Stderr)
	}()
	go func() {
		defer wg.Done()
		recErr = run(lctx, append([]string{"record", "-o", capture}, net...), &recOut, os.Stderr)
	}()
	waitFor(t, "listen and record to join", func() bool {
		return strings.Contains(listenOut.String(), "listening on loopback") && strings.Contains(recOut.String(), "recording loopback")
	})
	simErr = run(ctx, append([]string{"simulate", "-duration", "2500ms", "-profile", "m8_131"}, net...), &simOut, os.Stderr)
	// Stopped by -duration, the simulator still clears its channels.
	waitEvent(t, watch, func(ev jetdrive.Event) bool { return ev.Kind == jetdrive.EventCleared && ev.Name == "DynoAI Simulator" })
	waitFor(t, "the listener to print a table with the simulator", func() bool {
		return strings.Contains(listenOut.String(), "rpm=")
	})
	stop()
	wg.Wait()
	require.NoError(t, simErr)
	require.NoError(t, listenErr)
	require.NoError(t, recErr)
	t.Logf("simulate:\n%s\nrecord:\n%s", simOut.String(), recOut.String())

	assert.Contains(t, simOut.String(), "simulating M8-131")
	out := listenOut.String()
	for _, want := range []string{`"DynoAI Simulator"`, "Engine RPM", "Air/Fuel Ratio 1", "rpm=", "afr[0]="} {
		assert.Contains(t, out, want)
	}
	assert.Contains(t, recOut.String(), "recorded ")
	if t.Failed() {
		t.Logf("listen output:\n%s", out)
	}

	var replayOut syncBuffer
	require.NoError(t, run(ctx, append([]string{"replay", "-i", capture, "-speed", "0"}, net...), &replayOut, os.Stderr))
	lines := strings.Split(strings.TrimSpace(replayOut.String()), "\n")
	require.Greater(t, len(lines), 50, "about 100 samples per second of simulation")
	// The file by position, the flags before the command: the same replay.
	var again syncBuffer
	require.NoError(t, run(ctx, append([]string{"-speed", "0", "replay", capture}, net...), &again, os.Stderr))
	assert.Equal(t, replayOut.String(), again.String())
	assert.Equal(t, "time_s,rpm,map_kpa,tps,afr_front,afr_rear,torque_ftlb,power_hp", lines[0])
	assert.NotContains(t, lines[len(lines)-1], "NaN,NaN")
}

// waitFor polls cond until it holds, failing after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitEvent reads c's events until one satisfies ok, failing after a
// generous deadline.
func waitEvent(t *testing.T, c *jetdrive.Client, ok func(jetdrive.Event) bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev, open := <-c.Events():
			if !open {
				t.Fatal("the client stopped")
			}
			if ok(ev) {
				return
			}
		case <-deadline:
			t.Fatal("timed out waiting for an event")
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "usage"},
		{[]string{"dance"}, `unknown command "dance"`},
		{[]string{"record"}, "-o is required"},
		{[]string{"replay"}, "-i is required"},
		{[]string{"replay", "-i", "/nonexistent.jdcap"}, "no such file"},
		{[]string{"replay", "/nonexistent.jdcap", "-speed", "0"}, "no such file"},
		{[]string{"-speed", "0", "replay", "/nonexistent.jdcap"}, "no such file"},
		{[]string{"replay", "-i", "a.jdcap", "b.jdcap"}, "give one file"},
		{[]string{"listen", "extra"}, `unexpected argument "extra"`},
		{[]string{"simulate", "-profile", "v8", "-iface", "loopback"}, `unknown engine profile "v8"`},
		{[]string{"listen", "-group", "not-an-ip"}, `-group "not-an-ip"`},
		{[]string{"listen", "-iface", "nosuchif0"}, "nosuchif0"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			err := run(context.Background(), tt.args, &bytes.Buffer{}, &bytes.Buffer{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	bad := filepath.Join(t.TempDir(), "bad.jdcap")
	require.NoError(t, os.WriteFile(bad, []byte("JDCAPv1\nshort"), 0o600))
	err := run(context.Background(), []string{"replay", "-i", bad}, &bytes.Buffer{}, &bytes.Buffer{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "at byte 13")
}
