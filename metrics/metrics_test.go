package metrics

import (
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTest(t *testing.T, opts Options) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	opts.Registerer = reg
	m, err := New(opts)
	require.NoError(t, err)
	require.True(t, m.Enabled())
	return m, reg
}

func TestDisabledIsNoop(t *testing.T) {
	var nilM *Metrics
	m, err := New(Options{})
	require.NoError(t, err)
	for _, x := range []*Metrics{nilM, m} {
		assert.False(t, x.Enabled())
		assert.NotPanics(t, func() {
			x.ObserveAnalysis(StatusSuccess, SourceUpload, time.Second)
			x.ObserveVECorrections(3, 1.5)
			x.ObserveUpload(10)
			x.IncJetstreamRun(RunComplete)
			x.ObserveJetstreamPoll(time.Second)
			x.IncJetstreamPollFailure()
			x.IncVirtualTuning(TuningConverged)
			x.ObserveVirtualTuningIterations(3)
			x.SetActiveSessions(2)
			x.AddActiveSessions(-1)
			x.ObserveStorageCheck(ComponentDatabase, nil)
			x.IncRateLimitBackendError(BackendRedis)
		})
		mw := x.HTTPMiddleware(nil)
		h := okHandler()
		assert.NotNil(t, mw(h))
	}
}

func TestNames(t *testing.T) {
	// Every name and label set of server-spec §3, plus the in-flight gauge
	// and the job queue's series.
	m, reg := newTest(t, Options{Version: "2.0.0"})
	m.ObserveAnalysis(StatusSuccess, SourceUpload, time.Second)
	m.ObserveVECorrections(1, 1)
	m.ObserveUpload(1)
	m.ObserveJetstreamPoll(time.Second)
	m.ObserveVirtualTuningIterations(1)
	m.ObserveStorageCheck(ComponentDatabase, nil)
	h := m.HTTPMiddleware(nil)(newMux())
	serve(t, h, "GET", "/api/runs/7")
	assert.Panics(t, func() { serve(t, h, "GET", "/api/panic") })
	assert.Equal(t, []string{
		"dynoai_active_sessions",
		"dynoai_analysis_duration_seconds",
		"dynoai_analysis_jobs_total",
		"dynoai_analysis_queue_backlog",
		"dynoai_analysis_total",
		"dynoai_analysis_workers_busy",
		"dynoai_app_info",
		"dynoai_file_upload_bytes",
		"dynoai_http_request_duration_seconds",
		"dynoai_http_request_exceptions_total",
		"dynoai_http_request_total",
		"dynoai_http_requests_in_flight",
		"dynoai_jetstream_poll_duration_seconds",
		"dynoai_jetstream_poll_failures_total",
		"dynoai_jetstream_runs_total",
		"dynoai_rate_limit_backend_errors_total",
		"dynoai_storage_check_failures_total",
		"dynoai_storage_up",
		"dynoai_ve_corrections_count",
		"dynoai_ve_corrections_magnitude_percent",
		"dynoai_virtual_tuning_iterations",
		"dynoai_virtual_tuning_sessions_total",
	}, families(t, reg))
}

