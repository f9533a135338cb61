package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Message ids a sender enqueued (Batch.MessageID), for the idempotence of
// sends, in one flat bucket where one sender's ids sort together:
//
//	sentids   devKey + message id -> 8-byte unix ms of the ack and 8-byte
//	          seq (the sender's order of sends)
//	sentmeta  devKey -> the oldest 8-byte unix ms and seq in sentids, to
//	          know when to forget old ids (the dedup window), and the
//	          sender's last 8-byte seq
//
// They were a nested bucket per sender ("sent"), whose root page and header
// a send rewrote beside the leaf it wrote to: with 64 senders in a commit,
// twice the pages synced. A store from before is moved over on open.
var (
	bSentIDs = []byte("sentids")
	bSentOld = []byte("sent")      // before the flat bucket
	bSentOrd = []byte("sentorder") // before sent records had seqs
)

// maxMessageID bounds Batch.MessageID, leaving room in a key for the
// sender's devKey.
const maxMessageID = bolt.MaxKeySize / 2

func sentKey(sender []byte, messageID string) []byte {
	return append(append(make([]byte, 0, len(sender)+len(messageID)), sender...), messageID...)
}

// sentAt looks a message id of a sender up: when it was acked, and whether
// it is remembered. ErrNotFound when the sender is no device.
func sentAt(tx *bolt.Tx, sender []byte, messageID string) (unixMs int64, ok bool, err error) {
	if v := tx.Bucket(bSentIDs).Get(sentKey(sender, messageID)); len(v) >= 8 {
		unixMs, _ = parseSentRecord(v)
		return unixMs, true, nil
	}
	if tx.Bucket(bDevices).Get(sender) == nil {
		return 0, false, ErrNotFound
	}
	return 0, false, nil
}

func (s *Bolt) Sent(sender Address, messageID string) (unixMs int64, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) (err error) {
		unixMs, ok, err = sentAt(tx, devKey(sender), messageID)
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("store: sent by %s: %w", sender, err)
	}
	return unixMs, ok, nil
}

// remember records that sender enqueued messageID at unixMs. Past the
// dedup window (the sender's last DedupWindow ids) or its age, it forgets
// the oldest ids in bulk, down to 15/16 of the window and of the age, so
// that a send writes one record and the deletes come in one commit every
// window/16 sends. The sender's sent-meta record says when to: the oldest
// seq and time kept.
func (s *Bolt) remember(tx *bolt.Tx, sender []byte, messageID string, unixMs int64) error {
	meta := tx.Bucket(bSentMeta)
	oldestMs, oldestSeq, last, known := parseSentMeta(meta.Get(sender))
	seq := last + 1
	if !known {
		oldestMs, oldestSeq = unixMs, seq
	}
	if err := tx.Bucket(bSentIDs).Put(sentKey(sender, messageID), sentRecord(unixMs, seq)); err != nil {
		return err
	}
	window, age := s.opt.DedupWindow, s.opt.DedupAge.Milliseconds()
	past := func(ms int64, rseq uint64, window int, oldest int64) bool {
		return window > 0 && seq-rseq+1 > uint64(window) || age > 0 && ms < oldest
	}
	if past(oldestMs, oldestSeq, window, unixMs-age) {
		var err error
		if oldestMs, oldestSeq, err = forgetSent(tx, sender, func(ms int64, rseq uint64) bool {
			return past(ms, rseq, window-window/16, unixMs-age+age/16)
		}); err != nil {
			return err
		}
	}
	return meta.Put(sender, sentMeta(oldestMs, oldestSeq, seq))
}

// forgetSent deletes the sender's ids that old says are too old and
// returns the oldest time and seq kept.
func forgetSent(tx *bolt.Tx, sender []byte, old func(ms int64, seq uint64) bool) (keptMs int64, keptSeq uint64, err error) {
	keptMs, keptSeq = 1<<63-1, 1<<64-1
	var forget [][]byte
	c := tx.Bucket(bSentIDs).Cursor()
	for k, v := c.Seek(sender); k != nil && bytes.HasPrefix(k, sender); k, v = c.Next() {
		ms, rseq := parseSentRecord(v)
		if old(ms, rseq) {
			forget = append(forget, bytes.Clone(k))
		} else {
			keptMs, keptSeq = min(keptMs, ms), min(keptSeq, rseq)
		}
	}
	for _, k := range forget {
		if err := tx.Bucket(bSentIDs).Delete(k); err != nil {
			return 0, 0, err
		}
	}
	return keptMs, keptSeq, nil
}

// sentRecord is a sent record's value: unix ms and seq, 8 bytes each.
func sentRecord(unixMs int64, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(unixMs)), seq)
}

// parseSentRecord reads a sent record; one from before seqs has seq 0.
func parseSentRecord(v []byte) (unixMs int64, seq uint64) {
	if len(v) >= 8 {
		unixMs = int64(binary.BigEndian.Uint64(v))
	}
	if len(v) >= 16 {
		seq = binary.BigEndian.Uint64(v[8:])
	}
	return unixMs, seq
}

func sentMeta(oldestMs int64, oldestSeq, last uint64) []byte {
	return binary.BigEndian.AppendUint64(sentRecord(oldestMs, oldestSeq), last)
}

// parseSentMeta reads a sent-meta record; known is false when there is
// none (the sender never sent with an id).
func parseSentMeta(v []byte) (oldestMs int64, oldestSeq, last uint64, known bool) {
	if len(v) != 24 {
		return 0, 0, 0, false
	}
	oldestMs, oldestSeq = parseSentRecord(v)
	return oldestMs, oldestSeq, binary.BigEndian.Uint64(v[16:]), true
}

// forgetSender deletes a removed device's ids and sent-meta record.
func forgetSender(tx *bolt.Tx, sender []byte) error {
	if _, _, err := forgetSent(tx, sender, func(int64, uint64) bool { return true }); err != nil {
		return err
	}
	return tx.Bucket(bSentMeta).Delete(sender)
}

// moveSent moves the ids of a store from before sentids out of the nested
// per-sender buckets. A sender's old meta record (16 bytes, or none) gets
// its last seq, the nested bucket's sequence; ids without one read as time
// 0 and seq 0, so the first prune takes them.
func moveSent(tx *bolt.Tx) error {
	old := tx.Bucket(bSentOld)
	if old == nil {
		return nil
	}
	ids, meta := tx.Bucket(bSentIDs), tx.Bucket(bSentMeta)
	err := old.ForEachBucket(func(sender []byte) error {
		b := old.Bucket(sender)
		n := 0
		err := b.ForEach(func(id, v []byte) error {
			n++
			return ids.Put(sentKey(sender, string(id)), bytes.Clone(v))
		})
		if err != nil || n == 0 {
			return err
		}
		ms, seq := parseSentRecord(meta.Get(sender))
		return meta.Put(sender, sentMeta(ms, seq, b.Sequence()))
	})
	if err != nil {
		return err
	}
	return tx.DeleteBucket(bSentOld)
}
