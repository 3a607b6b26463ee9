package httpapi

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dynoai/dynoai/authkeys"
)

// Limit is one rate: N requests per Per, enforced as a token bucket of
// capacity N refilled at N/Per.
type Limit struct {
	N   int
	Per time.Duration
}

// String formats l as ParseRates reads it, e.g. "100/minute".
func (l Limit) String() string {
	unit := l.Per.String()
	switch l.Per {
	case time.Second:
		unit = "second"
	case time.Minute:
		unit = "minute"
	case time.Hour:
		unit = "hour"
	case 24 * time.Hour:
		unit = "day"
	}
	return strconv.Itoa(l.N) + "/" + unit
}

// Rates is a set of limits that must all allow a request, like the
// predecessor's "5/minute;20/hour". An empty Rates allows everything.
type Rates []Limit

// String formats r as ParseRates reads it.
func (r Rates) String() string {
	parts := make([]string, len(r))
	for i, l := range r {
		parts[i] = l.String()
	}
	return strings.Join(parts, ";")
}

// ErrRate is wrapped by the errors of ParseRates.
var ErrRate = errors.New("httpapi: bad rate limit")

// MaxRateN bounds N in a Limit.
const MaxRateN = 1_000_000

// ParseRates parses limits separated by ';' (or ','), each "N/unit" or
// "N per unit", where unit is second, minute, hour or day (singular or
// plural, case-insensitive) or "N/<Go duration>" such as "10/30s". An error
// names the 1-based limit and the byte offset where it starts. The empty
// string is an empty Rates.
func ParseRates(s string) (Rates, error) {
	var out Rates
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	off := 0
	for i, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' }) {
		start := strings.Index(s[off:], part) + off
		off = start + len(part)
		l, err := parseLimit(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("%w: limit %d at byte %d (%q): %v", ErrRate, i+1, start, strings.TrimSpace(part), err)
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %q holds no limit", ErrRate, s)
	}
	return out, nil
}

func parseLimit(p string) (Limit, error) {
	var num, unit string
	if i := strings.IndexByte(p, '/'); i >= 0 {
		num, unit = p[:i], p[i+1:]
	} else if f := strings.Fields(p); len(f) == 3 && strings.EqualFold(f[1], "per") {
		num, unit = f[0], f[2]
	} else {
		return Limit{}, errors.New(`want "N/unit" or "N per unit"`)
	}
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil || n < 1 || n > MaxRateN {
		return Limit{}, fmt.Errorf("count %q is not an integer in 1..%d", strings.TrimSpace(num), MaxRateN)
	}
	unit = strings.ToLower(strings.TrimSpace(unit))
	var per time.Duration
	switch strings.TrimSuffix(unit, "s") {
	case "second", "sec":
		per = time.Second
	case "minute", "min":
		per = time.Minute
	case "hour":
		per = time.Hour
	case "day":
		per = 24 * time.Hour
	default:
		d, err := time.ParseDuration(unit)
		if err != nil || d < time.Millisecond || d > 7*24*time.Hour {
			return Limit{}, fmt.Errorf("unit %q is not second, minute, hour, day or a duration in 1ms..168h", unit)
		}
		per = d
	}
	return Limit{N: n, Per: per}, nil
}

// clientKey is who a bucket belongs to: a verified API key, or else the
// network of a client without one (its address, or its IPv6 /64; see
// RateLimitConfig.IPv6Prefix).
type clientKey struct {
	key authkeys.KeyID
	net netip.Prefix
}

// limiter is a sharded map of token buckets keyed by client, bounded by
// evicting the least recently used bucket: however many clients appear,
// memory stays bounded, and a new client always gets a bucket (forgetting a
// bucket only refills it, which favours the client it belonged to, never
// another one).
type limiter struct {
	rates    Rates
	shards   [32]limShard
	seed     maphash.Seed
	perShard int
}

type limShard struct {
	mu         sync.Mutex
	buckets    map[clientKey]*bucket
	head, tail *bucket // most recently used first
}

type bucket struct {
	key        clientKey
	tokens     []float64
	last       time.Time
	prev, next *bucket
}

// DefaultMaxClients is RateLimitConfig.MaxClients when zero.
const DefaultMaxClients = 100_000

func newLimiter(r Rates, maxClients int) *limiter {
	if maxClients <= 0 {
		maxClients = DefaultMaxClients
	}
	l := &limiter{rates: r, seed: maphash.MakeSeed(), perShard: max(1, maxClients/32)}
	for i := range l.shards {
		l.shards[i].buckets = make(map[clientKey]*bucket)
	}
	return l
}

// decision is the outcome of one allow call.
type decision struct {
	ok         bool
	limit      int           // N of the tightest limit
	remaining  int           // whole tokens left in it
	retryAfter time.Duration // until a token is back, when refused
	reset      time.Duration // until that bucket is full again
}

// len returns the number of buckets held.
func (l *limiter) len() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.buckets)
		sh.mu.Unlock()
	}
	return n
}

func (sh *limShard) unlink(b *bucket) {
	if b.prev != nil {
		b.prev.next = b.next
	} else {
		sh.head = b.next
	}
	if b.next != nil {
		b.next.prev = b.prev
	} else {
		sh.tail = b.prev
	}
	b.prev, b.next = nil, nil
}

