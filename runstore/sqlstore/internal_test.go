package sqlstore

import (
	"net/url"
	"strings"
	"testing"
)

func FuzzRedactDSN(f *testing.F) {
	for _, s := range []string{
		"postgres://u:secretpw@h:5432/db?sslmode=disable",
		"host=h user=u password=secretpw dbname=d",
		"host=h password='secret pw' dbname=d",
		"postgres://u:secretpw@h:bad/db",
		"postgres://h/db?password=secretpw",
		"/var/lib/x.db",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		red := RedactDSN(dsn)
		pw := dsnPassword(dsn)
		if len(pw) < 6 || strings.Count(dsn, pw) != 1 || strings.Contains("xxxxx", pw) {
			return
		}
		if strings.Contains(red, pw) {
			t.Fatalf("RedactDSN(%q) = %q still holds the password %q", dsn, red, pw)
		}
		if u, err := url.Parse(dsn); err == nil && u.Query().Get("password") != "" {
			if strings.Contains(red, u.Query().Get("password")) && len(u.Query().Get("password")) >= 6 {
				t.Fatalf("RedactDSN(%q) = %q still holds the query password", dsn, red)
			}
		}
	})
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"postgres://u:topsecret@h/db", "sqlite:///x.db", "mysql://u:topsecret@h/db", "host=h password=topsecret", "x.db"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, target, err := ParseURL(s)
		if err != nil {
			if pw := dsnPassword(s); len(pw) >= 6 && strings.Count(s, pw) == 1 && strings.Contains(err.Error(), pw) {
				t.Fatalf("ParseURL(%q) error %q shows the password", s, err)
			}
			return
		}
		if d != SQLite && d != Postgres || target == "" && d == Postgres {
			t.Fatalf("ParseURL(%q) = %q, %q", s, d, target)
		}
	})
}
