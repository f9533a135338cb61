package device

import (
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

// busyWait returns how long to wait after try number attempt, which the
// relay refused with RATE_LIMITED or QUEUE_FULL (err), or the error to fail
// with: the tries are used up, or the wait the relay names is too long.
func (d *Device) busyWait(attempt int, err error) (time.Duration, error) {
	code := Code(err)
	if attempt == busyAttempts {
		return 0, fmt.Errorf("%s: relay still answers %s after %d attempts: %w", d.cfg.Name, code, attempt, err)
	}
	if named, ok := namedWait(err); ok && code == pb.ErrorCode_RATE_LIMITED {
		if named > maxNamedWait {
			return 0, fmt.Errorf("%s: relay answers %s asking to wait %v, more than %v: %w", d.cfg.Name, code, named, maxNamedWait, err)
		}
		return named + namedWaitPad, nil // the relay rounds to the millisecond
	}
	return d.backoff(attempt), nil
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
