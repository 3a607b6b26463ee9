// Package metrics records DynoAI's Prometheus metrics: the HTTP request
// metrics and the business metrics of analyses, VE corrections, uploads,
// Jetstream runs and polls, and virtual tuning sessions.
//
// Metrics registers its collectors on the prometheus.Registerer the caller
// passes in [Options], never on the global registry. A nil Registerer means
// no metrics: [New] then returns a *Metrics whose methods do nothing, and a
// nil *Metrics is equally safe to call, so code records unconditionally.
//
// Names, label names and histogram buckets are those of the Python
// predecessor (dashboards may already query them); see the tables in
// server-spec §3. Label values are checked against each metric's vocabulary
// and anything unknown is recorded as "other", so a caller cannot create
// unbounded series by mistake. The HTTP middleware labels requests with the
// route pattern (for example "GET /api/runs/{id}"), never the raw path.
//
// Every series is recorded by something real:
//   - HTTP series: [Metrics.HTTPMiddleware], around every httpapi route;
//   - analyses, VE corrections, uploads, storage checks: httpapi's upload
//     and analysis path and its health routes; Jetstream analyses: the
//     processor of examples/server;
//   - Jetstream polls and runs: package jetstreammetrics, through the
//     poller's hooks (jetstream.PollerHooks);
//   - active sessions: httpapi, for each open live JetDrive stream;
//   - virtual tuning sessions and iterations, and simulator analyses:
//     examples/closedloop -metrics-file (a batch job, written for the node
//     exporter's textfile collector; a server exports them at zero);
//   - the JetDrive client's series: package jetdrivemetrics.
package metrics
