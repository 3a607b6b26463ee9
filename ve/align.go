package ve

import (
	"time"

	"github.com/dynoai/dynoai/dyno"
)

// alignDelay is replaced by afr.Align once that lands.
func alignDelay(src dyno.Source, d time.Duration) dyno.Source { return src }
