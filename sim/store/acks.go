package store

import (
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// ackLog holds the log keys of items taken out of their queues (acked, or
// of a removed device) whose delete is not committed yet. Ack returns once
// its items are out of the queue index: the delete then rides along with
// the next durable write (or commits alone a moment later), so a delivery
// costs one disk sync, not two. A crash before the commit brings the items
// back, to be delivered again, which the protocol allows (devices ignore a
// seq they processed); it never loses one.
type ackLog struct {
	mu      sync.Mutex
	pending []uint64
	// inTx are the keys the committer is deleting now; only it changes
	// them.
	inTx []uint64
}

// add logs keys to delete.
func (l *ackLog) add(keys []uint64) {
	l.mu.Lock()
	l.pending = append(l.pending, keys...)
	l.mu.Unlock()
}

func (l *ackLog) begin() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	// After a failed commit, inTx still holds its keys: take the new ones too.
	l.inTx, l.pending = append(l.inTx, l.pending...), nil
	return len(l.inTx) > 0
}

func (l *ackLog) apply(tx *bolt.Tx) error {
	log := tx.Bucket(bQLog)
	for _, k := range l.inTx {
		if err := log.Delete(logKey(k)); err != nil {
			return err
		}
	}
	return nil
}

func (l *ackLog) end(committed bool) {
	if committed {
		l.inTx = nil // only the committer reads it
	}
}

// Ack takes the items with these seqs out of the device's queue (missing
// and already acked ones are skipped) and returns how many it took. The
// delete is committed lazily: see ackLog.
func (s *Bolt) Ack(a Address, seqs []uint64) (int, error) {
	dk := devKey(a)
	keys := s.index.take(string(dk), seqs)
	if len(keys) == 0 {
		if err := s.deviceExists(dk); err != nil {
			return 0, fmt.Errorf("store: ack %s: %w", a, err)
		}
		return 0, nil
	}
	s.acks.add(keys)
	s.group.kickLazy()
	return len(keys), nil
}