func TestAnalysis(t *testing.T) {
	m, reg := newTest(t, Options{})
	m.ObserveAnalysis(StatusSuccess, SourceUpload, 3*time.Second)
	m.ObserveAnalysis(StatusSuccess, SourceJetstream, 45*time.Second)
	m.ObserveAnalysis(StatusError, SourceUpload, 500*time.Millisecond)
	m.ObserveAnalysis("weird", "ftp", 400*time.Second) // both labels bounded
	m.ObserveAnalysis(StatusError, SourceSimulator, -time.Second)
	requireExposition(t, reg, `
		# HELP dynoai_analysis_duration_seconds Time taken by one analysis, in seconds.
		# TYPE dynoai_analysis_duration_seconds histogram
		dynoai_analysis_duration_seconds_bucket{source="jetstream",le="1"} 0
		dynoai_analysis_duration_seconds_bucket{source="jetstream",le="5"} 0
		dynoai_analysis_duration_seconds_bucket{source="jetstream",le="10"} 0
		dynoai_analysis_duration_seconds_bucket{source="jetstream",le="30"} 0
		dynoai_analysis_duration_seconds_bucket{source="jetstream",le="60"} 1
		dynoai_analysis_duration_seconds_bucket{source="jetstream",le="120"} 1
		dynoai_analysis_duration_seconds_bucket{source="jetstream",le="300"} 1
		dynoai_analysis_duration_seconds_bucket{source="jetstream",le="+Inf"} 1
		dynoai_analysis_duration_seconds_sum{source="jetstream"} 45
		dynoai_analysis_duration_seconds_count{source="jetstream"} 1
		dynoai_analysis_duration_seconds_bucket{source="other",le="1"} 0
		dynoai_analysis_duration_seconds_bucket{source="other",le="5"} 0
		dynoai_analysis_duration_seconds_bucket{source="other",le="10"} 0
		dynoai_analysis_duration_seconds_bucket{source="other",le="30"} 0
		dynoai_analysis_duration_seconds_bucket{source="other",le="60"} 0
		dynoai_analysis_duration_seconds_bucket{source="other",le="120"} 0
		dynoai_analysis_duration_seconds_bucket{source="other",le="300"} 0
		dynoai_analysis_duration_seconds_bucket{source="other",le="+Inf"} 1
		dynoai_analysis_duration_seconds_sum{source="other"} 400
		dynoai_analysis_duration_seconds_count{source="other"} 1
		dynoai_analysis_duration_seconds_bucket{source="upload",le="1"} 1
		dynoai_analysis_duration_seconds_bucket{source="upload",le="5"} 2
		dynoai_analysis_duration_seconds_bucket{source="upload",le="10"} 2
		dynoai_analysis_duration_seconds_bucket{source="upload",le="30"} 2
		dynoai_analysis_duration_seconds_bucket{source="upload",le="60"} 2
		dynoai_analysis_duration_seconds_bucket{source="upload",le="120"} 2
		dynoai_analysis_duration_seconds_bucket{source="upload",le="300"} 2
		dynoai_analysis_duration_seconds_bucket{source="upload",le="+Inf"} 2
		dynoai_analysis_duration_seconds_sum{source="upload"} 3.5
		dynoai_analysis_duration_seconds_count{source="upload"} 2
	`, "dynoai_analysis_duration_seconds")
	for _, tc := range []struct {
		status, source string
		want           float64
	}{
		{"success", "upload", 1}, {"success", "jetstream", 1}, {"error", "upload", 1},
		{"error", "simulator", 1}, {"other", "other", 1}, {"success", "simulator", 0}, {"error", "jetdrive", 0},
	} {
		assert.Equal(t, tc.want, value(t, reg, "dynoai_analysis_total", "status", tc.status, "source", tc.source), tc)
	}
}

