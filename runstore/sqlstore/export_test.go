package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dynoai/dynoai/runstore"
)

// SeedRuns inserts n completed runs directly, in one transaction with
// multi-row INSERTs, created one millisecond apart before start. It exists
// for benchmarks that need a large table quickly.
func SeedRuns(ctx context.Context, s *Store, n int, start time.Time) error {
	const batch = 500
	if err := s.tx(ctx, func(tx *txn) error {
		for done := 0; done < n; done += batch {
			m := min(batch, n-done)
			var sb strings.Builder
			sb.WriteString(`INSERT INTO runs (id, version, status, source, filename, vehicle, search, peak_hp, created_us, updated_us, completed_us) VALUES `)
			args := make([]any, 0, m*11)
			for i := 0; i < m; i++ {
				k := done + i
				if i > 0 {
					sb.WriteString(", ")
				}
				sb.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
				at := start.Add(-time.Duration(n-k) * time.Millisecond)
				id := fmt.Sprintf("%012x%020x", at.UnixMilli(), k)
				file := fmt.Sprintf("pull_%06d.csv", k)
				veh := []string{"Road Glide", "Street Glide", "Fat Bob", "Sportster"}[k%4]
				st := []runstore.Status{runstore.StatusCompleted, runstore.StatusCompleted, runstore.StatusFailed, runstore.StatusCompleted}[k%4]
				src := runstore.Sources()[k%len(runstore.Sources())]
				us := toMicros(at)
				args = append(args, id, 3, string(st), string(src), file, veh, runstore.SearchText(file, veh), 80+float64(k%60), us, us, us)
			}
			if _, err := tx.ExecContext(ctx, tx.Rebind(sb.String()), args...); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	// Fresh statistics, as autovacuum / a long-lived database would have.
	_, err := s.w.ExecContext(ctx, "ANALYZE")
	return err
}
