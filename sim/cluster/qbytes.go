package cluster

import (
	"context"
	"strconv"

	"github.com/linksim/linksim/sim/store"
)

// Each device's queued bytes are counted in the bucket linksim_qbytes
// (<u>.<d> -> decimal bytes), only when Config.MaxQueuedBytes caps them:
// JetStream limits a subject's message count but not its bytes. The count
// is raised before an item is published and lowered when it is acked, each
// a compare-and-set; a node dying between raising it and publishing leaves
// it high by that item until the device's queue is removed.

type queuedBytes struct {
	N int64 `json:"n"`
}

// reserve raises the counts of the batch's targets by what each gets, or
// raises none and fails with a *store.QueueFullError naming the first
// target whose queue would pass the cap.
func (n *Node) reserve(ctx context.Context, sizes map[store.Address]int64) (func(), error) {
	var done []store.Address
	undo := func() {
		for _, a := range done {
			n.release(ctx, a, sizes[a])
		}
	}
	for a, size := range sizes {
		err := update(ctx, n.kv.qbytes, devKey(a), true, func(q *queuedBytes) error {
			if q.N+size > n.cfg.MaxQueuedBytes {
				return &store.QueueFullError{To: a}
			}
			q.N += size
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

// release lowers a's count by size, never below 0.
func (n *Node) release(ctx context.Context, a store.Address, size int64) {
	if size <= 0 {
		return
	}
	err := update(ctx, n.kv.qbytes, devKey(a), true, func(q *queuedBytes) error {
		q.N = max(q.N-size, 0)
		return nil
	})
	if err != nil {
		n.log.Warn("lowering a queue's byte count", "device", a.String(), "bytes", strconv.FormatInt(size, 10), "err", err)
	}
}
