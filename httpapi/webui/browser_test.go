package webui_test

// Browser tests: the UI in a real headless Chromium, driven by chromedp,
// against a real server (httpapi on in-memory stores, mounted under
// /dyno/). They are heavy (a browser per test), so they run once in CI with
// DYNOAI_HEAVY_TESTS=1 (.ci/run installs Chromium with .ci/chromium.sh);
// budget: 3 minutes for all of them, asserted by TestMain's caller's
// -timeout and measured at well under one.
//
// Screenshots of each page go to t.ArtifactDir() (keep them with
// go test -artifacts); DYNOAI_UI_SCREENSHOTS=dir also writes the run and
// live pages there (the README's pictures in docs/screenshots).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/dynoai/dynoai/authkeys"
	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/httpapi"
	"github.com/dynoai/dynoai/jetdrive"
	"github.com/dynoai/dynoai/jetdrive/jetdrivetest"
	"github.com/dynoai/dynoai/jetstream"
	"github.com/dynoai/dynoai/jetstream/jetstreamtest"
	"github.com/dynoai/dynoai/jetstream/runstorestate"
	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/dynoai3import"
	d3t "github.com/dynoai/dynoai/runstore/dynoai3import/dynoai3importtest"
	"github.com/dynoai/dynoai/tune"
	"github.com/dynoai/dynoai/ve"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const base = "/dyno"

// chromiumPath returns the browser to drive, or skips the test: browser
// tests run with DYNOAI_HEAVY_TESTS=1 only, and then a missing browser is
// a failure in CI.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if os.Getenv("DYNOAI_HEAVY_TESTS") != "1" {
		t.Skip("browser test: set DYNOAI_HEAVY_TESTS=1 to run it (CI runs it once; needs Debian's chromium, see .ci/chromium.sh)")
	}
	for _, c := range []string{os.Getenv("DYNOAI_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium found: run .ci/chromium.sh or set DYNOAI_CHROMIUM")
	}
	t.Skip("no Chromium found: apt-get install chromium, or set DYNOAI_CHROMIUM")
	return ""
}

// server is a running httpapi server mounted under /dyno/.
type server struct {
	srv  *httpapi.Server
	ts   *httptest.Server
	runs runstore.RunStore
}

func newServer(t *testing.T, mutate func(*httpapi.Config)) *server {
	t.Helper()
	s := &server{runs: runstore.NewMemory(runstore.Options{})}
	cfg := httpapi.Config{Runs: s.runs, Files: runstore.NewMemFileStore(), BasePath: base}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := httpapi.New(cfg)
	require.NoError(t, err)
	require.NoError(t, srv.Start(context.Background()))
	mux := http.NewServeMux()
	mux.Handle(base+"/", srv.Handler())
	s.srv, s.ts = srv, httptest.NewServer(mux)
	t.Cleanup(func() {
		s.ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return s
}

func (s *server) url(p string) string { return s.ts.URL + base + p }

func (s *server) getJSON(t *testing.T, p string, v any) {
	t.Helper()
	res, err := http.Get(s.url(p))
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, p)
	require.NoError(t, json.NewDecoder(res.Body).Decode(v))
}

// expected lists console entries a test provokes on purpose (Chromium logs
// every refused request, such as a wrong key's 403, as an error).
type expected struct {
	mu   sync.Mutex
	subs []string
}

func (e *expected) add(sub string) { e.mu.Lock(); defer e.mu.Unlock(); e.subs = append(e.subs, sub) }
func (e *expected) has(text string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.subs {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}

// browser starts a headless Chromium at 1280x800 and fails the test on any
// console error or uncaught exception the pages report, but those
// expected.
func browser(t *testing.T) (context.Context, *expected) {
	t.Helper()
	path := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-default-browser-check", true),
		chromedp.WindowSize(1280, 800),
	}
	// A fresh profile, removed after the browser exits (t.TempDir would
	// fail the test when a browser helper process still writes to it).
	profile, err := os.MkdirTemp("", "dynoai-chromium-")
	require.NoError(t, err)
	opts = append(opts, chromedp.UserDataDir(profile))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	var mu sync.Mutex
	var problems []string
	exp := &expected{}
	chromedp.ListenTarget(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError || e.Type == runtime.APITypeAssert {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				problems = append(problems, "console.error: "+strings.Join(parts, " "))
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+e.ExceptionDetails.Text+" "+exceptionText(e.ExceptionDetails))
		case *log.EventEntryAdded:
			if e.Entry.Level == log.LevelError && !exp.has(e.Entry.Text+" "+e.Entry.URL) {
				problems = append(problems, "log error: "+e.Entry.Text+" "+e.Entry.URL)
			}
		}
	})
	require.NoError(t, chromedp.Run(ctx, log.Enable(), runtime.Enable()))
	t.Cleanup(func() {
		_ = chromedp.Cancel(ctx) // closes the browser and waits for it
		cancel()
		cancelA()
		_ = os.RemoveAll(profile)
		mu.Lock()
		defer mu.Unlock()
		assert.Empty(t, problems, "the pages reported errors")
	})
	return ctx, exp
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d.Exception != nil {
		return d.Exception.Description
	}
	return ""
}

