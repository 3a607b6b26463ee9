package authkeys

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
)

// Prefix starts every key made by [Generate]. Stores do not require it: any
// key of [MinKeyLen] to [MaxKeyLen] printable ASCII characters is accepted.
const Prefix = "dynoai_"

// KeyBytes is the number of random bytes in a generated key.
const KeyBytes = 32

// Generate returns a new random key: [Prefix] followed by the unpadded
// base64url encoding of [KeyBytes] bytes from crypto/rand (50 characters in
// all, alphabet [A-Za-z0-9_-]).
func Generate() string {
	var b [KeyBytes]byte
	// crypto/rand.Read never returns an error (it aborts the program if the
	// system's random source fails), as documented since Go 1.24.
	_, _ = rand.Read(b[:])
	return Prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// MaxGenerate is the largest count [GenerateN] accepts.
const MaxGenerate = 1000

// ErrCount is returned by [GenerateN] for a count outside 1..[MaxGenerate].
var ErrCount = errors.New("authkeys: key count must be between 1 and 1000")

// GenerateN returns n distinct new keys.
func GenerateN(n int) ([]string, error) {
	if n < 1 || n > MaxGenerate {
		return nil, ErrCount
	}
	seen := make(map[string]bool, n)
	keys := make([]string, 0, n)
	for len(keys) < n {
		k := Generate()
		if seen[k] { // 2^-256: unreachable in practice, but keep the promise.
			continue
		}
		seen[k] = true
		keys = append(keys, k)
	}
	return keys, nil
}

// Digest is the SHA-256 digest of a key, the only form in which stores keep it.
type Digest [sha256.Size]byte

// DigestOf returns the digest of key.
func DigestOf(key string) Digest { return sha256.Sum256([]byte(key)) }

// KeyID is a short, stable identifier of a key for logs, metrics and rate
// limits: 12 lowercase hex characters derived from the key's digest through a
// second, domain-separated hash. It reveals no character of the key and no
// bits of the digest that stores compare.
type KeyID string

// idDomain separates key ids from the digests stores compare.
const idDomain = "dynoai authkeys key id v1\x00"

// ID returns the key id of a digest.
func (d Digest) ID() KeyID {
	h := sha256.New()
	h.Write([]byte(idDomain))
	h.Write(d[:])
	var sum [sha256.Size]byte
	return KeyID(hex.EncodeToString(h.Sum(sum[:0])[:6]))
}

// IDOf returns the key id of key. It is the ID of the [Identity]
// [KeyStore.Verify] returns for a valid key, and what the keygen command
// prints next to a new key.
func IDOf(key string) KeyID { return DigestOf(key).ID() }

// Errors returned by [KeyStore.Verify]. Test them with errors.Is.
var (
	// ErrMissing means no key was presented (an empty string).
	ErrMissing = errors.New("authkeys: no API key presented")
	// ErrInvalid means the presented key is not one of the store's keys.
	ErrInvalid = errors.New("authkeys: invalid API key")
	// ErrNoKeys means the store holds no keys at all, so every key is
	// rejected (authentication fails closed). It wraps ErrInvalid.
	ErrNoKeys error = noKeysError{}
)

type noKeysError struct{}

func (noKeysError) Error() string        { return "authkeys: no API keys configured; every key is rejected" }
func (noKeysError) Is(target error) bool { return target == ErrInvalid }
