package jetdrive_test

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/jetdrive"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func TestCaptureRoundTripAndTruncation(t *testing.T) {
	var buf bytes.Buffer
	start := time.Unix(1700000000, 123)
	w, err := jetdrive.NewCaptureWriter(&buf, start)
	require.NoError(t, err)
	from := netip.MustParseAddrPort("127.0.0.1:22344")
	pkts := []jetdrive.Packet{
		{At: start.Add(time.Millisecond), From: from, Data: []byte{3, 0, 0, 0x2b, 0x1a, 3, 0xff, 0xff}},
		{At: start.Add(2 * time.Millisecond), From: from, Data: []byte{}},
		{At: start.Add(3 * time.Millisecond), From: from, Data: bytes.Repeat([]byte{7}, 1400)},
	}
	for _, p := range pkts {
		require.NoError(t, w.Write(p))
	}
	require.NoError(t, w.Flush())
	full := buf.Bytes()
	r, err := jetdrive.NewCaptureReader(bytes.NewReader(full))
	require.NoError(t, err)
	assert.True(t, r.Start.Equal(start))
	for _, want := range pkts {
		got, err := r.Next()
		require.NoError(t, err)
		assert.True(t, want.At.Equal(got.At))
		assert.Equal(t, want.From, got.From)
		assert.Equal(t, want.Data, got.Data)
	}
	_, err = r.Next()
	assert.ErrorIs(t, err, io.EOF)

	tests := []struct {
		name   string
		cut    int
		offset int64
	}{
		{"inside a record header", 16 + 24 + 5, 16 + 24 + 5},
		{"inside a datagram", 16 + 24 + 16 + 16 + 100, 16 + 24 + 16 + 16 + 100},
		{"inside the file header", 10, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := jetdrive.NewCaptureReader(bytes.NewReader(full[:tt.cut]))
			for err == nil {
				_, err = r.Next()
			}
			require.ErrorIs(t, err, jetdrive.ErrBadCapture)
			var ce *jetdrive.CaptureError
			require.True(t, errors.As(err, &ce))
			assert.Equal(t, tt.offset, ce.Offset)
			assert.Contains(t, err.Error(), "at byte")
		})
	}
}
