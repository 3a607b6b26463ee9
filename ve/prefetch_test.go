package ve

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/dynoai/dynoai/dyno"
)

// endlessSource yields steady samples forever, or fails after failAfter.
type endlessSource struct {
	n, failAfter int
	cancel       context.CancelFunc
	cancelAt     int
}

var errSensor = errors.New("wideband unplugged")

func (e *endlessSource) Layout() dyno.Layout { return twinLayout }

func (e *endlessSource) Next(ctx context.Context, s *dyno.Sample) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if e.failAfter > 0 && e.n == e.failAfter {
		return errSensor
	}
	if e.cancel != nil && e.n == e.cancelAt {
		e.cancel()
	}
	*s = steady(time.Duration(e.n)*10*time.Millisecond, 3000, 65, 13, 13.5, 13.5)
	e.n++
	return nil
}

func TestAnalyzeStopsOnSourceErrorAndCancel(t *testing.T) {
	defer goleak.VerifyNone(t)
	a, err := New(Options{})
	require.NoError(t, err)

	_, err = a.Analyze(t.Context(), &endlessSource{failAfter: 10_000})
	require.ErrorIs(t, err, errSensor)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err = a.Analyze(ctx, &endlessSource{cancel: cancel, cancelAt: 5_000})
	require.ErrorIs(t, err, context.Canceled)
}
