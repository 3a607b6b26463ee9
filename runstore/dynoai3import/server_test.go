package dynoai3import_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/httpapi"
	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/dynoai3import"
	d3t "github.com/dynoai/dynoai/runstore/dynoai3import/dynoai3importtest"
	"github.com/dynoai/dynoai/ve"
)

// TestImportedApplyRollsBackThroughTheServer: an apply the predecessor's
// API made, imported, is undone by this project's server like one of its
// own, giving back the predecessor's base table exactly; the imported run
// is listed and served with its files.
func TestImportedApplyRollsBackThroughTheServer(t *testing.T) {
	ctx := context.Background()
	root, inputs := t.TempDir(), t.TempDir()
	d3t.BuildTree(t, root, inputs)
	require.NoError(t, os.Remove(filepath.Join(root, d3t.DirAPI, "VE_Restored.csv"))) // applied, not rolled back
	rs, fs := runstore.NewMemory(runstore.Options{}), runstore.NewMemFileStore()
	rep, err := dynoai3import.Import(ctx, root, rs, fs, dynoai3import.Options{})
	require.NoError(t, err)
	o := outcomes(rep)[d3t.DirAPI]
	require.Equal(t, dynoai3import.Imported, o.Action, "%v", o.Err)
	require.Equal(t, 1, o.Applies)

	srv, err := httpapi.New(httpapi.Config{Runs: rs, Files: fs})
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); _ = srv.Shutdown(ctx) })

	res, err := http.Get(ts.URL + "/api/runs?source=import&limit=100")
	require.NoError(t, err)
	var page struct {
		Runs []map[string]any `json:"runs"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&page))
	res.Body.Close()
	assert.Len(t, page.Runs, d3t.Importable)

	res, err = http.Post(ts.URL+"/api/runs/"+o.Run+"/rollback", "application/json", bytes.NewReader([]byte(`{"cylinder":"front"}`)))
	require.NoError(t, err)
	var body map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, "%v", body)

	applies, err := rs.Applies(ctx, o.Run)
	require.NoError(t, err)
	require.Len(t, applies, 2)
	require.Equal(t, runstore.ApplyKindRollback, applies[1].Kind)
	restored, err := ve.ReadTableCSV(bytes.NewReader(readBlob(t, fs, applies[1].Files[0].StorageKey)), "restored")
	require.NoError(t, err)
	base, err := ve.ReadTableCSV(bytes.NewReader(d3t.VETable(d3t.BaseVE, 1)), "base")
	require.NoError(t, err)
	assert.Equal(t, base.Values, restored.Values)
}
