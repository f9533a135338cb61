package device

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/linksim/linksim/sim/wire/pb"
)

// How Call rides out the relay's refusals that clear with time (§13):
// RATE_LIMITED names when to retry; QUEUE_FULL clears once the target reads
// its queue, which nothing announces, so the device backs off (Config's
// BackoffBase and BackoffMax).
const (
	busyAttempts = 6                // tries of one request, the first included
	maxNamedWait = 30 * time.Second // a longer RATE_LIMITED wait fails at once
	namedWaitPad = 20 * time.Millisecond
)

// Call sends one request and returns the relay's answer (see callLinked),
// trying again after RATE_LIMITED or QUEUE_FULL: it waits the time the
// relay names, or backs off, at most busyAttempts tries in all, then fails
// with an error naming the code.
func (d *Device) Call(ctx context.Context, f *pb.Frame) (*pb.Frame, error) {
	for attempt := 1; ; attempt++ {
		ans, err := d.callLinked(ctx, f)
		code := Code(err)
		if code != pb.ErrorCode_RATE_LIMITED && code != pb.ErrorCode_QUEUE_FULL {
			return ans, err
		}
		if attempt == busyAttempts {
			return nil, fmt.Errorf("%s: relay still answers %s after %d attempts: %w", d.cfg.Name, code, attempt, err)
		}
		wait := d.backoff(attempt)
		if named, ok := namedWait(err); ok && code == pb.ErrorCode_RATE_LIMITED {
			if named > maxNamedWait {
				return nil, fmt.Errorf("%s: relay answers %s asking to wait %v, more than %v: %w", d.cfg.Name, code, named, maxNamedWait, err)
			}
			wait = named + namedWaitPad // the relay rounds to the millisecond
		}
		d.log.Info("relay busy, retrying", "code", code.String(), "attempt", attempt, "wait", wait)
		if err := d.pause(ctx, wait); err != nil {
			return nil, fmt.Errorf("%s: waiting to retry after %s: %w", d.cfg.Name, code, err)
		}
	}
}

// namedWait reads the wait in a RATE_LIMITED message, which ends with
// "retry in D", D a Go duration (docs/protocol.md §6).
func namedWait(err error) (time.Duration, bool) {
	var re *RelayError
	if !errors.As(err, &re) {
		return 0, false
	}
	_, after, found := strings.Cut(re.Message, "retry in ")
	if !found {
		return 0, false
	}
	wait, perr := time.ParseDuration(strings.TrimSpace(after))
	return wait, perr == nil && wait >= 0
}
