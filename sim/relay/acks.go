package relay

import (
	"sync"
	"time"

	"github.com/linksim/linksim/sim/store"
)

// maxPendingAcks bounds the acks of one device waiting for a commit; past
// it, the device's read loop waits (backpressure on a device acking
// faster than the disk deletes).
const maxPendingAcks = 16 * window

// ackers delete acknowledged items off the read loops. Devices typically ack
// each delivery as they store it; a read loop waiting for a disk commit per
// ack would cap a device at a few hundred deliveries a second. Instead each
// device's acks accumulate while the previous delete commits, and go to
// the store together. Deleting late is safe: an item whose delete is lost
// is only delivered again, which the protocol allows. (The bbolt store's
// Ack itself returns before its delete is synced; a store whose Ack is a
// network round trip still keeps it off the read loop here.)
type ackers struct {
	r  *Relay
	mu sync.Mutex
	m  map[store.Address]*acker
	wg sync.WaitGroup
}

// acker is one device's pending acks; it exists while there are some.
type acker struct {
	pending []uint64
	done    chan struct{} // closed once everything submitted is committed
}

func newAckers(r *Relay) *ackers {
	return &ackers{r: r, m: map[store.Address]*acker{}}
}

// submit queues seqs for deletion from a's queue.
func (as *ackers) submit(a store.Address, seqs []uint64) {
	as.mu.Lock()
	k := as.m[a]
	if k != nil && len(k.pending) > maxPendingAcks {
		as.mu.Unlock()
		as.wait(a)
		as.mu.Lock()
		k = as.m[a]
	}
	if k == nil {
		k = &acker{done: make(chan struct{})}
		as.m[a] = k
		as.wg.Add(1)
		go as.run(a, k)
	}
	k.pending = append(k.pending, seqs...)
	as.mu.Unlock()
}

func (as *ackers) run(a store.Address, k *acker) {
	defer as.wg.Done()
	for {
		as.mu.Lock()
		seqs := k.pending
		k.pending = nil
		if len(seqs) == 0 {
			delete(as.m, a)
			close(k.done)
			as.mu.Unlock()
			return
		}
		as.mu.Unlock()
		n, err := as.r.st.Ack(a, seqs)
		if err != nil {
			// A removed device's queue is gone already; anything else
			// leaves the items to be delivered again.
			as.r.log.Debug("deleting acked items", "user", a.User, "device", a.Device, "seqs", len(seqs), "err", err)
		}
		as.r.m.acks.Add(float64(n))
	}
}

// wait returns once the acks submitted for a so far are committed (or after
// closeWait, if a device keeps acking meanwhile).
func (as *ackers) wait(a store.Address) {
	as.mu.Lock()
	k := as.m[a]
	as.mu.Unlock()
	if k == nil {
		return
	}
	select {
	case <-k.done:
	case <-time.After(closeWait):
	}
}
