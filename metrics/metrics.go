package metrics

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every metric name.
const Namespace = "dynoai"

// Other replaces a label value outside a metric's vocabulary.
const Other = "other"

// Label values of the business metrics. Anything else becomes [Other].
const (
	StatusSuccess = "success" // analysis
	StatusError   = "error"   // analysis, Jetstream run

	SourceUpload    = "upload"
	SourceJetstream = "jetstream"
	SourceSimulator = "simulator"
	SourceJetDrive  = "jetdrive"

	RunPending    = "pending"
	RunProcessing = "processing"
	RunComplete   = "complete"

	ComponentDatabase  = "database"   // storage check: the run store
	ComponentFileStore = "file_store" // storage check: the file contents store
	ComponentRedis     = "redis"      // storage check: Redis, when rate limits are kept there

	BackendRedis = "redis" // rate limit backend

	TuningRunning   = "running"
	TuningConverged = "converged"
	TuningFailed    = "failed"
	TuningStopped   = "stopped"
)

var (
	analysisStatuses = []string{StatusSuccess, StatusError}
	analysisSources  = []string{SourceUpload, SourceJetstream, SourceSimulator, SourceJetDrive}
	runStatuses      = []string{RunPending, RunProcessing, RunComplete, StatusError}
	tuningStatuses   = []string{TuningRunning, TuningConverged, TuningFailed, TuningStopped}
	storageParts     = []string{ComponentDatabase, ComponentFileStore, ComponentRedis}
	rateBackends     = []string{BackendRedis}
)

// The histogram buckets, as in the predecessor. Each function returns a new
// slice, so a caller cannot change what New registers.

// AnalysisDurationBuckets returns the buckets of dynoai_analysis_duration_seconds.
func AnalysisDurationBuckets() []float64 { return []float64{1, 5, 10, 30, 60, 120, 300} }

// VECorrectionCountBuckets returns the buckets of dynoai_ve_corrections_count.
func VECorrectionCountBuckets() []float64 { return []float64{0, 10, 25, 50, 100, 250, 500, 1000} }

// VECorrectionMagBuckets returns the buckets of dynoai_ve_corrections_magnitude_percent.
func VECorrectionMagBuckets() []float64 { return []float64{0.5, 1, 2, 5, 7, 10, 15} }

// JetstreamPollBuckets returns the buckets of dynoai_jetstream_poll_duration_seconds.
func JetstreamPollBuckets() []float64 { return []float64{0.1, 0.5, 1, 2, 5, 10} }

// TuningIterationsBuckets returns the buckets of dynoai_virtual_tuning_iterations.
func TuningIterationsBuckets() []float64 { return []float64{1, 2, 3, 5, 7, 10, 15, 20} }

// UploadBytesBuckets returns the buckets of dynoai_file_upload_bytes.
func UploadBytesBuckets() []float64 {
	return []float64{1024, 10240, 102400, 1048576, 10485760, 52428800}
}

// Options configures [New]. The zero value records nothing.
type Options struct {
	// Registerer receives the collectors. Nil means no metrics at all.
	Registerer prometheus.Registerer
	// Runtime also registers the Go runtime and process collectors
	// (go_*, process_*).
	Runtime bool
	// Version and Environment label dynoai_app_info; Environment defaults
	// to "production" as in the predecessor.
	Version     string
	Environment string
	// MaxEndpoints bounds the distinct values of the HTTP endpoint label;
	// further route patterns are recorded as "other". Zero means 256.
	MaxEndpoints int
}

// Metrics records DynoAI's metrics. A nil *Metrics is valid and records
// nothing; methods are safe for concurrent use.
type Metrics struct {
	analysisTotal    *prometheus.CounterVec
	analysisDuration *prometheus.HistogramVec
	veCount          prometheus.Histogram
	veMagnitude      prometheus.Histogram
	jetstreamRuns    *prometheus.CounterVec
	jetstreamPoll    prometheus.Histogram
	jetstreamPollErr prometheus.Counter
	tuningSessions   *prometheus.CounterVec
	tuningIterations prometheus.Histogram
	uploadBytes      prometheus.Histogram
	activeSessions   prometheus.Gauge
	appInfo          *prometheus.GaugeVec
	storageUp        *prometheus.GaugeVec
	storageFailures  *prometheus.CounterVec
	rateBackendErrs  *prometheus.CounterVec

	http *httpMetrics
	jobs *jobMetrics
}

