package runstoretest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/runstore"
)

// leaseTests are the Leaser part of the suite, run on stores that implement
// runstore.Leaser.
var leaseTests = []struct {
	name string
	f    func(t *testing.T, e *env, l runstore.Leaser)
}{
	{"LeaseExclusive", testLeaseExclusive},
	{"LeaseExpiry", testLeaseExpiry},
	{"LeaseRelease", testLeaseRelease},
	{"LeaseConcurrent", testLeaseConcurrent},
	{"LeaseValidation", testLeaseValidation},
}

func runLeaseTests(t *testing.T, open Opener) {
	for _, tc := range leaseTests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, open)
			l, ok := e.s.(runstore.Leaser)
			if !ok {
				t.Skipf("%T does not implement runstore.Leaser", e.s)
			}
			tc.f(t, e, l)
		})
	}
}

// One holder at a time: a second holder is refused while the first's lease
// runs, and told who holds it; the holder renews it.
func testLeaseExclusive(t *testing.T, e *env, ls runstore.Leaser) {
	_, err := ls.CurrentLease(e.ctx, "recorder")
	require.ErrorIs(t, err, runstore.ErrNotFound)
	a, err := ls.AcquireLease(e.ctx, "recorder", "replica-a", 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, "replica-a", a.Holder)
	require.Positive(t, a.Token)
	require.True(t, a.Until.Equal(epoch.Add(10*time.Second)), "until %v", a.Until)

	held, err := ls.AcquireLease(e.ctx, "recorder", "replica-b", 10*time.Second)
	require.ErrorIs(t, err, runstore.ErrLeaseHeld)
	require.Equal(t, "replica-a", held.Holder)

	// Another name is another lease.
	_, err = ls.AcquireLease(e.ctx, "other", "replica-b", time.Second)
	require.NoError(t, err)

	e.clock.Advance(8 * time.Second)
	a2, err := ls.RenewLease(e.ctx, a, 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, a.Token, a2.Token)
	require.True(t, a2.Until.Equal(epoch.Add(18*time.Second)), "until %v", a2.Until)
	e.clock.Advance(5 * time.Second) // past the first expiry, within the renewal
	_, err = ls.AcquireLease(e.ctx, "recorder", "replica-b", 10*time.Second)
	require.ErrorIs(t, err, runstore.ErrLeaseHeld)
	cur, err := ls.CurrentLease(e.ctx, "recorder")
	require.NoError(t, err)
	require.Equal(t, a2.Token, cur.Token)
	require.Equal(t, "replica-a", cur.Holder)
}

// An expired lease goes to the next holder with a higher token, and the old
// holder's renewal fails with ErrLeaseLost: it learns it lost the role.
func testLeaseExpiry(t *testing.T, e *env, ls runstore.Leaser) {
	a, err := ls.AcquireLease(e.ctx, "recorder", "replica-a", 10*time.Second)
	require.NoError(t, err)
	e.clock.Advance(10 * time.Second)
	// Expired, even with nobody else waiting: a renewal comes too late.
	_, err = ls.RenewLease(e.ctx, a, 10*time.Second)
	require.ErrorIs(t, err, runstore.ErrLeaseLost)
	b, err := ls.AcquireLease(e.ctx, "recorder", "replica-b", 10*time.Second)
	require.NoError(t, err)
	require.Greater(t, b.Token, a.Token)
	_, err = ls.RenewLease(e.ctx, a, 10*time.Second)
	require.ErrorIs(t, err, runstore.ErrLeaseLost)
	// A's release of its lost lease does not free B's.
	require.NoError(t, ls.ReleaseLease(e.ctx, a))
	_, err = ls.AcquireLease(e.ctx, "recorder", "replica-a", 10*time.Second)
	require.ErrorIs(t, err, runstore.ErrLeaseHeld)
	_, err = ls.RenewLease(e.ctx, b, time.Minute)
	require.NoError(t, err)
}

// A released lease can be taken at once; the releaser's renewal then fails.
func testLeaseRelease(t *testing.T, e *env, ls runstore.Leaser) {
	a, err := ls.AcquireLease(e.ctx, "recorder", "replica-a", time.Hour)
	require.NoError(t, err)
	require.NoError(t, ls.ReleaseLease(e.ctx, a))
	require.NoError(t, ls.ReleaseLease(e.ctx, a), "releasing twice")
	_, err = ls.RenewLease(e.ctx, a, time.Hour)
	require.ErrorIs(t, err, runstore.ErrLeaseLost)
	b, err := ls.AcquireLease(e.ctx, "recorder", "replica-b", time.Hour)
	require.NoError(t, err)
	require.Greater(t, b.Token, a.Token)
	// The holder acquiring again gets a new lease, and its old one is gone.
	b2, err := ls.AcquireLease(e.ctx, "recorder", "replica-b", time.Hour)
	require.NoError(t, err)
	require.Greater(t, b2.Token, b.Token)
	_, err = ls.RenewLease(e.ctx, b, time.Hour)
	require.ErrorIs(t, err, runstore.ErrLeaseLost)
}

// Many replicas racing for a free lease: exactly one wins, never two.
func testLeaseConcurrent(t *testing.T, e *env, ls runstore.Leaser) {
	for round := 0; round < 5; round++ {
		name := fmt.Sprintf("race-%d", round)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var winners []string
		var other []error
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				holder := fmt.Sprintf("replica-%d", i)
				_, err := ls.AcquireLease(e.ctx, name, holder, time.Minute)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					winners = append(winners, holder)
				case !errors.Is(err, runstore.ErrLeaseHeld):
					other = append(other, err)
				}
			}()
		}
		wg.Wait()
		require.Empty(t, other)
		require.Len(t, winners, 1, "round %d: %v", round, winners)
	}
}

func testLeaseValidation(t *testing.T, e *env, ls runstore.Leaser) {
	for _, tc := range []struct {
		name, holder string
		d            time.Duration
	}{
		{"", "a", time.Second},
		{"x", "", time.Second},
		{"x", "a", 0},
		{"x", "a", 25 * time.Hour},
	} {
		_, err := ls.AcquireLease(e.ctx, tc.name, tc.holder, tc.d)
		require.ErrorIs(t, err, runstore.ErrInvalid, "%+v", tc)
	}
}
