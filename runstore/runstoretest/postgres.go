package runstoretest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"github.com/dynoai/dynoai/internal/services"

	_ "github.com/lib/pq" // the PostgreSQL driver
)

// PostgresEnv is the environment variable holding the PostgreSQL DSN that
// tests use.
const PostgresEnv = "DYNOAI_TEST_POSTGRES_DSN"

// PostgresDSN returns a DSN for an isolated, empty schema in the database
// named by $DYNOAI_TEST_POSTGRES_DSN; the schema is dropped when the test
// ends. Without the variable the test is skipped, except under
// DYNOAI_SERVICES_REQUIRED=1 (set by .ci/run) where it fails.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := services.Need(t, PostgresEnv, "PostgreSQL tests; run .ci/postgres.sh as root and source /tmp/dynoai-ci-postgres.env, or set it to e.g. postgres://postgres@127.0.0.1:5432/dynoai_test?sslmode=disable")
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := "rstest_" + hex.EncodeToString(b[:])
	db, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatalf("opening %s: %v", PostgresEnv, err)
	}
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		db.Close()
		t.Fatalf("creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		defer db.Close()
		if _, err := db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return withSearchPath(base, schema)
}

func withSearchPath(dsn, schema string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return strings.TrimSpace(dsn) + " search_path=" + schema
}