// New creates the collectors and registers them on opts.Registerer. With a
// nil Registerer it returns a no-op *Metrics and no error. Registration
// failures (for example a second New on the same registry) are returned and
// can be tested with errors.As(err, *prometheus.AlreadyRegisteredError).
func New(opts Options) (*Metrics, error) {
	if opts.Registerer == nil {
		return &Metrics{}, nil
	}
	if opts.Environment == "" {
		opts.Environment = "production"
	}
	if opts.MaxEndpoints <= 0 {
		opts.MaxEndpoints = 256
	}
	m := &Metrics{
		analysisTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "analysis_total",
			Help: "Total number of analyses run, by outcome and data source.",
		}, []string{"status", "source"}),
		analysisDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "analysis_duration_seconds",
			Help:    "Time taken by one analysis, in seconds.",
			Buckets: AnalysisDurationBuckets(),
		}, []string{"source"}),
		veCount: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "ve_corrections_count",
			Help:    "Number of VE cells corrected per analysis.",
			Buckets: VECorrectionCountBuckets(),
		}),
		veMagnitude: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "ve_corrections_magnitude_percent",
			Help:    "Largest absolute VE correction of an analysis, in percent.",
			Buckets: VECorrectionMagBuckets(),
		}),
		jetstreamRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "jetstream_runs_total",
			Help: "Total number of Jetstream runs processed, by status.",
		}, []string{"status"}),
		jetstreamPoll: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "jetstream_poll_duration_seconds",
			Help:    "Time taken by one Jetstream poll, in seconds.",
			Buckets: JetstreamPollBuckets(),
		}),
		jetstreamPollErr: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "jetstream_poll_failures_total",
			Help: "Jetstream polls whose listing of runs failed (the cursor stayed where it was).",
		}),
		tuningSessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "virtual_tuning_sessions_total",
			Help: "Total number of virtual tuning sessions, by status.",
		}, []string{"status"}),
		tuningIterations: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "virtual_tuning_iterations",
			Help:    "Iterations a virtual tuning session took to converge.",
			Buckets: TuningIterationsBuckets(),
		}),
		uploadBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "file_upload_bytes",
			Help:    "Size of uploaded files, in bytes.",
			Buckets: UploadBytesBuckets(),
		}),
		activeSessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "active_sessions",
			Help: "Number of active live tuning sessions (clients streaming live JetDrive data).",
		}),
		storageUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "storage_up",
			Help: "1 when the last storage check (a durable write and read back) of the component passed, else 0.",
		}, []string{"component"}),
		storageFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "storage_check_failures_total",
			Help: "Storage checks that failed, by component.",
		}, []string{"component"}),
		rateBackendErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "rate_limit_backend_errors_total",
			Help: "Rate limit checks the shared backend did not answer in time (or at all), by backend; each was decided by the server's own limits or refused, as configured.",
		}, []string{"backend"}),
		appInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "app_info",
			Help: "DynoAI application information (always 1).",
		}, []string{"version", "python_version", "environment", "go_version"}),
	}
	m.http = newHTTPMetrics(opts.MaxEndpoints)
	m.jobs = newJobMetrics()

	cs := []prometheus.Collector{
		m.analysisTotal, m.analysisDuration, m.veCount, m.veMagnitude, m.jetstreamRuns, m.jetstreamPoll, m.jetstreamPollErr,
		m.tuningSessions, m.tuningIterations, m.uploadBytes, m.activeSessions, m.appInfo, m.storageUp, m.storageFailures, m.rateBackendErrs,
		m.http.duration, m.http.total, m.http.exceptions, m.http.inFlight,
	}
	cs = append(cs, m.jobs.collectors()...)
	if opts.Runtime {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	var (
		errs []error
		done []prometheus.Collector
	)
	for _, c := range cs {
		if err := opts.Registerer.Register(c); err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, c)
	}
	if err := errors.Join(errs...); err != nil {
		// Undo only what this call registered (Unregister matches by
		// descriptor, so unregistering a failed one could remove the
		// caller's collector it clashed with).
		for _, c := range done {
			opts.Registerer.Unregister(c)
		}
		return nil, fmt.Errorf("metrics: registering collectors: %w", err)
	}

	// python_version stays empty (an absent label to PromQL); the label is
	// kept so existing queries on dynoai_app_info keep matching.
	m.appInfo.WithLabelValues(opts.Version, "", opts.Environment, runtime.Version()).Set(1)
	// Known series start at zero, so rate() and increase() work from the
	// first scrape.
	for _, st := range analysisStatuses {
		for _, src := range analysisSources {
			m.analysisTotal.WithLabelValues(st, src)
		}
	}
	for _, st := range runStatuses {
		m.jetstreamRuns.WithLabelValues(st)
	}
	for _, st := range tuningStatuses {
		m.tuningSessions.WithLabelValues(st)
	}
	for _, c := range storageParts {
		m.storageFailures.WithLabelValues(c)
	}
	m.jobs.zero()
	for _, b := range rateBackends {
		m.rateBackendErrs.WithLabelValues(b)
	}
	return m, nil
}

// IncRateLimitBackendError counts a rate limit check that backend
// (BackendRedis) did not answer in time, in
// dynoai_rate_limit_backend_errors_total.
func (m *Metrics) IncRateLimitBackendError(backend string) {
	if !m.Enabled() {
		return
	}
	m.rateBackendErrs.WithLabelValues(oneOf(backend, rateBackends)).Inc()
}

