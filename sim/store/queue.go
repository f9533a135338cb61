package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/linksim/linksim/sim/wire/pb"
)

// Queue layout. The items of every device's queue are in one bucket, in
// the order they committed:
//
//	qlog  8-byte log key -> uvarint length of the device key, the device
//	      key, then the encoded Delivery, whose first field is its seq
//
// A new item's seq is its log key, from the bucket's own sequence, which
// all devices share: a device's seqs increase and are never reused, which
// is all docs/protocol.md promises. So a commit appends to the end of one
// bucket and dirties a page or two for its whole group of sends. Before, a
// device's queue was a nested bucket ("queues", its byte count in
// "qbytes"), so a commit dirtied a leaf of each per recipient: with 19,000
// devices, most of the pages it wrote (docs/performance.md).
//
// Which items are whose, and how many bytes each device has queued, is in
// memory (queueIndex), rebuilt on open by reading the log: it holds the
// items not yet acked, and the acked ones whose lazy delete did not commit
// before a crash (delivered again, as the protocol allows). Items of a
// device that no longer exists are deleted then too.
//
// A store from before keeps its items and their seqs: they move into the
// log in order (log keys from 1, each value still carrying its old seq),
// and the log's sequence starts above every seq any device had and every
// log key used, so new seqs stay above all a device saw.
var (
	bQLog      = []byte("qlog")
	bQueuesOld = []byte("queues") // before qlog: a bucket per device
	bQBytesOld = []byte("qbytes") // before qlog: bytes per device
)

// deliverySeqField is Delivery.seq's field number: Enqueue prepends the seq
// to a Delivery encoded without it, so encoding happens outside the write
// transaction that everyone waits for, and the seq of an item is read back
// without decoding it.
const deliverySeqField = 1

func (s *Bolt) Enqueue(b Batch) (Result, error) {
	if len(b.MessageID) > maxMessageID {
		return Result{}, fmt.Errorf("store: enqueue: message id too long")
	}
	bodies := make([][]byte, len(b.Items))
	sizes := make([]reservation, len(b.Items))
	for i, it := range b.Items {
		d := it.Delivery
		if d.GetSeq() != 0 {
			d = proto.Clone(d).(*pb.Delivery)
			d.Seq = 0
		}
		body, err := pb.Marshal(d)
		if err != nil {
			return Result{}, fmt.Errorf("store: enqueue: %w", err)
		}
		bodies[i] = body
		// Counted without the seq, not known yet: so the cap is checked
		// before the transaction, exactly.
		sizes[i] = reservation{dk: string(devKey(it.To)), bytes: int64(len(body))}
	}
	// Bytes are reserved before the transaction, so that the cap holds
	// for sends to one device committing in one group; the overflowing
	// item (if any) fails inside it, after the checks that come first.
	full := s.index.reserve(sizes, s.opt.MaxQueuedBytes)
	defer s.index.release(sizes, full)
	var res Result
	// The committer may run this function more than once (when another
	// function in its group fails), so it only writes to res.
	err := s.group.write(func(tx *bolt.Tx) error {
		res = Result{}
		sender := devKey(b.Sender)
		if b.MessageID != "" {
			ms, ok, err := sentAt(tx, sender, b.MessageID)
			if err != nil {
				return fmt.Errorf("sender %s: %w", b.Sender, err)
			}
			if ok {
				res = Result{Dup: true, UnixMs: ms}
				return nil
			}
		}
		for user, want := range b.Expect {
			if !slices.Equal(listedIDs(tx, user), want) {
				return fmt.Errorf("%s: %w", user, ErrStale)
			}
		}
		log := tx.Bucket(bQLog)
		added := make([]queuedItem, len(b.Items))
		for i, it := range b.Items {
			if tx.Bucket(bDevices).Get([]byte(sizes[i].dk)) == nil {
				return fmt.Errorf("%s: %w", it.To, ErrNotFound)
			}
			if i == full {
				return &QueueFullError{To: it.To}
			}
			seq, err := log.NextSequence()
			if err != nil {
				return err
			}
			if err := log.Put(logKey(seq), logItem([]byte(sizes[i].dk), seq, bodies[i])); err != nil {
				return err
			}
			added[i] = queuedItem{seq: seq, key: seq, bytes: sizes[i].bytes}
		}
		if b.MessageID != "" {
			if err := s.remember(tx, sender, b.MessageID, b.UnixMs); err != nil {
				return err
			}
		}
		// In commit order, before any writer hears back: a Read after
		// this Enqueue returns finds its items.
		tx.OnCommit(func() {
			for i, it := range added {
				s.index.add(sizes[i].dk, it)
			}
		})
		res = Result{UnixMs: b.UnixMs, Seqs: seqsOf(added)}
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("store: enqueue from %s: %w", b.Sender, err)
	}
	if !res.Dup {
		for i, it := range b.Items {
			it.Delivery.Seq = res.Seqs[i]
		}
	}
	return res, nil
}

func seqsOf(items []queuedItem) []uint64 {
	seqs := make([]uint64, len(items))
	for i, it := range items {
		seqs[i] = it.seq
	}
	return seqs
}

// logItem is a log value: the device key, then the Delivery encoded
// without its seq (body), with the seq put first.
func logItem(dk []byte, seq uint64, body []byte) []byte {
	v := binary.AppendUvarint(make([]byte, 0, len(dk)+len(body)+16), uint64(len(dk)))
	v = append(v, dk...)
	v = protowire.AppendTag(v, deliverySeqField, protowire.VarintType)
	v = protowire.AppendVarint(v, seq)
	return append(v, body...)
}

func logKey(k uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, k)
}

