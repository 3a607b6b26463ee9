package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
)

type recResp struct {
	code   int
	header http.Header
	body   []byte
}

func httptestDo(h http.Handler, method, path string, body io.Reader, hdr map[string]string) recResp {
	req := httptest.NewRequestWithContext(context.Background(), method, path, body)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return recResp{code: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

type slogLogger = slog.Logger

func slogNew(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(&lockedWriter{w: w}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// probeAlways makes every health request run the storage checks afresh.
func probeAlways(s *Server) { s.dbProbe.every, s.fileProbe.every = 0, 0 }

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

// syncBuffer is a bytes.Buffer safe to write from the server while a test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}