// ObserveStorageCheck records the outcome of one storage check of
// component (ComponentDatabase, ComponentFileStore, ComponentRedis):
// dynoai_storage_up is set to 1 or 0, and a failure counts in
// dynoai_storage_check_failures_total.
func (m *Metrics) ObserveStorageCheck(component string, err error) {
	if !m.Enabled() {
		return
	}
	c := oneOf(component, storageParts)
	if err != nil {
		m.storageUp.WithLabelValues(c).Set(0)
		m.storageFailures.WithLabelValues(c).Inc()
		return
	}
	m.storageUp.WithLabelValues(c).Set(1)
}

// Enabled reports whether m records anything.
func (m *Metrics) Enabled() bool { return m != nil && m.analysisTotal != nil }

// oneOf returns v if it is in the vocabulary, else Other.
func oneOf(v string, vocab []string) string {
	for _, w := range vocab {
		if v == w {
			return v
		}
	}
	return Other
}

// seconds converts a duration, rejecting negative ones.
func seconds(d time.Duration) (float64, bool) {
	if d < 0 {
		return 0, false
	}
	return d.Seconds(), true
}

// ObserveAnalysis records one finished analysis: its status (StatusSuccess
// or StatusError), its source (SourceUpload, SourceJetstream,
// SourceSimulator, SourceJetDrive) and how long it took. A negative
// duration is not observed.
func (m *Metrics) ObserveAnalysis(status, source string, d time.Duration) {
	if !m.Enabled() {
		return
	}
	source = oneOf(source, analysisSources)
	m.analysisTotal.WithLabelValues(oneOf(status, analysisStatuses), source).Inc()
	if s, ok := seconds(d); ok {
		m.analysisDuration.WithLabelValues(source).Observe(s)
	}
}

// ObserveVECorrections records the VE correction statistics of one analysis:
// how many cells were corrected and the largest correction in percent (its
// absolute value is observed). A negative count or a NaN/Inf magnitude is
// not observed.
func (m *Metrics) ObserveVECorrections(cells int, maxPercent float64) {
	if !m.Enabled() {
		return
	}
	if cells >= 0 {
		m.veCount.Observe(float64(cells))
	}
	if !math.IsNaN(maxPercent) && !math.IsInf(maxPercent, 0) {
		m.veMagnitude.Observe(math.Abs(maxPercent))
	}
}

// ObserveUpload records the size of one accepted upload.
func (m *Metrics) ObserveUpload(bytes int64) {
	if !m.Enabled() || bytes < 0 {
		return
	}
	m.uploadBytes.Observe(float64(bytes))
}

// IncJetstreamRun counts a Jetstream run reaching status (RunPending,
// RunProcessing, RunComplete or StatusError).
func (m *Metrics) IncJetstreamRun(status string) {
	if !m.Enabled() {
		return
	}
	m.jetstreamRuns.WithLabelValues(oneOf(status, runStatuses)).Inc()
}

// ObserveJetstreamPoll records the latency of one Jetstream poll.
func (m *Metrics) ObserveJetstreamPoll(d time.Duration) {
	if !m.Enabled() {
		return
	}
	if s, ok := seconds(d); ok {
		m.jetstreamPoll.Observe(s)
	}
}

// IncJetstreamPollFailure counts a Jetstream poll whose listing of runs
// failed, in dynoai_jetstream_poll_failures_total. Its latency is still
// observed with ObserveJetstreamPoll, so failures over polls is a ratio.
func (m *Metrics) IncJetstreamPollFailure() {
	if !m.Enabled() {
		return
	}
	m.jetstreamPollErr.Inc()
}

// IncVirtualTuning counts a virtual tuning session reaching status
// (TuningRunning, TuningConverged, TuningFailed or TuningStopped).
func (m *Metrics) IncVirtualTuning(status string) {
	if !m.Enabled() {
		return
	}
	m.tuningSessions.WithLabelValues(oneOf(status, tuningStatuses)).Inc()
}

// ObserveVirtualTuningIterations records how many iterations a session took
// to converge. Negative counts are not observed.
func (m *Metrics) ObserveVirtualTuningIterations(n int) {
	if !m.Enabled() || n < 0 {
		return
	}
	m.tuningIterations.Observe(float64(n))
}

// SetActiveSessions sets the number of active tuning sessions. The
// server counts its open live JetDrive streams with AddActiveSessions.
func (m *Metrics) SetActiveSessions(n int) {
	if !m.Enabled() {
		return
	}
	m.activeSessions.Set(float64(n))
}

// AddActiveSessions adds delta (which may be negative) to the number of
// active tuning sessions.
func (m *Metrics) AddActiveSessions(delta int) {
	if !m.Enabled() {
		return
	}
	m.activeSessions.Add(float64(delta))
}
