package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisTimeout is RateLimitConfig.RedisTimeout when zero.
const DefaultRedisTimeout = 100 * time.Millisecond

// DefaultRedisPrefix is RateLimitConfig.RedisPrefix when empty.
const DefaultRedisPrefix = "dynoai:rl:"

// gcraScript charges one request to every limit of one or more buckets in
// a single round trip, all or nothing, as the in-process limiter does: a
// request refused by any limit spends nothing anywhere.
//
// Each limit N/Per is a GCRA (generic cell rate algorithm) cell: its
// theoretical arrival time (TAT, microseconds of the Redis clock) moves on
// by Per/N per request, and a request is allowed while the TAT it would
// leave is at most Per ahead of now. That is a token bucket of capacity N
// refilled at N/Per, kept as one number. A bucket is a hash with one field
// per limit (named "N/Per", so a changed limit starts afresh) that expires
// when its last limit is full again: a bucket gone is a bucket full.
//
// The clock is Redis's TIME, so replicas with skewed clocks agree.
//
// KEYS[1] is the salt key; the caller hashed KEYS[2..] with ARGV[1], and
// a different salt (Redis was flushed or restarted empty) answers {-1} so
// that the caller reloads it instead of writing buckets no other replica
// finds. ARGV[2] is the number of buckets; then, per bucket, its number of
// limits followed by N and Per (microseconds) of each.
//
// The answer is {allowed (1 or 0)} followed, per limit in order, by the
// whole requests left, the microseconds until a request would be allowed
// (0 when this one was) and the microseconds until the limit is full.
var gcraScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {-1} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local groups = tonumber(ARGV[2])
local a = 3
local ok = 1
local out = {0}
local writes = {}
for g = 1, groups do
  local n = tonumber(ARGV[a])
  a = a + 1
  local fields, counts, pers = {}, {}, {}
  for i = 1, n do
    counts[i] = tonumber(ARGV[a])
    pers[i] = tonumber(ARGV[a + 1])
    fields[i] = ARGV[a] .. '/' .. ARGV[a + 1]
    a = a + 2
  end
  local tats = redis.call('HMGET', KEYS[g + 1], unpack(fields))
  local w = {}
  local ttl = 0
  for i = 1, n do
    local per = pers[i]
    local step = per / counts[i]
    local tat = tonumber(tats[i]) or now
    if tat < now then tat = now end
    local new = tat + step
    local used = new - now
    if used > per then
      ok = 0
      out[#out + 1] = math.floor((per - (tat - now)) / step)
      out[#out + 1] = math.ceil(used - per)
      out[#out + 1] = math.ceil(tat - now)
    else
      out[#out + 1] = math.floor((per - used) / step)
      out[#out + 1] = 0
      out[#out + 1] = math.ceil(used)
    end
    w[#w + 1] = fields[i]
    w[#w + 1] = string.format('%.0f', math.ceil(new))
    if used > ttl then ttl = used end
  end
  writes[g] = {w, ttl}
end
if ok == 1 then
  for g = 1, groups do
    redis.call('HSET', KEYS[g + 1], unpack(writes[g][1]))
    redis.call('PEXPIRE', KEYS[g + 1], math.ceil(writes[g][2] / 1000))
  end
end
out[1] = ok
return out
`)

// saltScript sets the salt unless one is set, and returns the one set.
var saltScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
`)

// errSaltChanged: the salt in Redis changed twice during one check.
var errSaltChanged = errors.New("the rate limit salt in Redis keeps changing")

// redisLimits keeps the buckets of every budget in Redis, shared by all the
// servers that use the same Redis and prefix.
//
// Key names never hold an API key, a key id or a client address: a bucket
// is named by an HMAC-SHA-256 of who it belongs to, keyed with a random
// salt that the first server to need it stores in Redis (prefix + "salt",
// the one key that does not expire) and every other server reads, so that
// all agree on the names. Whoever can read Redis can read the salt too, and
// so can confirm a guessed address (an IPv4 address is one guess in 2^32);
// the names only keep addresses and key ids out of sight of anyone
// listing keys, dumps and logs.
type redisLimits struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
	// bounded: the client itself stops a command at the context's
	// deadline; otherwise a check waits for it in another goroutine.
	bounded bool
	probeID string

	mu   sync.RWMutex
	salt string // "" until loaded
}

func newRedisLimits(c RateLimitConfig) *redisLimits {
	r := &redisLimits{client: c.Redis, prefix: c.RedisPrefix, timeout: c.RedisTimeout, bounded: honoursDeadlines(c.Redis)}
	var b [6]byte
	_, _ = rand.Read(b[:])
	r.probeID = hex.EncodeToString(b[:])
	return r
}

// honoursDeadlines reports whether the client ends a command when its
// context's deadline passes (go-redis does only with ContextTimeoutEnabled;
// otherwise it waits up to its ReadTimeout, 3 s by default).
func honoursDeadlines(c redis.UniversalClient) bool {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

// within runs f with ctx bounded by timeout, and gives up waiting for it
// at the deadline even when the client would not.
func within[T any](ctx context.Context, timeout time.Duration, bounded bool, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	if bounded {
		defer cancel()
		return f(ctx)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer cancel()
		v, err := f(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("no answer within %v: %w", timeout, ctx.Err())
	}
}

// saltKey is the name of the salt.
func (r *redisLimits) saltKey() string { return r.prefix + "salt" }

// loadSalt returns the salt, reading (or creating) it when not known or
// when stale is the one known.
func (r *redisLimits) loadSalt(ctx context.Context, stale string) (string, error) {
	r.mu.RLock()
	s := r.salt
	r.mu.RUnlock()
	if s != "" && s != stale {
		return s, nil
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	s, err := saltScript.Run(ctx, r.client, []string{r.saltKey()}, hex.EncodeToString(b[:])).Text()
	if err != nil {
		return "", fmt.Errorf("reading the rate limit salt: %w", err)
	}
	r.mu.Lock()
	r.salt = s
	r.mu.Unlock()
	return s, nil
}

// digest names the bucket of key: a keyed hash, never the key id or the
// address itself.
func digest(salt string, key clientKey) string {
	m := hmac.New(sha256.New, []byte(salt))
	if key.key != "" {
		m.Write([]byte("key\x00"))
		m.Write([]byte(key.key))
	} else {
		m.Write([]byte("net\x00"))
		m.Write([]byte(key.net.String()))
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(m.Sum(sum[:0])[:16])
}

// redisBudget is the Redis side of one budget (see budget): the same
// buckets, named "<prefix><class>:k:<digest>" for keys,
// "<prefix><class>:a:<digest>" for client networks and
// "<prefix><class>:anonymous" for the anonymous total.
type redisBudget struct {
	r         *redisLimits
	class     string
	rates     Rates
	anonTotal Rates
	// The script's arguments after the salt, for a request with a key
	// (its bucket) and one without (its network's bucket and, with an
	// anonymous total, that one too).
	keyedArgs, anonArgs []any
}

func newRedisBudget(r *redisLimits, class string, rates, anonTotal Rates) *redisBudget {
	b := &redisBudget{r: r, class: class, rates: rates, anonTotal: anonTotal}
	limits := func(rs Rates) []any {
		out := []any{len(rs)}
		for _, l := range rs {
			out = append(out, l.N, l.Per.Microseconds())
		}
		return out
	}
	b.keyedArgs = append([]any{1}, limits(rates)...)
	if len(anonTotal) > 0 {
		b.anonArgs = append(append([]any{2}, limits(rates)...), limits(anonTotal)...)
	} else {
		b.anonArgs = b.keyedArgs
	}
	return b
}

// check charges one request of key in Redis. An error means Redis did not
// decide (down, slower than the timeout, or refusing the script).
func (b *redisBudget) check(ctx context.Context, key clientKey, _ time.Time) (decision, Rates, error) {
	type answer struct {
		vals []int64
	}
	res, err := within(ctx, b.r.timeout, b.r.bounded, func(ctx context.Context) (answer, error) {
		stale := ""
		for range 2 {
			salt, err := b.r.loadSalt(ctx, stale)
			if err != nil {
				return answer{}, err
			}
			keys, args := b.request(salt, key)
			vals, err := gcraScript.Run(ctx, b.r.client, keys, args...).Int64Slice()
			if err != nil {
				return answer{}, err
			}
			if len(vals) == 1 && vals[0] == -1 {
				stale = salt
				continue
			}
			return answer{vals: vals}, nil
		}
		return answer{}, errSaltChanged
	})
	if err != nil {
		return decision{}, nil, err
	}
	return b.decide(key, res.vals)
}

// request builds the script's keys and arguments for key.
func (b *redisBudget) request(salt string, key clientKey) ([]string, []any) {
	base := b.r.prefix + b.class
	keys := make([]string, 0, 3)
	keys = append(keys, b.r.saltKey())
	pre := b.keyedArgs
	if key.key != "" {
		keys = append(keys, base+":k:"+digest(salt, key))
	} else {
		keys = append(keys, base+":a:"+digest(salt, key))
		if len(b.anonTotal) > 0 {
			keys = append(keys, base+":anonymous")
		}
		pre = b.anonArgs
	}
	args := make([]any, 0, 1+len(pre))
	args = append(args, salt)
	args = append(args, pre...)
	return keys, args
}

// decide turns the script's answer into the decision the in-process
// limiter would give: when allowed, the tightest limit of the client's own
// bucket; when refused, that of the first bucket that refused, with the
// longest wait of every refusing limit.
func (b *redisBudget) decide(key clientKey, vals []int64) (decision, Rates, error) {
	groups := []Rates{b.rates}
	if key.key == "" && len(b.anonTotal) > 0 {
		groups = append(groups, b.anonTotal)
	}
	want := 1
	for _, g := range groups {
		want += 3 * len(g)
	}
	if len(vals) != want || (vals[0] != 0 && vals[0] != 1) {
		return decision{}, nil, fmt.Errorf("rate limit script answered %d values, want %d", len(vals), want)
	}
	out := decision{ok: vals[0] == 1}
	var retry time.Duration
	outRates := groups[0]
	chosen := false
	pos := 1
	for _, g := range groups {
		d := decision{ok: true, remaining: math.MaxInt}
		for _, l := range g {
			rem, wait, reset := vals[pos], vals[pos+1], vals[pos+2]
			pos += 3
			if wait > 0 {
				d.ok = false
				retry = max(retry, time.Duration(wait)*time.Microsecond)
			}
			if int(rem) < d.remaining {
				d.remaining, d.limit, d.reset = int(rem), l.N, time.Duration(reset)*time.Microsecond
			}
		}
		if !chosen && (out.ok || !d.ok) {
			out.limit, out.remaining, out.reset = d.limit, d.remaining, d.reset
			outRates, chosen = g, true
		}
	}
	if !out.ok {
		out.retryAfter = retry
	}
	return out, outRates, nil
}

// probe checks Redis as the health routes report it, within the time a
// check has: the salt can be read (or made), and a value written with an
// expiry reads back.
func (r *redisLimits) probe(ctx context.Context) error {
	_, err := within(ctx, r.timeout, r.bounded, func(ctx context.Context) (struct{}, error) {
		if _, err := r.loadSalt(ctx, ""); err != nil {
			return struct{}{}, err
		}
		key := r.prefix + "probe:" + r.probeID
		want := strconv.FormatInt(time.Now().UnixNano(), 10)
		pipe := r.client.Pipeline()
		pipe.Set(ctx, key, want, time.Minute)
		get := pipe.Get(ctx, key)
		if _, err := pipe.Exec(ctx); err != nil {
			return struct{}{}, err
		}
		if back := get.Val(); back != want {
			return struct{}{}, fmt.Errorf("probe key read back %q, want %q", back, want)
		}
		return struct{}{}, nil
	})
	return err
}