func TestBusinessMetrics(t *testing.T) {
	m, reg := newTest(t, Options{})
	m.ObserveVECorrections(42, -7.5)
	m.ObserveVECorrections(-1, math.NaN()) // neither observed
	m.ObserveVECorrections(0, math.Inf(1))
	requireExposition(t, reg, `
		# HELP dynoai_ve_corrections_count Number of VE cells corrected per analysis.
		# TYPE dynoai_ve_corrections_count histogram
		dynoai_ve_corrections_count_bucket{le="0"} 1
		dynoai_ve_corrections_count_bucket{le="10"} 1
		dynoai_ve_corrections_count_bucket{le="25"} 1
		dynoai_ve_corrections_count_bucket{le="50"} 2
		dynoai_ve_corrections_count_bucket{le="100"} 2
		dynoai_ve_corrections_count_bucket{le="250"} 2
		dynoai_ve_corrections_count_bucket{le="500"} 2
		dynoai_ve_corrections_count_bucket{le="1000"} 2
		dynoai_ve_corrections_count_bucket{le="+Inf"} 2
		dynoai_ve_corrections_count_sum 42
		dynoai_ve_corrections_count_count 2
		# HELP dynoai_ve_corrections_magnitude_percent Largest absolute VE correction of an analysis, in percent.
		# TYPE dynoai_ve_corrections_magnitude_percent histogram
		dynoai_ve_corrections_magnitude_percent_bucket{le="0.5"} 0
		dynoai_ve_corrections_magnitude_percent_bucket{le="1"} 0
		dynoai_ve_corrections_magnitude_percent_bucket{le="2"} 0
		dynoai_ve_corrections_magnitude_percent_bucket{le="5"} 0
		dynoai_ve_corrections_magnitude_percent_bucket{le="7"} 0
		dynoai_ve_corrections_magnitude_percent_bucket{le="10"} 1
		dynoai_ve_corrections_magnitude_percent_bucket{le="15"} 1
		dynoai_ve_corrections_magnitude_percent_bucket{le="+Inf"} 1
		dynoai_ve_corrections_magnitude_percent_sum 7.5
		dynoai_ve_corrections_magnitude_percent_count 1
	`, "dynoai_ve_corrections_count", "dynoai_ve_corrections_magnitude_percent")

	m.ObserveUpload(2048)
	m.ObserveUpload(-5)
	requireExposition(t, reg, `
		# HELP dynoai_file_upload_bytes Size of uploaded files, in bytes.
		# TYPE dynoai_file_upload_bytes histogram
		dynoai_file_upload_bytes_bucket{le="1024"} 0
		dynoai_file_upload_bytes_bucket{le="10240"} 1
		dynoai_file_upload_bytes_bucket{le="102400"} 1
		dynoai_file_upload_bytes_bucket{le="1.048576e+06"} 1
		dynoai_file_upload_bytes_bucket{le="1.048576e+07"} 1
		dynoai_file_upload_bytes_bucket{le="5.24288e+07"} 1
		dynoai_file_upload_bytes_bucket{le="+Inf"} 1
		dynoai_file_upload_bytes_sum 2048
		dynoai_file_upload_bytes_count 1
	`, "dynoai_file_upload_bytes")

	for _, s := range []string{RunPending, RunProcessing, RunComplete, RunComplete, StatusError, "cancelled"} {
		m.IncJetstreamRun(s)
	}
	requireExposition(t, reg, `
		# HELP dynoai_jetstream_runs_total Total number of Jetstream runs processed, by status.
		# TYPE dynoai_jetstream_runs_total counter
		dynoai_jetstream_runs_total{status="complete"} 2
		dynoai_jetstream_runs_total{status="error"} 1
		dynoai_jetstream_runs_total{status="other"} 1
		dynoai_jetstream_runs_total{status="pending"} 1
		dynoai_jetstream_runs_total{status="processing"} 1
	`, "dynoai_jetstream_runs_total")

	m.ObserveJetstreamPoll(700 * time.Millisecond)
	m.ObserveJetstreamPoll(-time.Millisecond)
	assert.Equal(t, 1.0, value(t, reg, "dynoai_jetstream_poll_duration_seconds"))
	assert.Equal(t, 0.0, value(t, reg, "dynoai_jetstream_poll_failures_total"), "exported from the start")
	m.IncJetstreamPollFailure()
	assert.Equal(t, 1.0, value(t, reg, "dynoai_jetstream_poll_failures_total"))

	for _, s := range []string{TuningRunning, TuningConverged, TuningFailed, TuningStopped, TuningStopped, ""} {
		m.IncVirtualTuning(s)
	}
	requireExposition(t, reg, `
		# HELP dynoai_virtual_tuning_sessions_total Total number of virtual tuning sessions, by status.
		# TYPE dynoai_virtual_tuning_sessions_total counter
		dynoai_virtual_tuning_sessions_total{status="converged"} 1
		dynoai_virtual_tuning_sessions_total{status="failed"} 1
		dynoai_virtual_tuning_sessions_total{status="other"} 1
		dynoai_virtual_tuning_sessions_total{status="running"} 1
		dynoai_virtual_tuning_sessions_total{status="stopped"} 2
	`, "dynoai_virtual_tuning_sessions_total")

	m.ObserveVirtualTuningIterations(4)
	m.ObserveVirtualTuningIterations(-4)
	requireExposition(t, reg, `
		# HELP dynoai_virtual_tuning_iterations Iterations a virtual tuning session took to converge.
		# TYPE dynoai_virtual_tuning_iterations histogram
		dynoai_virtual_tuning_iterations_bucket{le="1"} 0
		dynoai_virtual_tuning_iterations_bucket{le="2"} 0
		dynoai_virtual_tuning_iterations_bucket{le="3"} 0
		dynoai_virtual_tuning_iterations_bucket{le="5"} 1
		dynoai_virtual_tuning_iterations_bucket{le="7"} 1
		dynoai_virtual_tuning_iterations_bucket{le="10"} 1
		dynoai_virtual_tuning_iterations_bucket{le="15"} 1
		dynoai_virtual_tuning_iterations_bucket{le="20"} 1
		dynoai_virtual_tuning_iterations_bucket{le="+Inf"} 1
		dynoai_virtual_tuning_iterations_sum 4
		dynoai_virtual_tuning_iterations_count 1
	`, "dynoai_virtual_tuning_iterations")

	m.SetActiveSessions(3)
	m.AddActiveSessions(2)
	m.AddActiveSessions(-1)
	assert.Equal(t, 4.0, value(t, reg, "dynoai_active_sessions"))
}

func TestStorageCheck(t *testing.T) {
	m, reg := newTest(t, Options{})
	errTest := errors.New("disk refuses writes")
	m.ObserveStorageCheck(ComponentDatabase, nil)
	m.ObserveStorageCheck(ComponentFileStore, errTest)
	m.ObserveStorageCheck(ComponentFileStore, errTest)
	m.ObserveStorageCheck("disk", errTest)
	assert.Equal(t, 1.0, value(t, reg, "dynoai_storage_up", "component", "database"))
	assert.Equal(t, 0.0, value(t, reg, "dynoai_storage_up", "component", "file_store"))
	assert.Equal(t, 2.0, value(t, reg, "dynoai_storage_check_failures_total", "component", "file_store"))
	assert.Equal(t, 0.0, value(t, reg, "dynoai_storage_check_failures_total", "component", "database"))
	assert.Equal(t, 1.0, value(t, reg, "dynoai_storage_check_failures_total", "component", "other"))
}

