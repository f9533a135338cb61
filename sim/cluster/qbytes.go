package cluster

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/linksim/linksim/sim/store"
)

// When Config.MaxQueuedBytes caps a device's queue, its queued bytes are
// read off the queue itself, not counted in a bucket: JetStream limits a
// subject's message count but not its bytes, and two counters (bytes
// enqueued, bytes acked) cost a replicated write per item and per ack.
//
// Every item carries in enqueuedHeader the bytes enqueued on its subject up
// to and including it, counted from when the queue was last empty, and is
// published with the subject's last sequence it continues from
// (Nats-Expected-Last-Subject-Sequence, 0 for an empty queue): JetStream's
// leader refuses it, before replicating anything, when another item came
// or the last one went meanwhile. So the counts of a queue's items form an
// unbroken chain, and the queue holds enqueued(last) - before, where before
// is enqueued(first) less the first item's size. An item acked out of
// order, ahead of older ones, still counts until those are acked (no
// device of the protocol acks so). Nothing is left to drift when a node
// dies between a count and a publish: there is no separate count.
const enqueuedHeader = "Linksim-Enqueued"

// tail is what a node knows of a queue: its last item (0: none) and that
// item's enqueued count, and the bytes enqueued before its first item.
// before only grows while the queue is not emptied, so an old value makes
// the queue look fuller than it is; 0 is always safe.
type tail struct {
	last     uint64
	enqueued int64
	before   int64
}

func (t tail) queued() int64 { return t.enqueued - t.before }

// lastAppend is a node's last append to a queue: the tail it left, and
// whether the queue held items before it (its device was behind).
type lastAppend struct {
	t      tail
	behind bool
}

// queueEnd is one queue a batch appends to.
type queueEnd struct {
	to      store.Address
	subject string
	items   []int // the batch's items for it, in order
	left    int64 // bytes of those not stored yet
	t       tail  // the tail the next item continues
	seen    tail  // the tail the node's last append left
}

// publishCapped publishes msgs, msgs[i] to the queue of to[i], and returns
// their stream sequences once JetStream stored each, as publishAll does,
// refusing with a *store.QueueFullError a batch that would take a queue
// past the cap. The node guesses each queue's tail from its last append
// there (Node.tails): the tail that append left if the device was behind
// then, else an empty queue (the device keeps up). A wrong guess costs a
// refused publish, which says the queue's last sequence: when it is 0 or
// the node's last append, the right tail is known without a read.
//
// Every queue is checked before anything is published. A queue found
// fuller only while publishing (another node appended to it meanwhile)
// refuses the batch after the other queues' items were stored, like a node
// dying halfway: a resend stores the rest, each item once.
func (n *Node) publishCapped(ctx context.Context, to []store.Address, msgs []*nats.Msg) ([]uint64, error) {
	ends := map[string]*queueEnd{}
	var order []*queueEnd
	for i, m := range msgs {
		q := ends[m.Subject]
		if q == nil {
			q = &queueEnd{to: to[i], subject: m.Subject}
			ends[m.Subject] = q
			order = append(order, q)
		}
		q.items = append(q.items, i)
		q.left += int64(len(m.Data))
	}
	defer n.lockQueues(order)()
	for _, q := range order {
		// Read under the lock: the last append is then this node's last.
		if last, ok := n.tails.get(q.subject); ok {
			q.seen = last.t
			if last.behind {
				q.t = last.t
			}
		}
		if err := n.fits(ctx, q); err != nil {
			return nil, err
		}
	}
	seqs := make([]uint64, len(msgs))
	type pending struct {
		q *queueEnd
		i int
		m *nats.Msg
		f jetstream.PubAckFuture
	}
	// The k-th item of every queue at once: each continues the count of
	// the item before it in its queue.
	for k := 0; ; k++ {
		var round []pending
		for _, q := range order {
			if k < len(q.items) {
				p := pending{q: q, i: q.items[k]}
				p.m = q.next(msgs[p.i])
				p.f, _ = n.js.PublishMsgAsync(p.m) // on error, nil: published again below
				round = append(round, p)
			}
		}
		if len(round) == 0 {
			return seqs, nil
		}
		for _, p := range round {
			ack, err := awaitAck(ctx, p.f)
			for err != nil {
				switch {
				case ctx.Err() != nil:
					return nil, ctx.Err()
				case wrongLast(err):
					if err := n.refresh(ctx, p.q, err); err != nil {
						return nil, err
					}
					p.m = p.q.next(msgs[p.i])
				case !transient(err):
					return nil, err
				}
				// After no answer, the same message again: one that landed
				// is found by its message id.
				again := &nats.Msg{Subject: p.m.Subject, Data: p.m.Data, Header: p.m.Header}
				err = retry(ctx, func(ctx context.Context) (err error) {
					ack, err = n.js.PublishMsg(ctx, again)
					return err
				})
			}
			seqs[p.i] = ack.Sequence
			n.stored(p.q, ack, len(msgs[p.i].Data))
		}
	}
}

