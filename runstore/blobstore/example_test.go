package blobstore_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/blobstore"
)

// A run's file kept in a bucket: stored by content, read back through
// runstore.OpenFile (which verifies the checksum), and the orphan of an
// upload whose run never committed swept once the grace period is over.
// Replace mem:// with s3://bucket?region=... to share the files between
// replicas.
func Example() {
	ctx := context.Background()
	files, err := blobstore.Open(ctx, "mem://", blobstore.Options{})
	if err != nil {
		panic(err)
	}
	defer files.Close()
	runs := runstore.NewMemory(runstore.Options{})
	run, _ := runs.Create(ctx, runstore.NewRun{Source: runstore.SourceUpload})

	f, err := runstore.Attach(ctx, runs, files, run.ID, "pull.csv", "text/csv", strings.NewReader("RPM,MAP,AFR\n3000,80,13.1\n"))
	if err != nil {
		panic(err)
	}
	_, rc, err := runstore.OpenFile(ctx, runs, files, run.ID, f.ID)
	if err != nil {
		panic(err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	fmt.Printf("%s: %d bytes, checksum verified: %v\n", f.Name, len(data), err == nil)

	_, _ = files.Put(ctx, strings.NewReader("an upload whose run never committed"))
	st, _ := runstore.SweepFiles(ctx, runs, files, time.Now())
	fmt.Println("swept now:", st.Removed)
	st, _ = runstore.SweepFiles(ctx, runs, files, time.Now().Add(runstore.MinUnreferencedAge+time.Minute))
	fmt.Println("swept after the grace period:", st.Removed)
	// Output:
	// pull.csv: 25 bytes, checksum verified: true
	// swept now: 0
	// swept after the grace period: 1
}
