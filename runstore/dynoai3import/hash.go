package dynoai3import

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// fileHash is a file's SHA-256 as it is (lf) and of its CRLF form (crlf:
// every "\n" not already after "\r" written as "\r\n"), which is what old
// manifests made on Windows hashed.
type fileHash struct {
	lf, crlf string
	size     int64
}

func hashFile(path string) (fileHash, error) {
	f, err := os.Open(path)
	if err != nil {
		return fileHash{}, err
	}
	defer f.Close()
	lf, crlf := sha256.New(), sha256.New()
	cw := &crlfWriter{w: crlf}
	n, err := io.Copy(io.MultiWriter(lf, cw), f)
	if err != nil {
		return fileHash{}, fmt.Errorf("reading %s: %w", filepath.Base(path), err)
	}
	return fileHash{lf: hex.EncodeToString(lf.Sum(nil)), crlf: hex.EncodeToString(crlf.Sum(nil)), size: n}, nil
}

// crlfWriter writes what it is given with bare "\n" turned into "\r\n".
type crlfWriter struct {
	w    io.Writer
	prev byte
}

func (c *crlfWriter) Write(p []byte) (int, error) {
	start := 0
	for i, b := range p {
		if b == '\n' {
			prev := c.prev
			if i > 0 {
				prev = p[i-1]
			}
			if prev != '\r' {
				if _, err := c.w.Write(p[start:i]); err != nil {
					return 0, err
				}
				if _, err := c.w.Write([]byte{'\r'}); err != nil {
					return 0, err
				}
				start = i
			}
		}
	}
	if _, err := c.w.Write(p[start:]); err != nil {
		return 0, err
	}
	if len(p) > 0 {
		c.prev = p[len(p)-1]
	}
	return len(p), nil
}

// inputIndex finds input logs by SHA-256 in the directories of
// Options.InputDirs, hashing them once, on first use.
type inputIndex struct {
	dirs    []string
	maxSize int64
	once    sync.Once
	byHash  map[string]indexed
	err     error
}

type indexed struct {
	path string
	hash fileHash
	crlf bool // found by the hash of its CRLF form
}

func (ix *inputIndex) build() {
	ix.byHash = map[string]indexed{}
	for _, d := range ix.dirs {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !e.Type().IsRegular() {
				return nil
			}
			if ix.maxSize > 0 {
				if info, err := e.Info(); err == nil && info.Size() > ix.maxSize {
					return nil
				}
			}
			h, err := hashFile(p)
			if err != nil {
				return err
			}
			if _, ok := ix.byHash[h.lf]; !ok {
				ix.byHash[h.lf] = indexed{path: p, hash: h}
			}
			if _, ok := ix.byHash[h.crlf]; !ok {
				ix.byHash[h.crlf] = indexed{path: p, hash: h, crlf: h.crlf != h.lf}
			}
			return nil
		})
		if err != nil {
			ix.err = fmt.Errorf("dynoai3import: indexing input logs in %s: %w", d, err)
			return
		}
	}
}

// lookup returns the file whose contents (or CRLF form) hash to sha.
func (ix *inputIndex) lookup(sha string) (string, fileHash, bool, error) {
	if ix == nil || len(ix.dirs) == 0 {
		return "", fileHash{}, false, nil
	}
	ix.once.Do(ix.build)
	if ix.err != nil {
		return "", fileHash{}, false, ix.err
	}
	hit, ok := ix.byHash[sha]
	if !ok {
		return "", fileHash{}, false, nil
	}
	return hit.path, hit.hash, hit.crlf, nil
}
