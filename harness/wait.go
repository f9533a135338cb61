package harness

import (
	"context"
	"fmt"
	"time"
)

// pollEvery is how often Await re-checks: fast enough that latencies a
// scenario observes are not dominated by it.
const pollEvery = 5 * time.Millisecond

// Await polls cond until it returns nil. When ctx ends first, the error
// names what was awaited and cond's last complaint.
func Await(ctx context.Context, what string, cond func() error) error {
	start := time.Now()
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waited %s for %s: %w", time.Since(start).Round(time.Millisecond), what, err)
		case <-t.C:
		}
	}
}
