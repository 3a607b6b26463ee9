package runstoretest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	_ "github.com/lib/pq" // the PostgreSQL driver
)

// PostgresEnv is the environment variable holding the PostgreSQL DSN that
// tests use.
const PostgresEnv = "DYNOAI_TEST_POSTGRES_DSN"

// PostgresDSN returns a DSN for an isolated, empty schema in the database
// named by $DYNOAI_TEST_POSTGRES_DSN; the schema is dropped when the test
// ends. Without the variable the test is skipped, except under CI=true
// where it fails.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set; CI must run the PostgreSQL tests", PostgresEnv)
		}
		t.Skipf("%s is not set: skipping PostgreSQL tests (set it to e.g. postgres://postgres@127.0.0.1:5432/dynoai_test?sslmode=disable)", PostgresEnv)
	}
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
