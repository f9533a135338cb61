package store

import (
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// ackLog holds acknowledged items whose delete is not committed yet. Ack
// returns once an item is in it: the delete then rides along with the next
// durable write (or commits alone a moment later), so a delivery costs one
// disk sync, not two. A crash before the commit brings the items back, to
// be delivered again, which the protocol allows (devices ignore a seq they
// processed); it never loses one. Read and Len leave the logged items out.
type ackLog struct {
	mu sync.Mutex
	// pending are acked items by device key: seq -> encoded size.
	pending map[string]map[uint64]int64
	// inTx are the items the committer is deleting now; only it changes
	// the map, and only under mu.
	inTx map[string]map[uint64]int64
}

func newAckLog() *ackLog {
	return &ackLog{pending: map[string]map[uint64]int64{}}
}

// has reports whether the item is acked and not yet deleted. Callers hold mu.
func (l *ackLog) has(dk string, seq uint64) bool {
	if _, ok := l.pending[dk][seq]; ok {
		return true
	}
	_, ok := l.inTx[dk][seq]
	return ok
}

// snapshot returns the acked seqs of one device (nil when none).
func (l *ackLog) snapshot(dk string) map[uint64]struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending[dk]) == 0 && len(l.inTx[dk]) == 0 {
		return nil
	}
	out := make(map[uint64]struct{}, len(l.pending[dk])+len(l.inTx[dk]))
	for seq := range l.pending[dk] {
		out[seq] = struct{}{}
	}
	for seq := range l.inTx[dk] {
		out[seq] = struct{}{}
	}
	return out
}

// forget drops a removed device's entries and returns how many items and
// bytes they held (its queue is gone with them).
func (l *ackLog) forget(dk string) (items, bytes int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range []map[uint64]int64{l.pending[dk], l.inTx[dk]} {
		for _, n := range m {
			items, bytes = items+1, bytes+n
		}
	}
	delete(l.pending, dk)
	return items, bytes
}

func (l *ackLog) begin() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inTx == nil {
		l.inTx, l.pending = l.pending, map[string]map[uint64]int64{}
	} else { // the last commit failed: take the new ones too
		for dk, m := range l.pending {
			if l.inTx[dk] == nil {
				l.inTx[dk] = m
				continue
			}
			for seq, n := range m {
				l.inTx[dk][seq] = n
			}
		}
		clear(l.pending)
	}
	if len(l.inTx) == 0 {
		l.inTx = nil
		return false
	}
	return true
}

func (l *ackLog) apply(tx *bolt.Tx) error {
	for dk, seqs := range l.inTx {
		k := []byte(dk)
		q := tx.Bucket(bQueues).Bucket(k)
		if q == nil {
			continue // the device was removed
		}
		var freed int64
		for seq := range seqs {
			sk := seqKey(seq)
			v := q.Get(sk)
			if v == nil {
				continue
			}
			freed += int64(len(v))
			if err := q.Delete(sk); err != nil {
				return err
			}
		}
		if err := setQueuedBytes(tx, k, queuedBytes(tx, k)-freed); err != nil {
			return err
		}
	}
	return nil
}

func (l *ackLog) end(committed bool) {
	if !committed {
		return // inTx stays, for the next begin
	}
	l.mu.Lock()
	l.inTx = nil
	l.mu.Unlock()
}

// Ack takes the items with these seqs out of the device's queue (missing
// and already acked ones are skipped) and returns how many it took. The
// delete is committed lazily: see ackLog.
func (s *Bolt) Ack(a Address, seqs []uint64) (n int, err error) {
	dk := string(devKey(a))
	var bytes int64
	l := s.acks
	l.mu.Lock()
	// Under mu, so that the same item acked twice at once is counted once.
	err = s.db.View(func(tx *bolt.Tx) error {
		q := tx.Bucket(bQueues).Bucket([]byte(dk))
		if q == nil {
			return ErrNotFound
		}
		for _, seq := range seqs {
			if l.has(dk, seq) {
				continue
			}
			v := q.Get(seqKey(seq))
			if v == nil {
				continue
			}
			if l.pending[dk] == nil {
				l.pending[dk] = map[uint64]int64{}
			}
			l.pending[dk][seq] = int64(len(v))
			n, bytes = n+1, bytes+int64(len(v))
		}
		return nil
	})
	l.mu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("store: ack %s: %w", a, err)
	}
	if n > 0 {
		s.depth.Add(int64(-n))
		s.queued.Add(-bytes)
		s.group.kickLazy()
	}
	return n, nil
}
