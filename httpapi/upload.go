package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// Upload body limits (see Config.MinUploadRate and Config.UploadGrace).
const (
	DefaultMinUploadRate = 1024             // bytes per second
	DefaultUploadGrace   = 10 * time.Second // before the rate counts
	maxUploadTime        = 10 * time.Minute // whatever the rate
)

// Upload error codes.
const (
	CodeUploadIncomplete = "UPLOAD_INCOMPLETE"
	CodeUploadTooSlow    = "UPLOAD_TOO_SLOW"
)

// errTooSlow is what an upload body returns once its client fell below the
// minimum rate.
var errTooSlow = errors.New("upload slower than the minimum rate")

// uploadBody is an upload's request body. It holds the client to a minimum
// rate: before each read it sets the connection's read deadline to when the
// bytes received so far plus the next one are due (UploadGrace plus one
// second per MinUploadRate bytes, and never past maxUploadTime), so a
// client trickling bytes, or sending none, is cut off instead of holding a
// connection (and, before, an analysis slot) for as long as it likes. It
// also remembers how reading ended, to tell a client's truncated or aborted
// upload from a failure of the server's storage.
type uploadBody struct {
	r     io.ReadCloser
	rc    *http.ResponseController
	start time.Time
	rate  float64 // bytes per second; 0: no minimum
	grace time.Duration

	mu      sync.Mutex
	n       int64
	err     error // the first read error other than io.EOF
	tooSlow bool
	noDeadl bool // the writer cannot set deadlines (a recorder in tests)
}

func (s *Server) newUploadBody(w http.ResponseWriter, r *http.Request) *uploadBody {
	b := &uploadBody{r: r.Body, rc: http.NewResponseController(w), start: time.Now(), grace: s.cfg.UploadGrace}
	if s.cfg.MinUploadRate > 0 {
		b.rate = float64(s.cfg.MinUploadRate)
	}
	return b
}

func (b *uploadBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	n0 := b.n
	b.mu.Unlock()
	deadline := b.start.Add(maxUploadTime)
	if b.rate > 0 {
		due := b.start.Add(b.grace + time.Duration(float64(n0+1)/b.rate*float64(time.Second)))
		if due.Before(deadline) {
			deadline = due
		}
	}
	// Real connections take deadlines; recorders in tests cannot (and say
	// so with an allocated error each time: ask once).
	if !b.noDeadl && b.rc.SetReadDeadline(deadline) != nil {
		b.noDeadl = true
	}
	if b.rate > 0 && time.Now().After(deadline) {
		return 0, b.fail(errTooSlow, true)
	}
	n, err := b.r.Read(p)
	b.mu.Lock()
	b.n += int64(n)
	b.mu.Unlock()
	if err != nil && !errors.Is(err, io.EOF) {
		var ne net.Error
		slow := errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
		return n, b.fail(err, slow)
	}
	return n, err
}

func (b *uploadBody) fail(err error, slow bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err, b.tooSlow = err, slow
	}
	if b.tooSlow {
		return errTooSlow
	}
	return err
}

func (b *uploadBody) Close() error { return b.r.Close() }

// received returns how many bytes were read and the first read error.
func (b *uploadBody) state() (int64, error, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n, b.err, b.tooSlow
}

// uploadError explains an error met while reading an upload: the client's
// fault (a body cut off, a connection dropped, too slow, too large) is a
// 4xx with a code saying which, never a 500; anything else (the server's
// storage) is returned as it is.
func uploadError(err error, body *uploadBody) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	n, readErr, slow := body.state()
	if slow || errors.Is(err, errTooSlow) {
		return &Error{Status: http.StatusRequestTimeout, Code: CodeUploadTooSlow,
			Message: fmt.Sprintf("the upload arrived too slowly: %d bytes in %.0f s (at least %.0f bytes/s after the first %v)",
				n, time.Since(body.start).Seconds(), body.rate, body.grace),
			Details: map[string]any{"received_bytes": n, "min_bytes_per_second": body.rate}, Err: err}
	}
	if readErr != nil {
		return &Error{Status: http.StatusBadRequest, Code: CodeUploadIncomplete,
			Message: fmt.Sprintf("the upload was cut off after %d bytes (the connection ended before the body did)", n),
			Details: map[string]any{"received_bytes": n}, Err: err}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || isMultipartEOF(err) {
		return &Error{Status: http.StatusBadRequest, Code: CodeUploadIncomplete,
			Message: fmt.Sprintf("the multipart body ends after %d bytes without its closing boundary: the upload is truncated", n),
			Details: map[string]any{"received_bytes": n}, Err: err}
	}
	return err
}

// isMultipartEOF reports mime/multipart's error for a body that ends
// between parts without the closing boundary: it wraps io.EOF, unlike the
// plain io.EOF of a body that is complete.
func isMultipartEOF(err error) bool { return err != io.EOF && errors.Is(err, io.EOF) }
