package httpapi

import (
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

// limiter is a sharded map of token buckets keyed by client identity.
type limiter struct {
	rates    Rates
	shards   [32]limShard
	seed     maphash.Seed
	maxKeys  int // per shard
	idleDrop time.Duration
}

type limShard struct {
	mu      sync.Mutex
	buckets map[string]*bucketSet
	ops     int
}

type bucketSet struct {
	tokens []float64
	last   time.Time
}

func newLimiter(r Rates, maxClients int) *limiter {
	if maxClients <= 0 {
		maxClients = 100_000
	}
	l := &limiter{rates: r, seed: maphash.MakeSeed(), maxKeys: max(1, maxClients/32)}
	for _, x := range r {
		l.idleDrop = max(l.idleDrop, x.Per)
	}
	for i := range l.shards {
		l.shards[i].buckets = make(map[string]*bucketSet)
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

// allow takes one token from every bucket of key, or none if any is empty.
func (l *limiter) allow(key string, now time.Time) decision {
	if len(l.rates) == 0 {
		return decision{ok: true}
	}
	sh := &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.ops++
	if sh.ops%1024 == 0 || len(sh.buckets) >= l.maxKeys {
		l.sweep(sh, now)
	}
	b := sh.buckets[key]
	if b == nil {
		if len(sh.buckets) >= l.maxKeys {
			// Too many live clients: refuse rather than grow without bound
			// or hand out fresh buckets (which would be a bypass).
			return decision{ok: false, limit: l.rates[0].N, retryAfter: time.Second}
		}
		b = &bucketSet{tokens: make([]float64, len(l.rates)), last: now}
		for i, r := range l.rates {
			b.tokens[i] = float64(r.N)
		}
		sh.buckets[key] = b
	}
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

// sweep drops buckets idle long enough to be full again: forgetting them
// changes nothing.
func (l *limiter) sweep(sh *limShard, now time.Time) {
	for k, b := range sh.buckets {
		if now.Sub(b.last) >= l.idleDrop {
			delete(sh.buckets, k)
		}
	}
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