func (sh *limShard) pushFront(b *bucket) {
	b.next = sh.head
	if sh.head != nil {
		sh.head.prev = b
	}
	sh.head = b
	if sh.tail == nil {
		sh.tail = b
	}
}

// allow takes one token from every bucket of key, or none if any is empty.
func (l *limiter) allow(key clientKey, now time.Time) decision {
	if len(l.rates) == 0 {
		return decision{ok: true}
	}
	sh := &l.shards[maphash.Comparable(l.seed, key)%uint64(len(l.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b := sh.buckets[key]
	switch {
	case b != nil:
		sh.unlink(b)
	case len(sh.buckets) >= l.perShard:
		// Full: recycle the least recently used bucket for the new client.
		b = sh.tail
		sh.unlink(b)
		delete(sh.buckets, b.key)
		b.key = key
		fallthrough
	default:
		if b == nil {
			b = &bucket{key: key, tokens: make([]float64, len(l.rates))}
		}
		for i, r := range l.rates {
			b.tokens[i] = float64(r.N)
		}
		b.last = now
		sh.buckets[key] = b
	}
	sh.pushFront(b)
	elapsed := now.Sub(b.last).Seconds()
	if elapsed < 0 {
		elapsed = 0
	}
	b.last = now
	d := decision{ok: true, remaining: math.MaxInt}
	for i, r := range l.rates {
		rate := float64(r.N) / r.Per.Seconds()
		b.tokens[i] = math.Min(float64(r.N), b.tokens[i]+elapsed*rate)
		if b.tokens[i] < 1 {
			d.ok = false
			wait := time.Duration((1 - b.tokens[i]) / rate * float64(time.Second))
			d.retryAfter = max(d.retryAfter, wait)
		}
	}
	for i, r := range l.rates {
		if d.ok {
			b.tokens[i]--
		}
		rem := int(b.tokens[i])
		if rem < d.remaining {
			rate := float64(r.N) / r.Per.Seconds()
			d.remaining, d.limit = rem, r.N
			d.reset = time.Duration((float64(r.N) - b.tokens[i]) / rate * float64(time.Second))
		}
	}
	return d
}

// budget is the limits of one class of route (default or expensive): a
// limiter for verified keys and another for clients without one, so that
// anonymous traffic, however many addresses it comes from, can neither
// spend nor evict a key's bucket; and optionally one bucket all anonymous
// requests share.
type budget struct {
	rates     Rates
	keyed     *limiter
	anonymous *limiter
	anonTotal *limiter // nil when RateLimitConfig.AnonymousTotal is empty
}

func newBudget(r Rates, c RateLimitConfig) *budget {
	b := &budget{rates: r, keyed: newLimiter(r, c.MaxClients), anonymous: newLimiter(r, c.MaxClients)}
	if len(c.AnonymousTotal) > 0 {
		b.anonTotal = newLimiter(c.AnonymousTotal, 32)
	}
	return b
}

// rateLimiter charges requests to one budget (the default routes' or the
// expensive ones'). The in-process budget, the Redis one and the failover
// between them are interchangeable behind it. An error means the request
// could not be decided.
type rateLimiter interface {
	check(ctx context.Context, key clientKey, now time.Time) (decision, Rates, error)
}

// check is allow as a rateLimiter; it never fails.
func (b *budget) check(_ context.Context, key clientKey, now time.Time) (decision, Rates, error) {
	d, r := b.allow(key, now)
	return d, r, nil
}

// allow charges one request of key (a verified key id, or "" with the
// client's network).
func (b *budget) allow(key clientKey, now time.Time) (decision, Rates) {
	if key.key != "" {
		return b.keyed.allow(key, now), b.rates
	}
	d := b.anonymous.allow(key, now)
	if d.ok && b.anonTotal != nil {
		if t := b.anonTotal.allow(clientKey{}, now); !t.ok {
			return t, b.anonTotal.rates
		}
	}
	return d, b.rates
}

// clientNet groups a client address: IPv4 by ipv4 bits (32: the address),
// IPv6 by ipv6 bits (64: one customer network, which hands out addresses by
// the billion). An invalid address is its own group.
func clientNet(a netip.Addr, ipv4, ipv6 int) netip.Prefix {
	if !a.IsValid() {
		return netip.Prefix{}
	}
	bits := ipv6
	if a.Is4() {
		bits = ipv4
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.PrefixFrom(a, a.BitLen())
	}
	return p
}

// clientIP resolves the client address of r: the socket peer, unless the
// peer is in trusted, in which case X-Forwarded-For is walked from the right
// past every trusted hop to the first untrusted address. A malformed entry
// stops the walk at the last address believed.
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	var peer netip.Addr
	if err == nil {
		peer = ap.Addr().Unmap()
	} else if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		peer = a.Unmap()
	} else {
		return netip.Addr{}
	}
	if !isTrusted(peer, trusted) {
		return peer
	}
	client := peer
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return client
			}
			client = a.Unmap()
			if !isTrusted(client, trusted) {
				return client
			}
		}
	}
	return client
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
