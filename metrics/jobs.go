package metrics

import "github.com/prometheus/client_golang/prometheus"

// Events of the analysis job queue, the values of
// dynoai_analysis_jobs_total's event label.
const (
	JobClaimed        = "claimed"         // a worker leased a job
	JobRetried        = "retried"         // the lease was a second or later attempt
	JobCompleted      = "completed"       // the job's result was committed
	JobFailed         = "failed"          // the job failed for good
	JobRetryScheduled = "retry_scheduled" // an attempt failed; the job will run again
	JobReleased       = "released"        // given back whole on shutdown
	JobLeaseLost      = "lease_lost"      // a write was refused: another worker holds the job
	JobClaimError     = "claim_error"     // claiming failed (the store refused)
)

var jobEvents = []string{JobClaimed, JobRetried, JobCompleted, JobFailed, JobRetryScheduled, JobReleased, JobLeaseLost, JobClaimError}

// jobMetrics are the queue's series.
type jobMetrics struct {
	events  *prometheus.CounterVec
	backlog prometheus.Gauge
	busy    prometheus.Gauge
}

func newJobMetrics() *jobMetrics {
	return &jobMetrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "analysis_jobs_total",
			Help: "Analysis job queue events on this replica: claims, retries, completions, failures, releases, lost leases.",
		}, []string{"event"}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "analysis_queue_backlog",
			Help: "Analysis jobs waiting for a worker in the whole cluster (due or with an expired lease), as this replica last counted.",
		}),
		busy: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "analysis_workers_busy",
			Help: "This replica's analysis workers running an analysis now.",
		}),
	}
}

func (j *jobMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{j.events, j.backlog, j.busy}
}

func (j *jobMetrics) zero() {
	for _, e := range jobEvents {
		j.events.WithLabelValues(e)
	}
}

// IncJobEvent counts one event of the analysis job queue (JobClaimed, ...).
func (m *Metrics) IncJobEvent(event string) {
	if !m.Enabled() {
		return
	}
	m.jobs.events.WithLabelValues(oneOf(event, jobEvents)).Inc()
}

// SetJobBacklog sets the cluster's analysis backlog as last counted.
func (m *Metrics) SetJobBacklog(n int64) {
	if !m.Enabled() {
		return
	}
	m.jobs.backlog.Set(float64(n))
}

// AddBusyWorkers adds delta (which may be negative) to this replica's busy
// analysis workers.
func (m *Metrics) AddBusyWorkers(delta int) {
	if !m.Enabled() {
		return
	}
	m.jobs.busy.Add(float64(delta))
}

// JobEvents returns the counter of one queue event, for tests that read
// it (with prometheus/testutil); nil when m records nothing.
func (m *Metrics) JobEvents(event string) prometheus.Counter {
	if !m.Enabled() {
		return nil
	}
	return m.jobs.events.WithLabelValues(oneOf(event, jobEvents))
}
