package runstore

import (
	"context"
	"fmt"
	"sync"
	"time"
)

var _ Leaser = (*Memory)(nil)

// memLeases are a Memory's named leases, kept apart from its runs.
type memLeases struct {
	mu sync.Mutex
	m  map[string]NamedLease
}

func (m *Memory) leaseTable() *memLeases {
	m.leases.mu.Lock()
	if m.leases.m == nil {
		m.leases.m = map[string]NamedLease{}
	}
	m.leases.mu.Unlock()
	return &m.leases
}

// checkRead is check under the store's read lock.
func (m *Memory) checkRead(ctx context.Context) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.check(ctx)
}

// AcquireLease implements Leaser.
func (m *Memory) AcquireLease(ctx context.Context, name, holder string, d time.Duration) (NamedLease, error) {
	if err := CheckNamedLease(name, holder, d); err != nil {
		return NamedLease{}, err
	}
	if err := m.checkRead(ctx); err != nil {
		return NamedLease{}, err
	}
	t := m.leaseTable()
	t.mu.Lock()
	defer t.mu.Unlock()
	now := stamp(m.clock)
	cur := t.m[name]
	if cur.Held(now) && cur.Holder != holder {
		return cur, fmt.Errorf("%w: %q is held by %q until %s", ErrLeaseHeld, name, cur.Holder, cur.Until.Format(time.RFC3339))
	}
	l := NamedLease{Name: name, Holder: holder, Token: cur.Token + 1, Until: now.Add(d)}
	t.m[name] = l
	return l, nil
}

// RenewLease implements Leaser.
func (m *Memory) RenewLease(ctx context.Context, l NamedLease, d time.Duration) (NamedLease, error) {
	if err := CheckNamedLease(l.Name, l.Holder, d); err != nil {
		return NamedLease{}, err
	}
	if err := m.checkRead(ctx); err != nil {
		return NamedLease{}, err
	}
	t := m.leaseTable()
	t.mu.Lock()
	defer t.mu.Unlock()
	now := stamp(m.clock)
	cur := t.m[l.Name]
	if cur.Token != l.Token || cur.Holder != l.Holder || !cur.Held(now) {
		return NamedLease{}, fmt.Errorf("%w: lease %q (token %d)", ErrLeaseLost, l.Name, l.Token)
	}
	cur.Until = now.Add(d)
	t.m[l.Name] = cur
	return cur, nil
}

// ReleaseLease implements Leaser.
func (m *Memory) ReleaseLease(ctx context.Context, l NamedLease) error {
	if err := m.checkRead(ctx); err != nil {
		return err
	}
	t := m.leaseTable()
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur, ok := t.m[l.Name]; ok && cur.Token == l.Token && cur.Holder == l.Holder {
		cur.Until = time.Unix(0, 0).UTC()
		t.m[l.Name] = cur
	}
	return nil
}

// CurrentLease implements Leaser.
func (m *Memory) CurrentLease(ctx context.Context, name string) (NamedLease, error) {
	if err := m.checkRead(ctx); err != nil {
		return NamedLease{}, err
	}
	t := m.leaseTable()
	t.mu.Lock()
	defer t.mu.Unlock()
	cur, ok := t.m[name]
	if !ok {
		return NamedLease{}, notFound("lease", name)
	}
	return cur, nil
}
