// Package jetstreammetrics records a Jetstream poller's work in DynoAI's
// metrics: dynoai_jetstream_poll_duration_seconds and
// dynoai_jetstream_poll_failures_total for every listing of runs, and
// dynoai_jetstream_runs_total by status as runs move through the poller.
//
// It connects the two packages through jetstream.PollerHooks, so that
// neither the jetstream package imports Prometheus nor the metrics package
// imports jetstream:
//
//	poller, err := jetstream.NewPoller(client, state, proc, jetstream.PollerOptions{
//		Hooks: jetstreammetrics.Hooks(m),
//	})
package jetstreammetrics

import (
	"time"

	"github.com/dynoai/dynoai/jetstream"
	"github.com/dynoai/dynoai/metrics"
)

// Hooks returns poller hooks that record into m. A nil or disabled m gives
// hooks that record nothing.
//
// The statuses of dynoai_jetstream_runs_total count:
//   - pending: a run recorded for the first time, waiting to be processed
//     (runs Jetstream already showed as processed are not counted);
//   - processing: a processing attempt starting, so a run retried after a
//     retryable failure counts once per attempt;
//   - complete: a run processed, its outcome stored;
//   - error: a run given up on after its last attempt.
//
// processing − complete − error is therefore the number of attempts that
// were retried or are under way.
func Hooks(m *metrics.Metrics) jetstream.PollerHooks {
	return jetstream.PollerHooks{
		Listed: func(d time.Duration, err error) {
			m.ObserveJetstreamPoll(d)
			if err != nil {
				m.IncJetstreamPollFailure()
			}
		},
		Event: func(e jetstream.Event) {
			if st, ok := runStatus(e); ok {
				m.IncJetstreamRun(st)
			}
		},
	}
}

// runStatus maps a poller event to a status of dynoai_jetstream_runs_total.
func runStatus(e jetstream.Event) (string, bool) {
	switch e.Status {
	case jetstream.StatusQueued:
		// Attempt 0 is a run being recorded; a requeue after a
		// retryable failure carries the attempt that failed.
		return metrics.RunPending, e.Attempt == 0
	case jetstream.StatusDownloading:
		return metrics.RunProcessing, true
	case jetstream.StatusDone:
		return metrics.RunComplete, true
	case jetstream.StatusFailed:
		return metrics.StatusError, true
	}
	return "", false
}
