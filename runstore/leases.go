package runstore

import (
	"context"
	"errors"
	"time"
)

// Leaser hands out named leases: a role that exactly one process of many
// sharing a store may play at a time, such as recording the live JetDrive
// stream (httpapi). It is the job queue's lease without a job: the lease
// has a holder, an expiry from the store's clock, and a fencing token that
// every acquisition raises, so a holder that stalled past its expiry and
// lost the role finds out on its next renewal (ErrLeaseLost) instead of
// acting beside the new holder.
//
// Memory and the SQL stores implement it (the SQL stores in the leases
// table of migration 0004).
type Leaser interface {
	// AcquireLease makes holder the holder of the lease called name for d,
	// when nobody holds it or its holder's lease expired (a holder that
	// acquires again gets a new lease). It returns ErrLeaseHeld, with the
	// current holder's lease, when another holder's lease is unexpired.
	AcquireLease(ctx context.Context, name, holder string, d time.Duration) (NamedLease, error)
	// RenewLease extends l by d from now, or fails with ErrLeaseLost when
	// l is no longer the lease's current, unexpired holding.
	RenewLease(ctx context.Context, l NamedLease, d time.Duration) (NamedLease, error)
	// ReleaseLease ends l at once, so another holder may acquire the lease;
	// releasing a lease already lost does nothing.
	ReleaseLease(ctx context.Context, l NamedLease) error
	// CurrentLease returns the lease called name as the store holds it
	// (expired or not), or ErrNotFound when it was never acquired.
	CurrentLease(ctx context.Context, name string) (NamedLease, error)
}

// ErrLeaseHeld is returned by AcquireLease while another holder's lease is
// unexpired.
var ErrLeaseHeld = errors.New("runstore: the lease is held by another holder")

// NamedLease is one holding of a named lease.
type NamedLease struct {
	Name   string    `json:"name"`
	Holder string    `json:"holder"`
	Token  int64     `json:"token"` // raised by every acquisition
	Until  time.Time `json:"until"` // the store's clock
}

// Held reports whether the lease is unexpired at now.
func (l NamedLease) Held(now time.Time) bool { return l.Token > 0 && now.Before(l.Until) }

// CheckNamedLease validates AcquireLease's arguments: a name and a holder of
// 1 to 128 bytes, and a duration within (0, 24h].
func CheckNamedLease(name, holder string, d time.Duration) error {
	if name == "" || len(name) > 128 {
		return invalid("lease name", "%q must be 1 to 128 bytes", name)
	}
	if holder == "" || len(holder) > 128 {
		return invalid("lease holder", "%q must be 1 to 128 bytes", holder)
	}
	return CheckLeaseFor(d)
}