// shot saves a full-page screenshot as name.png in the test's artifact
// directory and, for the README's pictures, what the window shows in
// DYNOAI_UI_SCREENSHOTS.
func shot(t *testing.T, ctx context.Context, name string, readme bool) {
	t.Helper()
	var png []byte
	require.NoError(t, chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)))
	require.NoError(t, os.WriteFile(filepath.Join(t.ArtifactDir(), name+".png"), png, 0o644))
	if dir := os.Getenv("DYNOAI_UI_SCREENSHOTS"); dir != "" && readme {
		require.NoError(t, chromedp.Run(ctx, chromedp.CaptureScreenshot(&png)))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
	}
}

func run(t *testing.T, ctx context.Context, timeout time.Duration, actions ...chromedp.Action) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	require.NoError(t, chromedp.Run(tctx, actions...))
}

type cell struct {
	Grid  string `json:"grid"`
	Row   int    `json:"row"`
	Col   int    `json:"col"`
	RPM   string `json:"rpm"`
	Load  string `json:"load"`
	Value string `json:"value"`
	Text  string `json:"text"`
}

// cellsJS reads every heatmap cell on the page.
const cellsJS = `[...document.querySelectorAll('table.heat')].flatMap(t => [...t.querySelectorAll('td[data-row]')].map(td => ({
  grid: t.dataset.grid, row: +td.dataset.row, col: +td.dataset.col, rpm: td.dataset.rpm, load: td.dataset.load,
  value: td.dataset.value, text: td.textContent })))`

type result struct {
	RPM       []float64 `json:"rpm"`
	MAP       []float64 `json:"map_kpa"`
	Cylinders []struct {
		Name       string       `json:"name"`
		Percent    [][]*float64 `json:"percent"`
		AFRError   [][]*float64 `json:"afr_error"`
		Hits       [][]*float64 `json:"hits"`
		Confidence [][]*string  `json:"confidence"`
	} `json:"cylinders"`
}

func sampleLog(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../../testdata/sample_pulls.csv")
	require.NoError(t, err)
	_, err = os.Stat(p)
	require.NoError(t, err)
	return p
}

