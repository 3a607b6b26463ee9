package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynoai/dynoai/runstore/blobstore"
	"github.com/dynoai/dynoai/runstore/runstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFilesURLSettings: DYNOAI_FILES_URL accepts the blob store's schemes,
// overrides DYNOAI_FILES_DIR, and a bad URL stops the server at startup
// without repeating it.
func TestFilesURLSettings(t *testing.T) {
	for _, u := range []string{"s3://bucket?region=us-east-1", "file:///var/lib/dynoai/files", "mem://"} {
		environ, lookup := lookupOf(map[string]string{"DYNOAI_FILES_URL": u, "DYNOAI_FILES_DIR": "/elsewhere"})
		s, err := loadSettings(environ, lookup)
		require.NoError(t, err, u)
		assert.Equal(t, u, s.FilesURL)
	}
	for u, want := range map[string]string{
		"gs://bucket":                       "unsupported URL scheme",
		"/var/lib/dynoai/files":             "unsupported URL scheme",
		"s3://AKIA:topsecret@bucket":        "credentials do not belong in the URL",
		"s3://?region=us-east-1":            "without a bucket",
		"s3://bucket?region=eu&bogus=yes":   "unknown query parameter",
		"file:///tmp/x?create_dir=1&oops=1": "invalid query parameter",
	} {
		var logs bytes.Buffer
		environ, _ := lookupOf(map[string]string{"DYNOAI_DATA_DIR": t.TempDir(), "DYNOAI_PORT": "0", "DYNOAI_FILES_URL": u})
		err := run(context.Background(), environ, "", &logs, nil)
		require.Error(t, err, u)
		assert.Contains(t, err.Error(), "DYNOAI_FILES_URL", u)
		assert.Contains(t, err.Error(), want, u)
		assert.NotContains(t, err.Error()+logs.String(), "topsecret")
	}
}

// TestFilesURLServes runs the server on a blob store: an upload is
// analyzed, its files are served with verified checksums, they are in the
// bucket rather than the data directory, and health names the store.
func TestFilesURLServes(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		serveOnBlobs(t, "file://"+dir, func(key string) bool {
			_, err := os.Stat(filepath.Join(dir, key[:2], key))
			return err == nil
		})
	})
	t.Run("s3", func(t *testing.T) {
		url := runstoretest.S3URL(t)
		bs, err := blobstore.Open(context.Background(), url, blobstore.Options{})
		require.NoError(t, err)
		t.Cleanup(func() {
			ctx := context.Background()
			it := bs.Bucket().List(nil)
			for {
				obj, err := it.Next(ctx)
				if err != nil {
					break
				}
				_ = bs.Bucket().Delete(ctx, obj.Key)
			}
			bs.Close()
		})
		serveOnBlobs(t, url, func(key string) bool {
			_, err := bs.Stat(context.Background(), key)
			return err == nil
		})
	})
}

func serveOnBlobs(t *testing.T, filesURL string, stored func(key string) bool) {
	data := t.TempDir()
	url, stop := start(t, map[string]string{"DYNOAI_DATA_DIR": data, "DYNOAI_PORT": "0", "DYNOAI_FILES_URL": filesURL})
	defer func() { require.NoError(t, stop()) }()

	code, health := getJSON(t, url+"/api/health", nil)
	require.Equal(t, 200, code, "%v", health)
	name := strings.SplitN(filesURL, "?", 2)[0]
	var msg string
	for _, c := range health["components"].([]any) {
		if c := c.(map[string]any); c["name"] == "file_store" {
			msg = c["message"].(string)
			assert.Equal(t, "healthy", c["status"])
		}
	}
	assert.True(t, strings.HasPrefix(msg, name), "health names the blob store: %q", msg)

	log := testLog(t)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", "pulls.csv")
	require.NoError(t, err)
	_, _ = fw.Write(log)
	require.NoError(t, mw.Close())
	res, err := http.Post(url+"/api/analyze", mw.FormDataContentType(), &body)
	require.NoError(t, err)
	var acc map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&acc))
	res.Body.Close()
	require.Equal(t, 202, res.StatusCode, "%v", acc)
	id := acc["run_id"].(string)
	require.Eventually(t, func() bool {
		_, st := getJSON(t, url+"/api/status/"+id, nil)
		return st["status"] == "completed"
	}, 30*time.Second, 50*time.Millisecond)

	code, listing := getJSON(t, url+"/api/runs/"+id+"/files", nil)
	require.Equal(t, 200, code)
	files := listing["files"].([]any)
	require.Greater(t, len(files), 1, "the upload and the results")
	sum := sha256.Sum256(log)
	var sawUpload bool
	for _, f := range files {
		f := f.(map[string]any)
		key := f["sha256"].(string)
		assert.True(t, stored(key), "%s is in the blob store", f["name"])
		res, err := http.Get(url + f["url"].(string))
		require.NoError(t, err)
		got, err := io.ReadAll(res.Body)
		res.Body.Close()
		require.NoError(t, err)
		require.Equal(t, 200, res.StatusCode, "%s: %s", f["name"], got)
		gotSum := sha256.Sum256(got)
		assert.Equal(t, key, hex.EncodeToString(gotSum[:]), "%s reads back as recorded", f["name"])
		sawUpload = sawUpload || key == hex.EncodeToString(sum[:])
	}
	assert.True(t, sawUpload, "the uploaded log is one of the run's files")
	_, err = os.Stat(filepath.Join(data, "files"))
	assert.ErrorIs(t, err, os.ErrNotExist, "DYNOAI_FILES_URL replaces the local files directory")
}
