package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dynoai/dynoai/runstore"
)

var _ runstore.Importer = (*Store)(nil)

// errKeyTaken says another importer committed the key first.
var errKeyTaken = errors.New("sqlstore: import key taken")

// Import implements runstore.Importer: the run, its history, its files, its
// apply records (chained per cylinder) and its row in run_imports are
// inserted in one transaction. The primary key of run_imports decides a
// race on one key: on SQLite the write lock serialises importers, so the
// later one finds the key; on PostgreSQL the later one's insert waits for
// the earlier transaction and, once that commits, inserts nothing, so it
// rolls back and returns the earlier one's run.
func (s *Store) Import(ctx context.Context, r runstore.ImportRun) (runstore.Run, bool, error) {
	if err := r.Validate(); err != nil {
		return runstore.Run{}, false, err
	}
	// A key imported before is found without taking the write lock (a
	// second import of a whole archive writes nothing).
	if found, ok, err := s.importedRun(ctx, s.r, r.Run.Tenant, r.Key); err != nil || ok {
		return found, false, s.importErr(r.Key, err)
	}
	now := stamp(s.clock)
	created, _ := r.ImportTimes(now)
	id, err := s.ids.Next(created)
	if err != nil {
		return runstore.Run{}, false, err
	}
	run, history := r.ImportedRecord(id, now)
	// A run found by key can be deleted before it is read back; the key is
	// then free again, so try again (a few times: each retry needs another
	// importer and a deletion to interleave).
	for range 3 {
		var out runstore.Run
		stored := false
		err := s.tx(ctx, func(tx *txn) error {
			found, ok, err := s.importedRun(ctx, tx, r.Run.Tenant, r.Key)
			if err != nil || ok {
				out = found
				return err
			}
			if err := s.insertImport(ctx, tx, r, run, history, now); err != nil {
				return err
			}
			out, stored = run, true
			return nil
		})
		switch {
		case err == nil:
			return out, stored, nil
		case errors.Is(err, errKeyTaken):
			found, ok, err := s.importedRun(ctx, s.r, r.Run.Tenant, r.Key)
			if err != nil {
				return runstore.Run{}, false, s.importErr(r.Key, err)
			}
			if ok {
				return found, false, nil
			}
		default:
			return runstore.Run{}, false, s.importErr(r.Key, err)
		}
	}
	return runstore.Run{}, false, conflict("import %q: the run stored under this key keeps being deleted", r.Key)
}

// importErr names the import in err, marked runstore.ErrUnavailable when
// the database is; nil stays nil.
func (s *Store) importErr(key string, err error) error {
	if err == nil {
		return nil
	}
	return unavailable(fmt.Errorf("sqlstore: import %q: %w", key, err))
}

// ImportedRun implements runstore.Importer.
func (s *Store) ImportedRun(ctx context.Context, tenant, key string) (runstore.Run, error) {
	found, ok, err := s.importedRun(ctx, s.r, tenant, key)
	switch {
	case err != nil:
		return runstore.Run{}, s.importErr(key, err)
	case !ok:
		return runstore.Run{}, fmt.Errorf("%w: no run imported under key %q for tenant %q", runstore.ErrNotFound, key, tenant)
	}
	return found, nil
}

// importedRun returns the run imported under tenant's key, if any.
func (s *Store) importedRun(ctx context.Context, q querier, tenant, key string) (runstore.Run, bool, error) {
	var id string
	err := q.GetContext(ctx, &id, q.Rebind(`SELECT run_id FROM run_imports WHERE tenant = ? AND import_key = ?`), tenant, key)
	if errors.Is(err, sql.ErrNoRows) {
		return runstore.Run{}, false, nil
	}
	if err != nil {
		return runstore.Run{}, false, fmt.Errorf("run_imports: %w", err)
	}
	run, err := s.get(ctx, q, id)
	if errors.Is(err, runstore.ErrNotFound) {
		return runstore.Run{}, false, nil // deleted since (another transaction)
	}
	return run, err == nil, err
}

// insertImport writes the imported run r as ImportedRecord made it (run and
// history), then its key, files and apply records.
func (s *Store) insertImport(ctx context.Context, tx *txn, r runstore.ImportRun, run runstore.Run, history []runstore.StatusChange, now time.Time) error {
	_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO runs (id, tenant, version, status, source, stage, progress, message,
		filename, input_size, vehicle, jetstream_id, search, settings, results, error, peak_hp, peak_torque, afr_mean,
		afr_std, corrected_cells, max_correction_pct, created_us, updated_us, completed_us)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		run.ID, run.Tenant, run.Version, string(run.Status), string(run.Source), run.Stage, run.Progress, run.Message,
		run.Filename, run.InputSize, run.Vehicle, run.JetstreamID, runstore.SearchText(run.Filename, run.Vehicle),
		js(run.Settings), js(run.Results), errJSON(run.Error), fn(run.Stats.PeakHP), fn(run.Stats.PeakTorque),
		fn(run.Stats.AFRMean), fn(run.Stats.AFRStd), nullInt(run.Stats.CorrectedCells), fn(run.Stats.MaxCorrectionPct),
		toMicros(run.CreatedAt), toMicros(run.UpdatedAt), completed(run.CompletedAt))
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	// The key next: a racing importer of it waits here, before either has
	// written the rest.
	res, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO run_imports (tenant, import_key, run_id, created_us) VALUES (?, ?, ?, ?)
		ON CONFLICT (tenant, import_key) DO NOTHING`), run.Tenant, r.Key, run.ID, toMicros(now))
	if err != nil {
		return fmt.Errorf("key: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("key: %w", err)
	} else if n == 0 {
		return errKeyTaken
	}
	for _, ch := range history {
		if err := s.insertHistory(ctx, tx, run.ID, ch); err != nil {
			return fmt.Errorf("history: %w", err)
		}
	}
	for _, m := range r.Files {
		if _, err := s.insertFile(ctx, tx, run.ID, m, run.CompletedAt); err != nil {
			return err
		}
	}
	parents := map[string]int64{}
	for i, a := range r.Applies {
		rec, err := s.insertApply(ctx, tx, runstore.Apply{RunID: run.ID, Cylinder: a.Cylinder, Kind: a.Kind,
			Parent: parents[a.Cylinder], CreatedAt: a.ApplyTime(run.CompletedAt)}, a.Files)
		if err != nil {
			return fmt.Errorf("applies[%d]: %w", i, err)
		}
		parents[a.Cylinder] = rec.ID
	}
	return nil
}