// TestBrowserUploadRunCalibrate uploads the sample log in the page, waits
// for the run page, compares every cell of every heatmap with the run's
// JSON, then uploads a base table, checks the dry run's diff against the
// API's, applies and rolls back, and checks the restored hash.
func TestBrowserUploadRunCalibrate(t *testing.T) {
	s := newServer(t, nil)
	ctx, _ := browser(t)

	var hash string
	run(t, ctx, 20*time.Second,
		chromedp.Navigate(s.url("/#/upload")),
		chromedp.WaitVisible(`#drop`, chromedp.ByQuery),
		chromedp.SetUploadFiles(`#file`, []string{sampleLog(t)}, chromedp.ByQuery),
		chromedp.WaitEnabled(`#analyze`, chromedp.ByQuery),
		chromedp.SetValue(`#o-smooth_passes`, "1", chromedp.ByQuery),
	)
	shot(t, ctx, "upload", false)
	run(t, ctx, 90*time.Second,
		chromedp.Click(`#analyze`, chromedp.ByQuery),
		chromedp.WaitVisible(`table.heat[data-grid^="percent:"]`, chromedp.ByQuery),
		chromedp.Evaluate(`location.hash`, &hash),
	)
	require.True(t, strings.HasPrefix(hash, "#/run/"), hash)
	id := strings.TrimPrefix(hash, "#/run/")

	var body struct {
		Run struct {
			Settings map[string]any `json:"settings"`
			Results  result         `json:"results"`
		} `json:"run"`
	}
	s.getJSON(t, "/api/runs/"+id, &body)
	res := body.Run.Results
	assert.EqualValues(t, 1, body.Run.Settings["smooth_passes"], "the option set in the form reached the analysis")
	require.NotEmpty(t, res.Cylinders)
	shot(t, ctx, "run-full", false)

	compared := 0
	for _, metric := range []string{"percent", "afr_error", "hits", "confidence"} {
		var cells []cell
		run(t, ctx, 10*time.Second,
			chromedp.Click(`.tabs button[data-metric="`+metric+`"]`, chromedp.ByQuery),
			chromedp.WaitVisible(`table.heat[data-grid^="`+metric+`:"]`, chromedp.ByQuery),
			chromedp.Evaluate(cellsJS, &cells))
		seen := map[string]int{}
		for _, c := range cells {
			name, ok := strings.CutPrefix(c.Grid, metric+":")
			require.True(t, ok, c.Grid)
			seen[name]++
			var cyl = -1
			for i := range res.Cylinders {
				if res.Cylinders[i].Name == name {
					cyl = i
				}
			}
			require.GreaterOrEqual(t, cyl, 0, name)
			cy := res.Cylinders[cyl]
			where := fmt.Sprintf("%s %s at %s rpm x %s", metric, name, c.RPM, c.Load)
			assert.Equal(t, strconv.FormatFloat(res.RPM[c.Row], 'f', -1, 64), c.RPM, where)
			assert.Equal(t, strconv.FormatFloat(res.MAP[c.Col], 'f', -1, 64), c.Load, where)
			if metric == "confidence" {
				want := ""
				if v := cy.Confidence[c.Row][c.Col]; v != nil {
					want = *v
				}
				assert.Equal(t, want, c.Value, where)
				compared++
				continue
			}
			grid := map[string][][]*float64{"percent": cy.Percent, "afr_error": cy.AFRError, "hits": cy.Hits}[metric]
			want := grid[c.Row][c.Col]
			if want == nil {
				assert.Empty(t, c.Value, where)
				assert.Empty(t, c.Text, where)
			} else {
				got, err := strconv.ParseFloat(c.Value, 64)
				require.NoError(t, err, where)
				assert.Equal(t, *want, got, where)
				shown, err := strconv.ParseFloat(c.Text, 64)
				require.NoError(t, err, where)
				assert.InDelta(t, *want, shown, 0.51, "%s: the number shown", where)
			}
			compared++
		}
		for _, cy := range res.Cylinders {
			assert.Equal(t, len(res.RPM)*len(res.MAP), seen[cy.Name], "%s %s: every cell on the page", metric, cy.Name)
		}
	}
	assert.Equal(t, 4*len(res.Cylinders)*len(res.RPM)*len(res.MAP), compared)
	t.Logf("compared %d heatmap cells with the run's JSON", compared)

	// A cell's evidence on Enter.
	var evidence string
	run(t, ctx, 10*time.Second,
		chromedp.Click(`.tabs button[data-metric="percent"]`, chromedp.ByQuery),
		chromedp.Focus(`table.heat td[data-row="3"][data-col="3"]`, chromedp.ByQuery),
		chromedp.KeyEvent("\r"),
		chromedp.Text(`#evidence`, &evidence, chromedp.ByQuery))
	assert.Contains(t, evidence, "Samples (hits)")
	assert.Contains(t, evidence, strconv.FormatFloat(res.RPM[3], 'f', -1, 64)+" RPM")
	// Arrow keys move between cells, the evidence following.
	run(t, ctx, 10*time.Second, chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent(kb.ArrowRight),
		chromedp.Text(`#evidence`, &evidence, chromedp.ByQuery))
	assert.Contains(t, evidence, strconv.FormatFloat(res.RPM[4], 'f', -1, 64)+" RPM × "+strconv.FormatFloat(res.MAP[4], 'f', -1, 64))
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`window.scrollTo(0, document.querySelector(".tabs").getBoundingClientRect().top + window.scrollY - 60)`, nil))
	shot(t, ctx, "run", true)

	// At a tablet's size nothing runs off the page sideways.
	var overflow bool
	run(t, ctx, 10*time.Second, chromedp.EmulateViewport(768, 1024),
		chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth`, &overflow))
	assert.False(t, overflow, "the run page overflows a 768 px wide screen")
	shot(t, ctx, "run-768x1024", false)
	run(t, ctx, 5*time.Second, chromedp.EmulateViewport(1280, 800))

	// Calibrate: a base table on the run's grid, a dry run, apply, roll back.
	tb := ve.MustTable(res.RPM, res.MAP, 0)
	for i := range res.RPM {
		for j := range res.MAP {
			tb.Set(i, j, 40+float64(i)*1.5+float64(j)*0.75)
		}
	}
	tb.Precision = 2
	var csv bytes.Buffer
	require.NoError(t, tb.WriteCSV(&csv, ve.CSVFormat{Cell: ve.CellFormat{Decimals: 2}}))
	basePath := filepath.Join(t.TempDir(), "base_ve.csv")
	require.NoError(t, os.WriteFile(basePath, csv.Bytes(), 0o644))

	var diffCells []cell
	var baseFile string
	run(t, ctx, 30*time.Second,
		chromedp.Navigate(s.url("/#/calibrate/"+id)),
		chromedp.WaitVisible(`#c-file`, chromedp.ByQuery),
		chromedp.SetUploadFiles(`#c-file`, []string{basePath}, chromedp.ByQuery),
		chromedp.Click(`#c-upload`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelectorAll('#c-base option').length > 0`, nil),
		chromedp.Value(`#c-base`, &baseFile, chromedp.ByQuery),
		chromedp.SendKeys(`#c-max`, "3", chromedp.ByQuery), // tighter than the run's clamp: some cells are clamped
		chromedp.Click(`#c-dry`, chromedp.ByQuery),
		chromedp.WaitVisible(`table.heat[data-grid="diff"]`, chromedp.ByQuery),
		chromedp.Evaluate(cellsJS, &diffCells))
	shot(t, ctx, "calibrate-dry-run", false)

	// The same dry run through the API: the page shows its diff.
	var dry struct {
		CellsModified int `json:"cells_modified"`
		Manifest      struct {
			BaseSHA256 string `json:"base_sha256"`
		} `json:"manifest"`
		Diff []map[string]any `json:"diff"`
	}
	resp, err := http.Post(s.url("/api/runs/"+id+"/dry-run"), "application/json", strings.NewReader(`{"base_file_id":`+baseFile+`,"max_adjust_percent":3}`))
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&dry))
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	want := map[string]float64{}
	limited := 0
	for _, d := range dry.Diff {
		f := func(names ...string) float64 {
			for _, n := range names {
				if v, ok := d[n].(float64); ok {
					return v
				}
			}
			t.Fatalf("diff cell without %v: %v", names, d)
			return 0
		}
		key := strconv.FormatFloat(f("rpm", "RPM"), 'f', -1, 64) + "x" + strconv.FormatFloat(f("map_kpa", "map", "MAP"), 'f', -1, 64)
		want[key] = (f("after", "After")/f("before", "Before") - 1) * 100
		if l, _ := d["Limited"].(string); l != "" {
			limited++
		} else if l, _ := d["limited"].(string); l != "" {
			limited++
		}
	}
	shown := 0
	for _, c := range diffCells {
		w, ok := want[c.RPM+"x"+c.Load]
		if !ok {
			assert.Empty(t, c.Value, "cell %sx%s is not in the diff", c.RPM, c.Load)
			continue
		}
		got, err := strconv.ParseFloat(c.Value, 64)
		require.NoError(t, err)
		assert.InDelta(t, w, got, 0.0005, "change at %sx%s", c.RPM, c.Load)
		shown++
	}
	assert.Equal(t, len(want), shown, "every changed cell is on the page")
	var clampedShown int
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`document.querySelectorAll('table.heat[data-grid="diff"] td.clamped').length`, &clampedShown))
	require.Positive(t, limited, "the dry run clamps cells")
	assert.Equal(t, limited, clampedShown, "clamped cells are highlighted")

	var pageBase, restored, match string
	run(t, ctx, 30*time.Second,
		chromedp.Click(`#c-apply`, chromedp.ByQuery),
		chromedp.WaitVisible(`#c-applied`, chromedp.ByQuery),
		chromedp.Text(`[data-hash="base_sha256"]`, &pageBase, chromedp.ByQuery))
	assert.Equal(t, dry.Manifest.BaseSHA256, pageBase)
	shot(t, ctx, "calibrate-applied", false)
	run(t, ctx, 30*time.Second,
		chromedp.Click(`#c-rollback`, chromedp.ByQuery),
		chromedp.WaitVisible(`#c-rolledback`, chromedp.ByQuery),
		chromedp.Text(`#c-restored`, &restored, chromedp.ByQuery),
		chromedp.Text(`#c-match`, &match, chromedp.ByQuery))
	assert.Equal(t, dry.Manifest.BaseSHA256, restored, "the rollback restores the base table's hash")
	assert.Equal(t, "yes", match)
	shot(t, ctx, "calibrate-rolled-back", false)

	// The runs list shows the run.
	var listed int
	run(t, ctx, 10*time.Second,
		chromedp.Navigate(s.url("/#/runs")),
		chromedp.WaitVisible(`#runs tbody tr`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll('#runs tbody tr').length`, &listed))
	assert.Equal(t, 1, listed)
	shot(t, ctx, "runs", false)
}

// TestBrowserKeyboard: every control of the upload page is reached with
// Tab, and Enter on the drop zone opens the file chooser.
func TestBrowserKeyboard(t *testing.T) {
	s := newServer(t, nil)
	ctx, _ := browser(t)
	run(t, ctx, 10*time.Second, chromedp.Navigate(s.url("/#/upload")), chromedp.WaitVisible(`#drop`, chromedp.ByQuery))
	var want []string
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`[...document.querySelectorAll('header a, #upload input:not([type=file]), #upload select, #drop')].map(e => e.id || e.textContent.trim())`, &want))
	reached := map[string]bool{}
	for range 40 {
		var id string
		run(t, ctx, 5*time.Second, chromedp.KeyEvent("\t"),
			chromedp.Evaluate(`document.activeElement.id || document.activeElement.textContent.trim()`, &id))
		reached[id] = true
	}
	for _, w := range want {
		assert.True(t, reached[w], "%q is not reached with Tab", w)
	}
}