// parseLogItem splits a log value into the device key, the item's seq and
// the encoded Delivery, seq included; bytes is its size without the seq,
// what the item counts in its queue's bytes.
func parseLogItem(v []byte) (dk []byte, seq uint64, delivery []byte, bytes int64, err error) {
	n, w := binary.Uvarint(v)
	if w <= 0 || uint64(len(v)-w) < n {
		return nil, 0, nil, 0, errors.New("bad device key")
	}
	dk, delivery = v[w:w+int(n)], v[w+int(n):]
	num, typ, tw := protowire.ConsumeTag(delivery)
	if tw < 0 || num != deliverySeqField || typ != protowire.VarintType {
		return nil, 0, nil, 0, errors.New("no seq first")
	}
	seq, sw := protowire.ConsumeVarint(delivery[tw:])
	if sw < 0 {
		return nil, 0, nil, 0, errors.New("bad seq")
	}
	return dk, seq, delivery, int64(len(delivery) - tw - sw), nil
}

func (s *Bolt) Read(a Address, after uint64, max int) (out []*pb.Delivery, err error) {
	dk := string(devKey(a))
	err = s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bDevices).Get([]byte(dk)) == nil {
			return ErrNotFound
		}
		log := tx.Bucket(bQLog)
		// Items acked meanwhile are gone from the index, and may be gone
		// from the file too: take more until max are read or none is left.
		for len(out) < max {
			keys := s.index.after(dk, after, max-len(out))
			if len(keys) == 0 {
				return nil
			}
			for _, it := range keys {
				after = it.seq
				v := log.Get(logKey(it.key))
				if v == nil {
					continue
				}
				_, _, body, _, err := parseLogItem(v)
				d := new(pb.Delivery)
				if err == nil {
					err = pb.Unmarshal(body, d)
				}
				if err != nil {
					return fmt.Errorf("corrupt item %d: %w", it.key, err)
				}
				out = append(out, d)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: read queue of %s: %w", a, err)
	}
	return out, nil
}

func (s *Bolt) Len(a Address) (int, error) {
	dk := devKey(a)
	if n := s.index.len(string(dk)); n > 0 {
		return n, nil
	}
	if err := s.deviceExists(dk); err != nil {
		return 0, fmt.Errorf("store: queue length of %s: %w", a, err)
	}
	return 0, nil
}

// deviceExists returns nil for a device, or ErrNotFound.
func (s *Bolt) deviceExists(dk []byte) error {
	return s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bDevices).Get(dk) == nil {
			return ErrNotFound
		}
		return nil
	})
}

func (s *Bolt) Depth() int64 { return s.index.depth.Load() }

func (s *Bolt) QueuedBytes() int64 { return s.index.queued.Load() }

// loadQueues moves the queues of a store from before qlog into it, then
// reads the log into the index, deleting the items of removed devices.
func loadQueues(tx *bolt.Tx, index *queueIndex) error {
	log, err := tx.CreateBucketIfNotExists(bQLog)
	if err != nil {
		return err
	}
	if err := moveQueues(tx, log); err != nil {
		return err
	}
	var orphans [][]byte
	err = log.ForEach(func(k, v []byte) error {
		dk, seq, _, bytes, err := parseLogItem(v)
		if err != nil {
			return fmt.Errorf("corrupt item %d: %w", binary.BigEndian.Uint64(k), err)
		}
		if tx.Bucket(bDevices).Get(dk) == nil {
			orphans = append(orphans, k)
			return nil
		}
		index.add(string(dk), queuedItem{seq: seq, key: binary.BigEndian.Uint64(k), bytes: bytes})
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range orphans {
		if err := log.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// moveQueues moves the items of the nested per-device buckets into the log,
// device by device, each in seq order, keeping their seqs.
func moveQueues(tx *bolt.Tx, log *bolt.Bucket) error {
	old := tx.Bucket(bQueuesOld)
	if old == nil {
		return nil
	}
	top := log.Sequence()
	err := old.ForEachBucket(func(dk []byte) error {
		q := old.Bucket(dk)
		top = max(top, q.Sequence())
		return q.ForEach(func(k, v []byte) error {
			seq := binary.BigEndian.Uint64(k)
			d := new(pb.Delivery)
			if err := pb.Unmarshal(v, d); err != nil {
				return fmt.Errorf("corrupt item %d of %s: %w", seq, parseDevKey(dk), err)
			}
			d.Seq = 0
			body, err := pb.Marshal(d)
			if err != nil {
				return err
			}
			key, err := log.NextSequence()
			if err != nil {
				return err
			}
			top = max(top, key)
			return log.Put(logKey(key), logItem(dk, seq, body))
		})
	})
	if err == nil {
		err = log.SetSequence(top)
	}
	if err == nil {
		err = tx.DeleteBucket(bQueuesOld)
	}
	if err == nil {
		err = tx.DeleteBucket(bQBytesOld)
		if errors.Is(err, berrors.ErrBucketNotFound) {
			err = nil
		}
	}
	return err
}
