package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dynoai/dynoai/runstore"
)

var _ runstore.Leaser = (*Store)(nil)

type leaseRow struct {
	Name    string `db:"name"`
	Holder  string `db:"holder"`
	Token   int64  `db:"token"`
	UntilUS int64  `db:"until_us"`
}

func (r leaseRow) lease() runstore.NamedLease {
	return runstore.NamedLease{Name: r.Name, Holder: r.Holder, Token: r.Token, Until: fromMicros(r.UntilUS)}
}

// lockedLease runs f in a transaction holding the lease's row locked (the
// row is created, expired and without holder, the first time), with the
// row as it was.
func (s *Store) lockedLease(ctx context.Context, name string, f func(tx *txn, cur leaseRow, now time.Time) error) error {
	now := stamp(s.clock)
	return s.tx(ctx, func(tx *txn) error {
		// Make the row exist first, so that two first acquisitions on
		// PostgreSQL lock the same row instead of racing to insert it.
		if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO leases (name, holder, token, until_us, updated_us)
			VALUES (?, '', 0, 0, ?) ON CONFLICT (name) DO NOTHING`), name, toMicros(now)); err != nil {
			return fmt.Errorf("sqlstore: lease %q: %w", name, err)
		}
		var cur leaseRow
		if err := tx.GetContext(ctx, &cur, tx.Rebind(`SELECT name, holder, token, until_us FROM leases WHERE name = ?`+s.forUpdate(false)), name); err != nil {
			return fmt.Errorf("sqlstore: lease %q: %w", name, err)
		}
		return f(tx, cur, now)
	})
}

func setLease(ctx context.Context, tx *txn, l runstore.NamedLease, now time.Time) error {
	_, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE leases SET holder = ?, token = ?, until_us = ?, updated_us = ? WHERE name = ?`),
		l.Holder, l.Token, toMicros(l.Until), toMicros(now), l.Name)
	if err != nil {
		return fmt.Errorf("sqlstore: lease %q: %w", l.Name, err)
	}
	return nil
}

// AcquireLease implements runstore.Leaser.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, d time.Duration) (runstore.NamedLease, error) {
	if err := runstore.CheckNamedLease(name, holder, d); err != nil {
		return runstore.NamedLease{}, err
	}
	var out runstore.NamedLease
	var held error
	err := s.lockedLease(ctx, name, func(tx *txn, cur leaseRow, now time.Time) error {
		c := cur.lease()
		if c.Held(now) && c.Holder != holder {
			out = c
			held = fmt.Errorf("%w: %q is held by %q until %s", runstore.ErrLeaseHeld, name, c.Holder, c.Until.Format(time.RFC3339))
			return nil
		}
		out = runstore.NamedLease{Name: name, Holder: holder, Token: cur.Token + 1, Until: now.Add(d)}
		return setLease(ctx, tx, out, now)
	})
	if err != nil {
		return runstore.NamedLease{}, err
	}
	return out, held
}

// RenewLease implements runstore.Leaser.
func (s *Store) RenewLease(ctx context.Context, l runstore.NamedLease, d time.Duration) (runstore.NamedLease, error) {
	if err := runstore.CheckNamedLease(l.Name, l.Holder, d); err != nil {
		return runstore.NamedLease{}, err
	}
	var out runstore.NamedLease
	lost := false
	err := s.lockedLease(ctx, l.Name, func(tx *txn, cur leaseRow, now time.Time) error {
		c := cur.lease()
		if c.Token != l.Token || c.Holder != l.Holder || !c.Held(now) {
			lost = true
			return nil
		}
		c.Until = now.Add(d)
		out = c
		return setLease(ctx, tx, c, now)
	})
	if err != nil {
		return runstore.NamedLease{}, err
	}
	if lost {
		return runstore.NamedLease{}, fmt.Errorf("%w: lease %q (token %d)", runstore.ErrLeaseLost, l.Name, l.Token)
	}
	return out, nil
}

// ReleaseLease implements runstore.Leaser.
func (s *Store) ReleaseLease(ctx context.Context, l runstore.NamedLease) error {
	if err := s.checkFile(); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, s.w.Rebind(`UPDATE leases SET until_us = 0, updated_us = ? WHERE name = ? AND token = ? AND holder = ?`),
		toMicros(stamp(s.clock)), l.Name, l.Token, l.Holder)
	if err != nil {
		return fmt.Errorf("sqlstore: releasing lease %q: %w", l.Name, err)
	}
	return nil
}

// CurrentLease implements runstore.Leaser.
func (s *Store) CurrentLease(ctx context.Context, name string) (runstore.NamedLease, error) {
	var row leaseRow
	err := s.r.GetContext(ctx, &row, s.r.Rebind(`SELECT name, holder, token, until_us FROM leases WHERE name = ?`), name)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && row.Token == 0) {
		return runstore.NamedLease{}, fmt.Errorf("%w: lease %q", runstore.ErrNotFound, name)
	}
	if err != nil {
		return runstore.NamedLease{}, fmt.Errorf("sqlstore: lease %q: %w", name, err)
	}
	return row.lease(), nil
}