// TestRateLimitBackendErrors: the counter starts at zero for every known
// backend (so increase() works from the first scrape), counts per backend,
// and files an unknown backend under "other".
func TestRateLimitBackendErrors(t *testing.T) {
	m, reg := newTest(t, Options{})
	requireExposition(t, reg, `
		# HELP dynoai_rate_limit_backend_errors_total Rate limit checks the shared backend did not answer in time (or at all), by backend; each was decided by the server's own limits or refused, as configured.
		# TYPE dynoai_rate_limit_backend_errors_total counter
		dynoai_rate_limit_backend_errors_total{backend="redis"} 0
	`, "dynoai_rate_limit_backend_errors_total")
	m.IncRateLimitBackendError(BackendRedis)
	m.IncRateLimitBackendError(BackendRedis)
	m.IncRateLimitBackendError("memcached")
	assert.Equal(t, 2.0, value(t, reg, "dynoai_rate_limit_backend_errors_total", "backend", "redis"))
	assert.Equal(t, 1.0, value(t, reg, "dynoai_rate_limit_backend_errors_total", "backend", "other"))
	m.ObserveStorageCheck(ComponentRedis, errors.New("connection refused"))
	assert.Equal(t, 0.0, value(t, reg, "dynoai_storage_up", "component", "redis"))
}

func TestAppInfo(t *testing.T) {
	_, reg := newTest(t, Options{Version: "2.0.0"})
	out := exposition(t, reg, "dynoai_app_info")
	assert.Contains(t, out, `dynoai_app_info{environment="production",go_version="go`)
	assert.Contains(t, out, `python_version="",version="2.0.0"} 1`)
	_, reg = newTest(t, Options{Environment: "staging"})
	assert.Contains(t, exposition(t, reg, "dynoai_app_info"), `environment="staging"`)
}

func TestRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := New(Options{Registerer: reg})
	require.NoError(t, err)
	_, err = New(Options{Registerer: reg})
	var are prometheus.AlreadyRegisteredError
	require.ErrorAs(t, err, &are)
	assert.Contains(t, err.Error(), "metrics: registering collectors")

	// A failed New leaves nothing of its own behind, and does not remove
	// the caller's collector it clashed with.
	reg2 := prometheus.NewRegistry()
	clash := prometheus.NewGauge(prometheus.GaugeOpts{Name: "dynoai_active_sessions", Help: "x"})
	require.NoError(t, reg2.Register(clash))
	clash.Set(9)
	_, err = New(Options{Registerer: reg2})
	require.Error(t, err)
	assert.Equal(t, []string{"dynoai_active_sessions"}, families(t, reg2))
	assert.Equal(t, 9.0, value(t, reg2, "dynoai_active_sessions"))
}

func TestRuntimeCollectors(t *testing.T) {
	_, reg := newTest(t, Options{Runtime: true})
	names := strings.Join(families(t, reg), " ")
	assert.Contains(t, names, "go_goroutines")
	assert.Contains(t, names, "go_gc_duration_seconds")
	_, reg = newTest(t, Options{})
	assert.NotContains(t, strings.Join(families(t, reg), " "), "go_goroutines")
}

func TestConcurrentRecording(t *testing.T) {
	m, reg := newTest(t, Options{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 250 {
				m.ObserveAnalysis(StatusSuccess, SourceUpload, time.Duration(i)*time.Second)
				m.AddActiveSessions(1)
				m.AddActiveSessions(-1)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 2000.0, value(t, reg, "dynoai_analysis_total", "status", "success", "source", "upload"))
	assert.Equal(t, 0.0, value(t, reg, "dynoai_active_sessions"))
}

func TestJobSeries(t *testing.T) {
	m, reg := newTest(t, Options{})
	m.IncJobEvent(JobClaimed)
	m.IncJobEvent(JobClaimed)
	m.IncJobEvent(JobLeaseLost)
	m.IncJobEvent("made-up")
	m.SetJobBacklog(7)
	m.AddBusyWorkers(2)
	m.AddBusyWorkers(-1)
	assert.Equal(t, 2.0, testutil.ToFloat64(m.jobs.events.WithLabelValues(JobClaimed)))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.jobs.events.WithLabelValues(JobLeaseLost)))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.jobs.events.WithLabelValues(Other)))
	assert.Equal(t, 0.0, testutil.ToFloat64(m.jobs.events.WithLabelValues(JobReleased)), "known events start at zero")
	assert.Equal(t, 7.0, testutil.ToFloat64(m.jobs.backlog))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.jobs.busy))
	_ = reg
	var nilM *Metrics
	nilM.IncJobEvent(JobClaimed) // a nil *Metrics records nothing
	nilM.SetJobBacklog(1)
	nilM.AddBusyWorkers(1)
}
