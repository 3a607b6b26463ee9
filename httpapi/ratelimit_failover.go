package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynoai/dynoai/metrics"
)

// errLimitsUnavailable: the shared store could not decide and the server
// fails closed (RateLimitConfig.RedisFailClosed).
var errLimitsUnavailable = errors.New("httpapi: the shared rate limit store is unavailable")

// Defaults of storeState.
const (
	// storeRetry is how long checks go straight to the fallback after the
	// store failed, before one check tries the store again: a store that
	// is down or slow costs one timeout per interval, not one per request.
	storeRetry = time.Second
	// storeLogEvery spaces the log lines of a failing store.
	storeLogEvery = 30 * time.Second
)

// storeState follows the health of the shared store of a server's budgets:
// a small circuit breaker, a log line at most every storeLogEvery, and the
// metric of failed checks.
type storeState struct {
	backend    string // metrics.BackendRedis
	failClosed bool
	log        *slog.Logger
	m          *metrics.Metrics
	retry      time.Duration    // storeRetry; tests shorten it
	logEvery   time.Duration    // storeLogEvery
	now        func() time.Time // the clock of the retry schedule; nil means time.Now (tests move their own)

	// next is when (Unix nanoseconds) a check may try the store again
	// after a failure; 0 while it answers.
	next atomic.Int64

	mu       sync.Mutex
	failing  bool      // since a failure, until a success
	since    time.Time // the first failure of this outage
	logged   time.Time // the last "failing" line
	unlogged int       // failures since that line
	lastErr  error
}

// clock returns the time on st's clock.
func (st *storeState) clock() time.Time {
	if st.now != nil {
		return st.now()
	}
	return time.Now()
}

// try reports whether a check should ask the store: always while it
// answers; after a failure, one check once retry has passed.
func (st *storeState) try(now time.Time) bool {
	n := st.next.Load()
	if n == 0 {
		return true
	}
	t := now.UnixNano()
	if t < n {
		return false
	}
	return st.next.CompareAndSwap(n, t+int64(st.retry))
}

// succeeded records an answer from the store.
func (st *storeState) succeeded(now time.Time) {
	if st.next.Load() == 0 {
		return
	}
	st.next.Store(0)
	st.mu.Lock()
	was, since, n := st.failing, st.since, st.unlogged
	st.failing, st.unlogged, st.lastErr = false, 0, nil
	st.mu.Unlock()
	if was {
		st.log.Info("rate limit store answers again; limits are shared again", "backend", st.backend,
			"down_for", now.Sub(since).Round(time.Millisecond), "errors_since_last_line", n)
	}
}

// failed records a check the store did not answer.
func (st *storeState) failed(now time.Time, err error) {
	st.m.IncRateLimitBackendError(st.backend)
	st.next.Store(now.UnixNano() + int64(st.retry))
	st.mu.Lock()
	if !st.failing {
		st.failing, st.since = true, now
	}
	st.lastErr = err
	st.unlogged++
	if !st.logged.IsZero() && now.Sub(st.logged) < st.logEvery {
		st.mu.Unlock()
		return
	}
	n := st.unlogged
	st.logged, st.unlogged = now, 0
	st.mu.Unlock()
	then := "limits are enforced by each server alone (in process) until it answers"
	if st.failClosed {
		then = "rate-limited requests are answered 503 until it answers"
	}
	st.log.Warn("rate limit store failing; "+then, "backend", st.backend, "err", err, "errors", n,
		"next_line_in", st.logEvery)
}

// status reports whether the store is failing, since when, and the latest
// error.
func (st *storeState) status() (bool, time.Time, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.failing, st.since, st.lastErr
}

// retryIn is how long until the store is tried again (at least a second,
// as Retry-After counts whole seconds).
func (st *storeState) retryIn(now time.Time) time.Duration {
	return max(time.Duration(st.next.Load()-now.UnixNano()), time.Second)
}

// failover lets the shared store decide, and while it cannot, the
// in-process budget (or, failing closed, nobody). Every request the store
// allows is charged to the in-process budget as well, so that the fallback
// starts warm: a client that spent its budget on this server is still held
// to it when the store fails. The in-process answer is then ignored, as the
// store's is the one shared.
type failover struct {
	shared rateLimiter
	local  *budget
	st     *storeState
}

func (f *failover) check(ctx context.Context, key clientKey, now time.Time) (decision, Rates, error) {
	if f.st.try(f.st.clock()) {
		d, rates, err := f.shared.check(ctx, key, now)
		if err == nil {
			f.st.succeeded(f.st.clock())
			if d.ok {
				f.local.allow(key, now)
			}
			return d, rates, nil
		}
		if ctx.Err() == nil { // not the client going away
			f.st.failed(f.st.clock(), err)
		}
	}
	if f.st.failClosed {
		return decision{}, nil, errLimitsUnavailable
	}
	d, rates := f.local.allow(key, now)
	return d, rates, nil
}

// useRedis puts budgets in Redis in front of the in-process ones (see
// RateLimitConfig.Redis); expensive is the expensive routes' rates.
func (s *Server) useRedis(expensive Rates) {
	c := s.cfg.RateLimit
	r := newRedisLimits(c)
	s.limStore = &storeState{backend: metrics.BackendRedis, failClosed: c.RedisFailClosed, log: s.log,
		m: s.cfg.Metrics, retry: storeRetry, logEvery: storeLogEvery}
	s.rlDefault = &failover{shared: newRedisBudget(r, "default", c.Default, c.AnonymousTotal), local: s.limDefault, st: s.limStore}
	s.rlExpensive = &failover{shared: newRedisBudget(r, "expensive", expensive, c.AnonymousTotal), local: s.limExpensive, st: s.limStore}
	st := s.limStore
	s.redisProbe = &prober{every: probeEvery, name: componentRedis, m: s.cfg.Metrics, log: s.log,
		check: func(ctx context.Context) error {
			err := r.probe(ctx)
			if err == nil {
				st.succeeded(st.clock()) // back, even if no request has tried it yet
			}
			return err
		}}
}

// redisComponent reports Redis in /api/health: healthy while it answers
// the probe and the checks in time; otherwise degraded when the server
// fails open (limits still hold, per server) and unhealthy when it fails
// closed (rate-limited routes answer 503, so readiness fails too).
func (s *Server) redisComponent(ctx context.Context) component {
	lat, err := s.redisProbe.result(ctx)
	failing, _, _ := s.limStore.status()
	c := component{Name: componentRedis, Status: "healthy", Message: "rate limits shared in Redis", LatencyMS: ms(lat)}
	switch {
	case err == nil && !failing:
	case s.limStore.failClosed:
		c.Status, c.Message = "unhealthy", "Redis does not answer in time (see the server log): rate-limited requests are refused with 503"
	default:
		c.Status, c.Message = "degraded", "Redis does not answer in time (see the server log): each server enforces the rate limits on its own"
	}
	return c
}
