package store

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
)

// queueIndex is which log items are in each device's queue, and their
// bytes (the queue layout is in queue.go). It changes only once a write
// commits (from the transaction's OnCommit, in commit order) and at Ack.
type queueIndex struct {
	mu     sync.Mutex
	queues map[string]*deviceQueue // by device key; none for an empty queue
	depth  atomic.Int64            // items in all queues
	queued atomic.Int64            // their bytes
}

type deviceQueue struct {
	items    []queuedItem // in seq order
	bytes    int64        // of items
	reserved int64        // of items being enqueued
}

// queuedItem is one item of a queue: its seq (what the device sees), its
// key in the log (the same but for items moved from a store from before),
// and its bytes.
type queuedItem struct {
	seq, key uint64
	bytes    int64
}

// reservation is what an item being enqueued holds in a device's queue.
type reservation struct {
	dk    string
	bytes int64
}

func newQueueIndex() *queueIndex {
	return &queueIndex{queues: map[string]*deviceQueue{}}
}

// queue returns the device's queue, made if there is none. Callers hold mu.
func (x *queueIndex) queue(dk string) *deviceQueue {
	q := x.queues[dk]
	if q == nil {
		q = &deviceQueue{}
		x.queues[dk] = q
	}
	return q
}

// dropIfEmpty forgets an empty queue. Callers hold mu.
func (x *queueIndex) dropIfEmpty(dk string) {
	if q := x.queues[dk]; q != nil && len(q.items) == 0 && q.reserved == 0 {
		delete(x.queues, dk)
	}
}

// reserve holds room for items about to be enqueued, counting those that
// are being enqueued as queued already, so that sends committing together
// cannot pass a cap of max bytes (0: none) together. It returns the index
// of the first item that does not fit, whose room and the next ones' it
// does not hold, or -1.
func (x *queueIndex) reserve(items []reservation, max int64) (full int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i, it := range items {
		q := x.queue(it.dk)
		if max > 0 && q.bytes+q.reserved+it.bytes > max {
			x.unreserve(items[:i])
			x.dropIfEmpty(it.dk)
			return i
		}
		q.reserved += it.bytes
	}
	return -1
}

// release gives back what reserve held (nothing when full >= 0).
func (x *queueIndex) release(items []reservation, full int) {
	if full >= 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.unreserve(items)
}

// unreserve gives items' room back. A queue may be gone meanwhile: a
// reservation of 0 bytes does not keep an empty queue from being dropped.
// Callers hold mu.
func (x *queueIndex) unreserve(items []reservation) {
	for _, it := range items {
		if q := x.queues[it.dk]; q != nil {
			q.reserved -= it.bytes
			x.dropIfEmpty(it.dk)
		}
	}
}

// add puts a committed item at the end of the device's queue.
func (x *queueIndex) add(dk string, it queuedItem) {
	x.mu.Lock()
	defer x.mu.Unlock()
	q := x.queue(dk)
	q.items = append(q.items, it)
	q.bytes += it.bytes
	x.depth.Add(1)
	x.queued.Add(it.bytes)
}

// after returns up to max items of the device's queue with seq > seq.
func (x *queueIndex) after(dk string, seq uint64, max int) []queuedItem {
	x.mu.Lock()
	defer x.mu.Unlock()
	q := x.queues[dk]
	if q == nil {
		return nil
	}
	i, _ := slices.BinarySearchFunc(q.items, seq+1, bySeq)
	return slices.Clone(q.items[i:min(i+max, len(q.items))])
}

// len returns how many items the device's queue holds.
func (x *queueIndex) len(dk string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	if q := x.queues[dk]; q != nil {
		return len(q.items)
	}
	return 0
}

// take removes the items with these seqs from the device's queue (missing
// ones are skipped) and returns their log keys. Acks mostly take a queue's
// oldest items, which leave by reslicing, so draining a deep queue an ack
// at a time is not quadratic.
func (x *queueIndex) take(dk string, seqs []uint64) (keys []uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	q := x.queues[dk]
	if q == nil {
		return nil
	}
	at := make([]int, 0, len(seqs))
	for _, seq := range seqs {
		if i, ok := slices.BinarySearchFunc(q.items, seq, bySeq); ok {
			at = append(at, i)
		}
	}
	if len(at) == 0 {
		return nil
	}
	slices.Sort(at)
	at = slices.Compact(at)
	var freed int64
	for _, i := range at {
		keys, freed = append(keys, q.items[i].key), freed+q.items[i].bytes
	}
	if at[len(at)-1] == len(at)-1 {
		q.items = q.items[len(at):]
	} else {
		kept, next := at[0], 0
		for i := at[0]; i < len(q.items); i++ {
			if next < len(at) && at[next] == i {
				next++
				continue
			}
			q.items[kept] = q.items[i]
			kept++
		}
		q.items = q.items[:kept]
	}
	q.bytes -= freed
	x.depth.Add(-int64(len(keys)))
	x.queued.Add(-freed)
	x.dropIfEmpty(dk)
	return keys
}

func bySeq(it queuedItem, seq uint64) int { return cmp.Compare(it.seq, seq) }

// drop empties a device's queue and returns its log keys.
func (x *queueIndex) drop(dk string) []uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	q := x.queues[dk]
	if q == nil {
		return nil
	}
	keys := make([]uint64, len(q.items))
	for i, it := range q.items {
		keys[i] = it.key
	}
	x.depth.Add(-int64(len(q.items)))
	x.queued.Add(-q.bytes)
	q.items, q.bytes = nil, 0
	x.dropIfEmpty(dk)
	return keys
}
