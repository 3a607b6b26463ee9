// Package jetstream picks up dyno runs from Dynojet's Jetstream cloud, converts
// them to dyno samples and hands them to an analysis step, exactly once per run,
// across outages and restarts.
//
// No public Jetstream API document exists; the contract DynoAI assumes (health,
// a run list windowed by a "since" cursor, run metadata, a raw CSV download and
// a "processed" mark, all under /api/v1 with a Bearer key) lives behind the
// [Client] interface, so a different real contract is one adapter away.
// [HTTPClient] implements it with typed errors ([ErrAuth], [ErrNotFound],
// [ErrRateLimited], [ErrServer], [ErrNetwork], [ErrTooLarge]), retries with
// exponential backoff and jitter, Retry-After, per-call timeouts and a
// response-size limit. The API key is never logged; [MaskKey] shows it.
//
// [Poller] lists new runs at an interval, records each one durably in a
// [StateStore] before it moves its cursor past it (a failed list never moves
// the cursor), de-duplicates by run id, and processes runs with bounded
// concurrency: download, convert ([NewReader] turns Jetstream's raw CSV into a
// [dyno.Source]), analyze (a [Processor] the caller plugs in), record the
// outcome, then mark the run processed on Jetstream. Progress is observable as
// a [PollerStatus] snapshot and as a channel of [Event]s ([Poller.Subscribe]).
//
// [MemoryStore] is the in-memory StateStore; package runstorestate keeps the
// state in a runstore.RunStore (SQLite, PostgreSQL), so that picked-up runs
// are ordinary runs of that store. Package jetstreamtest provides an
// in-memory fake Jetstream server with injectable faults, a stub mode seeded
// with realistic runs from the dyno simulator, and a conformance test that
// every StateStore passes.
package jetstream
