package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// attemptTimeout bounds one try of a request to NATS. A request in flight
// when its server dies, or sent while a stream elects a new leader, gets
// no answer or "no responders"; trying again on the servers left succeeds
// within a few seconds.
const attemptTimeout = 2 * time.Second

// retry runs op until it succeeds, fails for good, or ctx ends. Only
// operations that may safely run twice go through it: reads, puts of the
// same value, deletes, and publishes carrying a message id.
func retry(ctx context.Context, op func(context.Context) error) error {
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := op(actx)
		cancel()
		if err == nil || !transient(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return err
		}
	}
}

// transient reports whether err may pass on its own: no answer in time,
// nobody to answer, or JetStream saying it is (briefly) unavailable.
func transient(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.As(err, &apiErr) && apiErr.Code == 503
}
