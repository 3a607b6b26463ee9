// Package authkeys authenticates API clients by key.
//
// A key is the string "dynoai_" followed by the unpadded base64url encoding of
// 32 random bytes (see [Generate]). Stores never keep raw keys: they keep
// SHA-256 digests and compare the digest of a presented key with every stored
// digest in constant time, without stopping at the first match, so neither the
// position of a matching key nor the length of a wrong one shows in the
// timing. Logs and request contexts carry a [KeyID], a short identifier
// derived from the digest, never characters of the key itself.
//
// Keys come from a [KeyStore]: [Memory] (set in code), [Env] (a comma-separated
// environment variable), [File] (one key per line, hot-reloaded when the file
// changes and on explicit Reload), or a [Multi] that unions several. Every
// reload builds a new key set and swaps it in atomically, so a request in
// flight sees either the old set or the new one, never a mixture.
//
// [Middleware] enforces keys on HTTP requests: a missing key is answered
// with 401 AUTH_REQUIRED, a wrong one with 403 INVALID_API_KEY, both in the
// JSON error envelope {"error":{"code","message","request_id"}}. Keys are
// read from the X-API-Key header or from "Authorization: Bearer <key>".
// Authentication that is enabled with zero keys configured fails closed.
//
// Authentication is never global: there is no package-level key store, and
// two stores built from the same configuration are independent.
package authkeys