// awaitAck waits for an async publish's ack; a publish that failed to go
// out (nil) or got no answer in time is a transient error, so that it goes
// again.
func awaitAck(ctx context.Context, f jetstream.PubAckFuture) (*jetstream.PubAck, error) {
	if f == nil {
		return nil, nats.ErrTimeout
	}
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	case <-time.After(attemptTimeout):
		return nil, nats.ErrTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// next is m as the queue's next item: counted after the queue's last item,
// and published only if that is still the last.
func (q *queueEnd) next(m *nats.Msg) *nats.Msg {
	h := nats.Header{
		jetstream.MsgIDHeader:               m.Header[jetstream.MsgIDHeader],
		jetstream.ExpectedLastSubjSeqHeader: []string{strconv.FormatUint(q.t.last, 10)},
		enqueuedHeader:                      []string{strconv.FormatInt(q.t.enqueued+int64(len(m.Data)), 10)},
	}
	return &nats.Msg{Subject: m.Subject, Data: m.Data, Header: h}
}

// stored moves the queue's tail past an item JetStream acked, and
// remembers it as the node's last append there.
func (n *Node) stored(q *queueEnd, ack *jetstream.PubAck, size int) {
	q.left -= int64(size)
	if ack.Duplicate { // stored before, by a publish whose ack was lost: where is unknown
		q.t, q.seen = tail{}, tail{}
		n.tails.forget(q.subject)
		return
	}
	behind := q.t.last != 0
	q.t = tail{last: ack.Sequence, enqueued: q.t.enqueued + int64(size), before: q.t.before}
	q.seen = q.t
	n.tails.put(q.subject, lastAppend{t: q.t, behind: behind})
}

// wrongLast reports whether a publish was refused because its queue's last
// item was not the one it expected.
func wrongLast(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// refresh learns the queue's tail after a publish found it was not what
// the node thought, and checks the items left against the cap again. The
// refusal says the queue's last sequence (unless another publish to it was
// in flight): 0 is an empty queue, and the node's own last append is the
// tail it left; any other is read.
func (n *Node) refresh(ctx context.Context, q *queueEnd, refusal error) error {
	switch last, ok := refusedLast(refusal); {
	case ok && last == 0:
		q.t = tail{}
	case ok && last == q.seen.last:
		q.t = q.seen
	default:
		t, err := n.readTail(ctx, q.subject, false)
		if err != nil {
			return err
		}
		q.t = t
	}
	return n.fits(ctx, q)
}

// refusedLast is the queue's last sequence that a refused publish names.
func refusedLast(refusal error) (uint64, bool) {
	var apiErr *jetstream.APIError
	if !errors.As(refusal, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
		return 0, false
	}
	_, seq, ok := strings.Cut(apiErr.Description, ": ")
	if !ok {
		return 0, false
	}
	last, err := strconv.ParseUint(seq, 10, 64)
	return last, err == nil
}

// fits checks that the queue takes the bytes left; when the tail the node
// has says no, it reads the queue's first and last items and decides on
// them.
func (n *Node) fits(ctx context.Context, q *queueEnd) error {
	if q.t.queued()+q.left <= n.cfg.MaxQueuedBytes {
		return nil
	}
	t, err := n.readTail(ctx, q.subject, true)
	if err != nil {
		return err
	}
	q.t = t
	if q.t.queued()+q.left > n.cfg.MaxQueuedBytes {
		return &store.QueueFullError{To: q.to}
	}
	return nil
}

// readTail reads the queue's last item and, with first, its first one.
func (n *Node) readTail(ctx context.Context, subject string, first bool) (tail, error) {
	for {
		var last *jetstream.RawStreamMsg
		err := retry(ctx, func(ctx context.Context) (err error) {
			last, err = n.q.GetLastMsgForSubject(ctx, subject)
			return err
		})
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return tail{}, nil
		}
		if err != nil {
			return tail{}, err
		}
		t := tail{last: last.Sequence, enqueued: enqueuedOf(last)}
		if !first {
			return t, nil
		}
		f, err := n.getMsg(ctx, 1, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) || err == nil && f.Sequence > last.Sequence {
			continue // drained (and filled again) between the reads
		}
		if err != nil {
			return tail{}, err
		}
		t.before = max(0, enqueuedOf(f)-int64(len(f.Data)))
		return t, nil
	}
}

// enqueuedOf is an item's enqueued count; 0 for an item published without
// one (by a node without the cap: the nodes of a cluster must agree on it).
func enqueuedOf(m *jetstream.RawStreamMsg) int64 {
	v, _ := strconv.ParseInt(m.Header.Get(enqueuedHeader), 10, 64)
	return v
}

// lockQueues serializes the node's appends to each queue, as update does
// for a key: concurrent sends to one device on one node would otherwise
// refuse each other's publishes. It locks in one order, so batches sharing
// queues do not deadlock, and returns the unlock.
func (n *Node) lockQueues(qs []*queueEnd) func() {
	var idx []int
	for _, q := range qs {
		idx = append(idx, keyLockIndex("queue", q.subject))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		n.keyLocks[i].Lock()
	}
	return func() {
		for _, i := range idx {
			n.keyLocks[i].Unlock()
		}
	}
}
