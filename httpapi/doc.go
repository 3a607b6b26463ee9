// Package httpapi is DynoAI's optional HTTP server. It composes the library:
// log uploads are analyzed by a ve.Analyzer, runs and their files are kept in
// a runstore.RunStore and runstore.FileStore, API keys are checked by an
// authkeys.KeyStore, metrics are recorded by a *metrics.Metrics, and, when
// wired in, a JetDrive client and a Jetstream poller are served live.
//
// A Server is built by New from a plain Config; nothing is global and nothing
// is read from the environment (examples/server does that). The routes, all
// documented in the OpenAPI document served at /api/openapi.json, are:
//
//   - health: GET /api/health (details; a read), /api/health/live and
//     /api/health/ready (open, no details; readiness does a durable write
//     and read back on the run store and the file store and names the
//     failing component)
//   - analysis: POST /api/analyze (multipart upload, asynchronous; progress
//     is stored in the run store), GET /api/status/{id}
//   - runs: GET /api/runs, GET and DELETE /api/runs/{id}, the run's files
//     (GET /api/runs/{id}/files, GET /api/runs/{id}/files/{file}, checksums
//     verified), GET /api/download/{id}/{name}, VE data and diagnostics
//     (GET /api/ve-data/{id}, GET /api/diagnostics/{id})
//   - calibration: POST /api/runs/{id}/tables (upload a base VE table),
//     POST /api/runs/{id}/apply, /dry-run and /rollback (exact inverses,
//     SHA-256 manifests), and the predecessor's POST /api/apply and
//     /api/rollback with run_id in the body
//   - live: /api/jetdrive/... (JSON and Server-Sent Events) and
//     /api/jetstream/... when configured
//   - GET /metrics when a prometheus.Gatherer is configured
//
// Every request gets a request id (a well-formed X-Request-ID is kept,
// anything else replaced), echoed in the response and in every error body.
// Every error is the JSON envelope
//
//	{"error":{"code":"...","message":"...","request_id":"...","details":{...}}}
//
// When authentication is enabled (AuthConfig) every route needs a key with
// the route's scope except liveness, readiness and the API document, which
// stay open and say nothing about the server; reads open without a key only
// with AuthConfig.OpenReads, /metrics only with AuthConfig.OpenMetrics (or
// when served on a port of its own by the caller). A run belongs to the
// tenant of the key that made it; runs made without a key belong to the
// default tenant. A key sees, downloads, deletes, applies and rolls back
// only its tenant's runs (another tenant's run is 404, as if it did not
// exist); an admin key sees all, and only admin sees upstream error text.
// Requests are rate limited per API key (a verified one) or per client
// address, with token buckets and a separate budget for expensive routes;
// X-Forwarded-For is believed only from configured proxy networks. CORS
// allows an explicit list of origins. Panics are answered with 500 and the
// request id.
//
// A few errors are answered by net/http itself, before any handler or
// wrapper sees the request, in plain text and without a request id: a
// malformed request line (a bad method, a request target with an invalid
// percent escape such as /api/%zz, an unsupported HTTP version: 400 or 505),
// malformed header lines (400), a header block over the http.Server's hard
// limit (431; Serve sets 1 MiB), a Transfer-Encoding it does not support
// (501) and an Expect header other than 100-continue (417). Everything that
// reaches the server is answered in the envelope, including header blocks
// over Config.MaxHeaderBytes (431 HEADERS_TOO_LARGE), request targets over
// Config.MaxURIBytes (414 URI_TOO_LONG) and paths that clean to something
// else (400).
//
// Uploads are read and stored before their analysis is queued, at no less than
// Config.MinUploadRate after Config.UploadGrace (else 408
// UPLOAD_TOO_SLOW); a body cut off or dropped by the client is 400
// UPLOAD_INCOMPLETE; storage that cannot be written is 503
// STORAGE_UNAVAILABLE.
//
// Analyses run from the run store's durable queue (runstore.JobQueue): an
// accepted upload is a run, its stored log and a job, written in one
// transaction. Config.Workers workers per server claim jobs with a lease
// (Config.JobLease), renew it every Config.JobHeartbeat and commit the
// result in a transaction that checks the lease, so any number of servers
// (replicas) can share one PostgreSQL database: a replica that dies or
// stalls mid-analysis loses its lease and another worker runs the job
// again, up to Config.JobMaxAttempts times, and its late writes are
// refused. Shutdown lets running analyses finish until its context ends
// and then gives them back to the queue; Start touches no run.
package httpapi
