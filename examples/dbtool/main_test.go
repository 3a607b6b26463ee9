package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/runstoretest"
	"github.com/dynoai/dynoai/runstore/sqlstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func dbtool(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, func(k string) string { return env[k] }, &o, &e)
	return code, o.String(), e.String()
}

func exercise(t *testing.T, url string) {
	code, out, errOut := dbtool(t, nil, "-db", url, "info")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "schema version: 0")
	assert.Contains(t, out, "not initialised")

	code, _, errOut = dbtool(t, nil, "-db", url, "check")
	assert.Equal(t, 1, code, "an uninitialised database fails the check")
	assert.Contains(t, errOut, "run migrate")

	ms, err := sqlstore.Migrations()
	require.NoError(t, err)
	latest := len(ms)
	code, out, errOut = dbtool(t, nil, "-db", url, "init")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, fmt.Sprintf("schema version 0 -> %d", latest))

	code, out, errOut = dbtool(t, nil, "-db", url, "migrate")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, fmt.Sprintf("up to date at version %d", latest))

	// Put a run stuck in processing, as a crashed server leaves it.
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, url, sqlstore.Options{})
	require.NoError(t, err)
	r, err := s.Create(ctx, runstore.NewRun{Source: runstore.SourceUpload})
	require.NoError(t, err)
	_, err = s.Update(ctx, r.ID, runstore.Update{Version: r.Version, Status: runstore.StatusProcessing})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	code, out, errOut = dbtool(t, nil, "-db", url, "check")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, ": ok")
	code, out, errOut = dbtool(t, nil, "check", "-db", url)
	require.Equal(t, 0, code, "flags after the command: %s", errOut)
	assert.Contains(t, out, ": ok")

	code, out, _ = dbtool(t, nil, "-db", url, "info")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "runs:           1")
	assert.Contains(t, out, "processing    1")

	code, out, errOut = dbtool(t, nil, "-db", url, "recover")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "1 interrupted runs marked failed")
	assert.Contains(t, out, r.ID)

	code, _, errOut = dbtool(t, nil, "-db", url, "drop")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "-yes-really-drop")
	code, out, _ = dbtool(t, nil, "-db", url, "info")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "runs:           1", "drop without confirmation dropped nothing")

	code, out, errOut = dbtool(t, nil, "-db", url, "drop", "-yes-really-drop")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "dropped")
	code, out, _ = dbtool(t, nil, "-db", url, "info")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "schema version: 0")
}

func TestSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.db")
	for _, cmd := range []string{"info", "check", "recover"} {
		code, _, errOut := dbtool(t, nil, "-db", "sqlite:///"+path, cmd)
		assert.Equal(t, 1, code)
		assert.Contains(t, errOut, "no database at")
		_, err := os.Stat(path)
		require.ErrorIs(t, err, os.ErrNotExist, "%s must not create the file", cmd)
	}
	require.NoError(t, os.WriteFile(path, nil, 0o600)) // an empty file is an empty SQLite database
	exercise(t, "sqlite:///"+path)
}

func TestPostgres(t *testing.T) {
	exercise(t, runstoretest.PostgresDSN(t))
}

func TestURLFromEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env.db")
	code, out, errOut := dbtool(t, map[string]string{"DATABASE_URL": "sqlite:///" + path}, "init")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, path)
	other := filepath.Join(t.TempDir(), "dynoai.db")
	code, out, errOut = dbtool(t, map[string]string{"DATABASE_URL": "sqlite:///" + path, "DYNOAI_DATABASE_URL": "sqlite:" + other}, "init")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, other, "DYNOAI_DATABASE_URL wins")
}

// TestDefaultIsTheServers: without a URL, dbtool opens the database
// examples/server uses by default, <data dir>/dynoai.db, creating the
// folder on init.
func TestDefaultIsTheServers(t *testing.T) {
	data := filepath.Join(t.TempDir(), "fresh", "data")
	code, out, errOut := dbtool(t, map[string]string{"DYNOAI_DATA_DIR": data}, "init")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, filepath.Join(data, "dynoai.db"))
	_, err := os.Stat(filepath.Join(data, "dynoai.db"))
	require.NoError(t, err)
}

func TestUsageErrors(t *testing.T) {
	db := filepath.Join(t.TempDir(), "u.db")
	cases := []struct {
		args []string
		want string
	}{
		{nil, "usage: dbtool"},
		{[]string{"-db", db, "frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"-db", db, "info", "extra"}, `unexpected argument "extra"`},
		{[]string{"info", "-db", db, "extra"}, `unexpected argument "extra"`},
		{[]string{"-db", db, "init", "-yes-really-drop"}, "flag provided but not defined"},
		{[]string{"-nosuchflag"}, "flag provided but not defined"},
		{[]string{"-db", "mysql://u:topsecret@h/db", "drop"}, "refusing to drop mysql://u:xxxxx@h/db"},
	}
	for _, tc := range cases {
		code, _, errOut := dbtool(t, nil, tc.args...)
		assert.Equal(t, 2, code, "%q", tc.args)
		assert.Contains(t, errOut, tc.want, "%q", tc.args)
		assert.NotContains(t, errOut, "topsecret")
	}
}

func TestErrorsHidePassword(t *testing.T) {
	for _, cmd := range []string{"info", "check", "init"} {
		code, out, errOut := dbtool(t, nil, "-db", "postgres://admin:topsecret@127.0.0.1:1/dynoai?sslmode=disable&connect_timeout=2", cmd)
		assert.Equal(t, 1, code)
		assert.NotContains(t, out+errOut, "topsecret")
		assert.True(t, strings.Contains(errOut, "xxxxx") || strings.Contains(errOut, "127.0.0.1"), errOut)
	}
	code, _, errOut := dbtool(t, nil, "-db", "mysql://admin:topsecret@h/db", "info")
	assert.Equal(t, 1, code)
	assert.NotContains(t, errOut, "topsecret")
}

// -h prints the usage and is not an error; no command is.
func TestHelpExitsZero(t *testing.T) {
	code, _, stderr := dbtool(t, nil, "-h")
	assert.Equal(t, 0, code)
	assert.Contains(t, stderr, "commands:")
	code, _, _ = dbtool(t, nil)
	assert.Equal(t, 2, code)
}
