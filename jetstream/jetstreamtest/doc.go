// Package jetstreamtest provides an in-memory fake of Dynojet's Jetstream API
// (the contract jetstream.HTTPClient speaks) for tests: seeded runs, the
// processed flag, keyset paging, and injectable faults (HTTP 5xx, stalls past
// the client's timeout, 429 with Retry-After, truncated downloads, dropped
// connections, duplicate list items). Runs that appear out of timestamp order
// are published with Add at any time.
//
// NewStub returns a server seeded with the predecessor's seven sample runs,
// whose raw data is a realistic dyno pull in Jetstream's column names and
// mixed units.
package jetstreamtest
