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
// A key has an [Identity]: its [KeyID], the tenant that owns what it makes
// (runs), and its [Scopes] (read, analyze, apply, admin; admin has all and
// sees every tenant). Keys are given in a line format, one entry per line in
// a keys file or comma-separated in API_KEYS:
//
//	dynoai_<43 characters> [tenant=<tenant>] [scopes=<scope>+<scope>...]
//
// A bare key, as before tenants and scopes existed, is its own tenant
// ("key-" and its KeyID) with read, analyze and apply. Keys shorter than
// [MinKeyLen] (24) characters are refused when loaded, naming the line.
// A keys file is applied only when it parses whole: every line ends with a
// newline, and a file that starts with "# dynoai-keys v1" (as
// examples/keygen writes it) must end with "# end" (see [ParseFile]).
//
// Keys come from a [KeyStore]: [Memory] (set in code), [Env] (a comma-separated
// environment variable), [File] (hot-reloaded when the file changes and on
// explicit Reload; deleting the file revokes its keys after the poll
// interval), or a [Multi] that unions several. Every reload builds a new key
// set and swaps it in atomically, so a request in flight sees either the old
// set or the new one, never a mixture. Every store passes the conformance
// suite in package authkeystest.
//
// [Middleware] enforces keys on HTTP requests: a missing key is answered
// with 401 AUTH_REQUIRED, a wrong one with 403 INVALID_API_KEY, a key
// without the route's scope with 403 INSUFFICIENT_SCOPE, all in the JSON
// error envelope {"error":{"code","message","request_id"}}. Keys are read
// from the X-API-Key header or from "Authorization: Bearer <key>". The
// identity of a valid key is in the request's context
// ([IdentityFromContext]).
// Authentication that is enabled with zero keys configured fails closed.
//
// Authentication is never global: there is no package-level key store, and
// two stores built from the same configuration are independent.
package authkeys
