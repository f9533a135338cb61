package store

import (
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/linksim/linksim/sim/wire/pb"
)

// deliverySeqField is Delivery.seq's field number: Enqueue prepends the seq
// to a Delivery encoded without it, so encoding happens outside the write
// transaction that everyone waits for.
const deliverySeqField = 1

func (s *Bolt) Enqueue(b Batch) (Result, error) {
	if len(b.MessageID) > maxMessageID {
		return Result{}, fmt.Errorf("store: enqueue: message id too long")
	}
	bodies := make([][]byte, len(b.Items))
	for i, it := range b.Items {
		d := it.Delivery
		if d.GetSeq() != 0 {
			d = proto.Clone(d).(*pb.Delivery)
			d.Seq = 0
		}
		body, err := proto.Marshal(d)
		if err != nil {
			return Result{}, fmt.Errorf("store: enqueue: %w", err)
		}
		bodies[i] = body
	}
	var res Result
	var added int64
	// The committer may run this function more than once (when another
	// function in its group fails), so it only writes to res and added.
	err := s.group.write(func(tx *bolt.Tx) error {
		res, added = Result{}, 0
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
		seqs := make([]uint64, len(b.Items))
		for i, it := range b.Items {
			q := tx.Bucket(bQueues).Bucket(devKey(it.To))
			if q == nil {
				return fmt.Errorf("%s: %w", it.To, ErrNotFound)
			}
			seq, err := q.NextSequence()
			if err != nil {
				return err
			}
			v := protowire.AppendTag(make([]byte, 0, len(bodies[i])+11), deliverySeqField, protowire.VarintType)
			v = protowire.AppendVarint(v, seq)
			v = append(v, bodies[i]...)
			k := devKey(it.To)
			n := queuedBytes(tx, k) + int64(len(v))
			if max := s.opt.MaxQueuedBytes; max > 0 && n > max {
				return &QueueFullError{To: it.To}
			}
			if err := q.Put(seqKey(seq), v); err != nil {
				return err
			}
			if err := setQueuedBytes(tx, k, n); err != nil {
				return err
			}
			added += int64(len(v))
			seqs[i] = seq
		}
		if b.MessageID != "" {
			if err := s.remember(tx, sender, b.MessageID, b.UnixMs); err != nil {
				return err
			}
		}
		res = Result{UnixMs: b.UnixMs, Seqs: seqs}
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("store: enqueue from %s: %w", b.Sender, err)
	}
	if !res.Dup {
		s.depth.Add(int64(len(b.Items)))
		s.queued.Add(added)
		for i, it := range b.Items {
			it.Delivery.Seq = res.Seqs[i]
		}
	}
	return res, nil
}

// queuedBytes reads the bytes in the queue of device key k.
func queuedBytes(tx *bolt.Tx, k []byte) int64 {
	if v := tx.Bucket(bQBytes).Get(k); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

func setQueuedBytes(tx *bolt.Tx, k []byte, n int64) error {
	if n <= 0 {
		return tx.Bucket(bQBytes).Delete(k)
	}
	return tx.Bucket(bQBytes).Put(k, binary.BigEndian.AppendUint64(nil, uint64(n)))
}

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}

func (s *Bolt) Read(a Address, after uint64, max int) (out []*pb.Delivery, err error) {
	dk := devKey(a)
	acked := s.acks.snapshot(string(dk))
	err = s.db.View(func(tx *bolt.Tx) error {
		q := tx.Bucket(bQueues).Bucket(dk)
		if q == nil {
			return ErrNotFound
		}
		c := q.Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			if _, ok := acked[binary.BigEndian.Uint64(k)]; ok {
				continue
			}
			d := new(pb.Delivery)
			if err := proto.Unmarshal(v, d); err != nil {
				return fmt.Errorf("corrupt item %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: read queue of %s: %w", a, err)
	}
	return out, nil
}

func (s *Bolt) Len(a Address) (n int, err error) {
	dk := devKey(a)
	acked := s.acks.snapshot(string(dk))
	err = s.db.View(func(tx *bolt.Tx) error {
		q := tx.Bucket(bQueues).Bucket(dk)
		if q == nil {
			return ErrNotFound
		}
		n = countKeys(q)
		for seq := range acked {
			if q.Get(seqKey(seq)) != nil {
				n--
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: queue length of %s: %w", a, err)
	}
	return n, nil
}

func (s *Bolt) Depth() int64 { return s.depth.Load() }

func (s *Bolt) QueuedBytes() int64 { return s.queued.Load() }