// TestBrowserLive opens the live page while a JetDrive provider streams a
// simulated session on loopback multicast, and sees the coverage heatmap
// gain hits.
func TestBrowserLive(t *testing.T) {
	chromiumPath(t)
	jetdrivetest.EnsureLoopbackMulticast(t)
	ctx0, stop := context.WithCancel(context.Background())
	defer stop()
	port := jetdrivetest.Port(t)
	client, err := jetdrive.NewClient(ctx0, jetdrive.ClientConfig{Net: jetdrivetest.Net(port)})
	require.NoError(t, err)
	defer client.Close()
	prov, err := jetdrive.NewProvider(ctx0, jetdrive.ProviderConfig{Net: jetdrivetest.Net(port), Name: "Dyno 250i",
		NegotiateWindow: 100 * time.Millisecond}, nil)
	require.NoError(t, err)
	defer prov.Close()
	go func() {
		for seed := uint64(1); ctx0.Err() == nil; seed++ {
			sc, err := tune.ScenarioByName("demo", seed)
			if err != nil {
				return
			}
			sim, err := sc.Simulator()
			if err != nil {
				return
			}
			_ = prov.Stream(ctx0, sim, jetdrive.StreamOptions{Rate: 200})
		}
	}()
	s := newServer(t, func(c *httpapi.Config) { c.JetDrive = client })
	ctx, _ := browser(t)

	hits := func() float64 {
		var cells []cell
		run(t, ctx, 5*time.Second, chromedp.Evaluate(cellsJS, &cells))
		sum := 0.0
		for _, c := range cells {
			if c.Grid == "live-coverage" && c.Value != "" {
				v, err := strconv.ParseFloat(c.Value, 64)
				require.NoError(t, err)
				sum += v
			}
		}
		return sum
	}
	run(t, ctx, 15*time.Second, chromedp.Navigate(s.url("/#/live")), chromedp.WaitVisible(`table.heat[data-grid="live-coverage"]`, chromedp.ByQuery))
	var first float64
	require.Eventually(t, func() bool { first = hits(); return first > 0 }, 30*time.Second, 100*time.Millisecond, "the coverage heatmap gains hits")
	require.Eventually(t, func() bool { return hits() > first+20 }, 30*time.Second, 100*time.Millisecond, "and keeps gaining them")
	var state, rpm string
	run(t, ctx, 5*time.Second, chromedp.Text(`#live-state`, &state, chromedp.ByQuery), chromedp.Text(`#g-rpm`, &rpm, chromedp.ByQuery))
	assert.Equal(t, "live", state)
	_, err = strconv.ParseFloat(rpm, 64)
	assert.NoError(t, err, "the RPM gauge shows a number: %q", rpm)
	var providers string
	run(t, ctx, 5*time.Second, chromedp.Navigate(s.url("/#/live")), chromedp.WaitVisible(`#providers table`, chromedp.ByQuery),
		chromedp.Text(`#providers`, &providers, chromedp.ByQuery))
	assert.Contains(t, providers, "Dyno 250i")
	require.Eventually(t, func() bool { return hits() > 50 }, 30*time.Second, 100*time.Millisecond)
	// The tuning session panel: none is recording; the tuner starts one
	// with a target and the page follows its stream.
	var panel string
	run(t, ctx, 10*time.Second, chromedp.WaitVisible(`#live-start`, chromedp.ByQuery), chromedp.Text(`#tuning`, &panel, chromedp.ByQuery))
	assert.Contains(t, panel, "No session is recording")
	run(t, ctx, 10*time.Second, chromedp.Click(`#live-start`, chromedp.ByQuery), chromedp.WaitVisible(`#live-session-state`, chromedp.ByQuery),
		chromedp.Text(`#live-session-state`, &panel, chromedp.ByQuery))
	assert.Contains(t, panel, "Session recording")
	assert.Contains(t, panel, "13.2")
	shot(t, ctx, "live", true)
}

