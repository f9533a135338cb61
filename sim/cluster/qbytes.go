package cluster

import (
	"context"
	"errors"
	"strconv"

	"github.com/linksim/linksim/sim/store"
)

// Each device's queued bytes are counted in the bucket linksim_qbytes, only
// when Config.MaxQueuedBytes caps them: JetStream limits a subject's
// message count but not its bytes. Two counters per device only grow:
// in.<u>.<d>, the bytes enqueued, raised by the senders' nodes, and
// out.<u>.<d>, the bytes acked, raised by the node the device acks on; the
// queue holds in - out. Apart, senders and the recipient never contend for
// one key across nodes. Each is a compare-and-set (the in count's without
// a read, see Node.written); a node dying between
// raising in and publishing leaves the count high by that item until the
// device is removed.

type counter struct {
	N int64 `json:"n"`
}

func inKey(a store.Address) string  { return "in." + devKey(a) }
func outKey(a store.Address) string { return "out." + devKey(a) }

// reserve raises the in-counts of the batch's targets by what each gets,
// or raises none and fails with a *store.QueueFullError naming the first
// target whose queue would pass the cap. It returns how to give the room
// back should the items not be stored.
func (n *Node) reserve(ctx context.Context, sizes map[store.Address]int64) (func(), error) {
	var done []store.Address
	undo := func() {
		for _, a := range done {
			n.count(ctx, inKey(a), -sizes[a])
		}
	}
	for a, size := range sizes {
		// The acked bytes only grow, so an old count of them only makes
		// the queue look fuller: the node's last read of it is used until
		// the cap would refuse, and read again then.
		out, seen := n.acked.get(outKey(a))
		err := update(ctx, n, n.kv.qbytes, inKey(a), true, func(in *counter) error {
			if seen && in.N+size-out <= n.cfg.MaxQueuedBytes && in.N >= out {
				in.N += size
				return nil
			}
			var c counter
			if _, err := getJSON(ctx, n.kv.qbytes, outKey(a), &c); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			out, seen = c.N, true
			n.acked.put(outKey(a), c.N)
			if in.N+size-out > n.cfg.MaxQueuedBytes {
				return &store.QueueFullError{To: a}
			}
			in.N += size
			return nil
		})
		if err != nil {
			undo()
			return nil, err
		}
		done = append(done, a)
	}
	return undo, nil
}

// count adds delta to a counter, logging a failure: a count that missed an
// ack only refuses the device's senders early.
func (n *Node) count(ctx context.Context, key string, delta int64) {
	if delta == 0 {
		return
	}
	err := update(ctx, n, n.kv.qbytes, key, true, func(c *counter) error {
		c.N += delta
		return nil
	})
	if err != nil {
		n.log.Warn("counting queued bytes", "key", key, "delta", strconv.FormatInt(delta, 10), "err", err)
	}
}
