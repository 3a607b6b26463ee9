package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	d3t "github.com/dynoai/dynoai/runstore/dynoai3import/dynoai3importtest"
	"github.com/dynoai/dynoai/runstore/runstoretest"
	"github.com/dynoai/dynoai/runstore/sqlstore"
)

// importDynoAI3 runs import-dynoai3 on a tree of every family: the
// corrupted folders make it exit 1 and are named; a second run adds
// nothing; the runs are in the database the server reads, their files in
// its files directory.
func importDynoAI3(t *testing.T, url string) {
	root, inputs, files := t.TempDir(), t.TempDir(), t.TempDir()
	d3t.BuildTree(t, root, inputs)

	code, out, errOut := dbtool(t, nil, "-db", url, "import-dynoai3", "-dry-run", "-inputs", inputs, root)
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, out, "would-import")
	assert.Contains(t, out, "11 would be imported, 4 skipped")
	assert.Contains(t, out, "cannot tell what is imported already", "no database yet, and the dry run makes none")

	env := map[string]string{"DYNOAI_FILES_DIR": files}
	code, out, errOut = dbtool(t, env, "-db", url, "import-dynoai3", "-inputs", inputs, root)
	assert.Equal(t, 1, code, "a corrupted folder is a failure to notice")
	assert.Contains(t, errOut, "some folders were skipped")
	assert.Contains(t, out, "11 imported, 0 already imported")
	assert.Contains(t, out, d3t.DirCorruptHash+": VE_Correction_Delta_DYNO.csv: ")
	assert.Contains(t, out, "note: the manifest hashed the input's CRLF form")
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, d3t.DirAPI+":") {
			assert.Contains(t, line, "2 apply records")
		}
	}

	code, out, errOut = dbtool(t, env, "-db", url, "import-dynoai3", "-inputs", inputs, root)
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, out, "0 imported, 11 already imported")
	code, out, errOut = dbtool(t, env, "-db", url, "import-dynoai3", "-dry-run", "-inputs", inputs, root)
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, out, "0 imported, 11 already imported, 0 would be imported", "a dry run tells what is there")

	s, err := sqlstore.Open(context.Background(), url, sqlstore.Options{})
	require.NoError(t, err)
	defer s.Close()
	in, err := s.Info(context.Background())
	require.NoError(t, err)
	assert.Equal(t, int64(11), in.Runs)
	assert.Positive(t, in.Files)

	code, _, errOut = dbtool(t, nil, "-db", url, "import-dynoai3", root, "extra")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "want one folder")
	code, _, errOut = dbtool(t, nil, "-db", url, "import-dynoai3", "-tenant", "bad tenant!", root)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "-tenant")
}

func TestImportDynoAI3SQLite(t *testing.T) {
	importDynoAI3(t, "sqlite:"+filepath.Join(t.TempDir(), "runs.db"))
}

func TestImportDynoAI3Postgres(t *testing.T) {
	importDynoAI3(t, runstoretest.PostgresDSN(t))
}