// TestBrowserLogin: with authentication on, a page without a key shows the
// login prompt (never a raw error); signing in gives a session cookie the
// page cannot read and the key never appears in a URL.
func TestBrowserLogin(t *testing.T) {
	const key = "ui-test-key-0123456789abcdefghij"
	keys, err := authkeys.NewMemory(authkeys.Entry{Key: key, Tenant: "shop"})
	require.NoError(t, err)
	s := newServer(t, func(c *httpapi.Config) {
		c.Auth = httpapi.AuthConfig{Enabled: true, Keys: keys, SessionSecret: bytes.Repeat([]byte("k"), 32)}
	})
	ctx, exp := browser(t)
	for _, page := range []string{"/", "/#/runs", "/#/run/0123456789abcdef0123456789abcdef", "/#/live", "/#/calibrate"} {
		var text string
		var errors int
		run(t, ctx, 10*time.Second, chromedp.Navigate(s.url(page)), chromedp.WaitVisible(`#login`, chromedp.ByQuery),
			chromedp.Text(`main`, &text, chromedp.ByQuery),
			chromedp.Evaluate(`document.querySelectorAll('.error').length`, &errors))
		assert.Contains(t, text, "API key", page)
		assert.Zero(t, errors, "%s shows an error instead of only the login prompt", page)
		assert.NotContains(t, text, "AUTH_REQUIRED", page)
	}
	shot(t, ctx, "login", false)

	// A wrong key is refused as the API words it (and Chromium logs the
	// 403 of that one request).
	exp.add("status of 403 (Forbidden) " + s.url("/api/session"))
	var msg string
	run(t, ctx, 10*time.Second, chromedp.Navigate(s.url("/#/runs")), chromedp.WaitVisible(`#login`, chromedp.ByQuery),
		chromedp.SendKeys(`#api-key`, "not-the-key-0123456789abcdef", chromedp.ByQuery),
		chromedp.Click(`#login button[type=submit]`, chromedp.ByQuery), chromedp.WaitVisible(`#login .error`, chromedp.ByQuery),
		chromedp.Text(`#login .error`, &msg, chromedp.ByQuery))
	assert.Contains(t, msg, authkeys.MessageInvalidAPIKey)

	var href, cookies string
	var rows int
	run(t, ctx, 20*time.Second,
		chromedp.Evaluate(`document.getElementById('api-key').value = ''`, nil),
		chromedp.SendKeys(`#api-key`, key+"\r", chromedp.ByQuery),
		chromedp.WaitVisible(`#runs`, chromedp.ByQuery),
		chromedp.Location(&href), chromedp.Evaluate(`document.cookie`, &cookies),
		chromedp.Evaluate(`document.querySelectorAll('#runs tbody tr').length`, &rows))
	assert.NotContains(t, href, key)
	assert.NotContains(t, cookies, "dynoai_session", "the session cookie is HttpOnly")
	assert.Zero(t, rows)
	var who string
	run(t, ctx, 5*time.Second, chromedp.Text(`#who`, &who, chromedp.ByQuery))
	assert.Contains(t, who, "shop")
}

// TestBrowserNotConfigured: on a server without JetDrive or Jetstream the
// live and Jetstream pages say so, without a failed request.
func TestBrowserNotConfigured(t *testing.T) {
	s := newServer(t, nil)
	ctx, _ := browser(t)
	var live, js string
	run(t, ctx, 10*time.Second,
		chromedp.Navigate(s.url("/#/live")), chromedp.WaitVisible(`#jd-off`, chromedp.ByQuery), chromedp.Text(`#jd-off`, &live, chromedp.ByQuery),
		chromedp.Navigate(s.url("/#/jetstream")), chromedp.WaitVisible(`#js-off`, chromedp.ByQuery), chromedp.Text(`#js-off`, &js, chromedp.ByQuery))
	assert.Contains(t, live, "JetDrive is not configured")
	assert.Contains(t, js, "Jetstream is not configured")
}

// TestBrowserJetstream: the Jetstream page shows the poller's status, a
// sync from the page picks up the fake cloud's runs, and they are listed.
func TestBrowserJetstream(t *testing.T) {
	chromiumPath(t)
	stub, err := jetstreamtest.NewStub(context.Background(), jetstreamtest.Options{APIKey: "js-key-0123456789"})
	require.NoError(t, err)
	defer stub.Close()
	client, err := jetstream.NewHTTPClient(jetstream.HTTPOptions{BaseURL: stub.URL, APIKey: "js-key-0123456789"})
	require.NoError(t, err)
	runs := runstore.NewMemory(runstore.Options{})
	state := runstorestate.New(runs, runstorestate.Options{})
	poller, err := jetstream.NewPoller(client, state, jetstream.ProcessorFunc(
		func(ctx context.Context, _ jetstream.RunMetadata, src dyno.Source) (jetstream.Outcome, error) {
			a, err := ve.New(ve.Options{})
			if err != nil {
				return jetstream.Outcome{}, err
			}
			res, err := a.Analyze(ctx, src)
			if err != nil {
				return jetstream.Outcome{}, err
			}
			return jetstream.Outcome{Summary: map[string]float64{"samples": float64(res.Samples)}}, nil
		}), jetstream.PollerOptions{Interval: time.Hour})
	require.NoError(t, err)
	s := newServer(t, func(c *httpapi.Config) { c.Runs = runs; c.Jetstream = poller })
	ctx, _ := browser(t)
	var status string
	run(t, ctx, 10*time.Second, chromedp.Navigate(s.url("/#/jetstream")), chromedp.WaitVisible(`#js-status dl`, chromedp.ByQuery),
		chromedp.Text(`#js-status`, &status, chromedp.ByQuery))
	assert.Contains(t, status, "consecutive failures")
	var n int
	run(t, ctx, 60*time.Second, chromedp.Click(`#js-sync`, chromedp.ByQuery),
		chromedp.WaitVisible(`#js-runs li`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll('#js-runs li').length`, &n))
	page, err := runs.List(context.Background(), runstore.Filter{Sources: []runstore.RunSource{runstore.SourceJetstream}, Limit: 20})
	require.NoError(t, err)
	require.NotEmpty(t, page.Runs)
	assert.Equal(t, len(page.Runs), n, "every Jetstream run is listed")
	shot(t, ctx, "jetstream", false)
}

// TestBrowserRunsListAndUploadError: the runs list pages through 25 runs
// 20 at a time and filters by source; an upload the API refuses shows the
// API's message.
func TestBrowserRunsListAndUploadError(t *testing.T) {
	s := newServer(t, nil)
	for i := range 25 {
		src := runstore.SourceUpload
		if i%5 == 0 {
			src = runstore.SourceJetstream
		}
		_, err := s.runs.Create(context.Background(), runstore.NewRun{Source: src, Filename: fmt.Sprintf("pull-%02d.csv", i)})
		require.NoError(t, err)
	}
	ctx, exp := browser(t)
	rows := func() int {
		var n int
		run(t, ctx, 5*time.Second, chromedp.Evaluate(`document.querySelectorAll('#runs tbody tr').length`, &n))
		return n
	}
	run(t, ctx, 10*time.Second, chromedp.Navigate(s.url("/#/runs")), chromedp.WaitVisible(`#runs tbody tr`, chromedp.ByQuery))
	assert.Equal(t, 20, rows())
	run(t, ctx, 10*time.Second, chromedp.Click(`//button[contains(., "Older")]`, chromedp.BySearch),
		chromedp.Poll(`document.querySelectorAll('#runs tbody tr').length === 5`, nil))
	run(t, ctx, 10*time.Second, chromedp.Click(`//button[contains(., "Newer")]`, chromedp.BySearch),
		chromedp.Poll(`document.querySelectorAll('#runs tbody tr').length === 20`, nil))
	run(t, ctx, 10*time.Second, chromedp.SetValue(`#f-source`, "jetstream", chromedp.ByQuery),
		chromedp.Click(`#runs-filter button[type=submit]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelectorAll('#runs tbody tr').length === 5`, nil))
	var sources []string
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`[...document.querySelectorAll('#runs tbody tr td:nth-child(3)')].map(td => td.textContent)`, &sources))
	assert.Equal(t, []string{"jetstream", "jetstream", "jetstream", "jetstream", "jetstream"}, sources)

	// A file the API refuses: its message, as the API words it.
	bad := filepath.Join(t.TempDir(), "engine.bin")
	require.NoError(t, os.WriteFile(bad, []byte{0, 1, 2, 3}, 0o644))
	exp.add("status of 400 (Bad Request) " + s.url("/api/analyze"))
	var msg string
	run(t, ctx, 20*time.Second, chromedp.Navigate(s.url("/#/upload")), chromedp.WaitVisible(`#drop`, chromedp.ByQuery),
		chromedp.SetUploadFiles(`#file`, []string{bad}, chromedp.ByQuery), chromedp.WaitEnabled(`#analyze`, chromedp.ByQuery),
		chromedp.Click(`#analyze`, chromedp.ByQuery), chromedp.WaitVisible(`#upload .error`, chromedp.ByQuery),
		chromedp.Text(`#upload .error`, &msg, chromedp.ByQuery))
	assert.Contains(t, msg, "FILE_TYPE_NOT_ALLOWED")
	shot(t, ctx, "upload-refused", false)
}

// TestBrowserImportedRun: a run imported from the predecessor's folders
// shows where it came from, its notes and its files, instead of empty maps.
func TestBrowserImportedRun(t *testing.T) {
	files := runstore.NewMemFileStore()
	s := newServer(t, func(c *httpapi.Config) { c.Files = files })
	root := t.TempDir()
	d3t.BuildTree(t, root, t.TempDir())
	rep, err := dynoai3import.Import(context.Background(), root, s.runs.(runstore.Importer), files, dynoai3import.Options{})
	require.NoError(t, err)
	var api dynoai3import.Outcome
	for _, o := range rep.Outcomes {
		if o.Folder == d3t.DirAPI {
			api = o
		}
	}
	require.Equal(t, dynoai3import.Imported, api.Action)
	ctx, _ := browser(t)
	var card string
	var downloads int
	run(t, ctx, 15*time.Second, chromedp.Navigate(s.url("/#/run/"+api.Run)), chromedp.WaitVisible(`#import`, chromedp.ByQuery),
		chromedp.Text(`#import`, &card, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll('#downloads li').length`, &downloads))
	assert.Contains(t, card, d3t.DirAPI)
	assert.Contains(t, card, "family B")
	assert.Contains(t, card, "my_pull.csv")
	assert.Contains(t, card, "vouched for by their manifest")
	assert.Equal(t, api.Files, downloads)
	shot(t, ctx, "imported-run", false)
}
