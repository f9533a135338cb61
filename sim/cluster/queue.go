package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"google.golang.org/protobuf/proto"

	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

func sentKey(sender store.Address, messageID string) string {
	return devKey(sender) + "." + enc(messageID)
}

// Enqueue checks the batch against the device lists, then publishes each
// item to its device's subject and waits until JetStream has stored every
// one (on a quorum of its replicas) before it returns: the sender is acked only
// then. A batch is not one transaction here: a node dying half-way leaves
// some items stored, but the sender had no ack and sends again, and the
// per-item message ids make JetStream store each item once.
func (n *Node) Enqueue(b store.Batch) (store.Result, error) {
	ctx, cancel := n.ctx()
	defer cancel()
	res, err := n.enqueue(ctx, b)
	if err != nil {
		return store.Result{}, fmt.Errorf("cluster: enqueue from %s: %w", b.Sender, err)
	}
	return res, nil
}

func (n *Node) enqueue(ctx context.Context, b store.Batch) (store.Result, error) {
	if b.MessageID != "" {
		if ms, ok, err := n.sent(ctx, b.Sender, b.MessageID); err != nil {
			return store.Result{}, err
		} else if ok {
			return store.Result{Dup: true, UnixMs: ms}, nil
		}
	}
	// The lists the sender expects are read from the bucket: a cache that
	// lags a companion linked on another node would match a stale list and
	// let the send miss the new device. The items' devices may come from
	// the cache; one that does not hold is read again before the send is
	// refused.
	accounts, fresh := map[string]account{}, map[string]bool{}
	holds := func(user string, ok func(account) bool) (bool, error) {
		a, seen := accounts[user]
		if !seen {
			var err error
			if a, err = n.cachedAccount(ctx, user); err != nil && !errors.Is(err, store.ErrNotFound) {
				return false, err
			}
			accounts[user] = a
		}
		if ok(a) || fresh[user] {
			return ok(a), nil
		}
		a, _, err := n.account(ctx, user)
		if err != nil && !errors.Is(err, store.ErrNotFound) { // no account: no devices
			return false, err
		}
		accounts[user], fresh[user] = a, true
		return ok(a), nil
	}
	for user, want := range b.Expect {
		a, _, err := n.account(ctx, user)
		if err != nil && !errors.Is(err, store.ErrNotFound) { // no account: no devices
			return store.Result{}, err
		}
		accounts[user], fresh[user] = a, true
		if !slices.Equal(a.listed(), want) {
			return store.Result{}, fmt.Errorf("%s: %w", user, store.ErrStale)
		}
	}
	msgs, batchID := make([]*nats.Msg, len(b.Items)), nuid.Next()
	for i, it := range b.Items {
		ok, err := holds(it.To.User, func(a account) bool { return slices.Contains(a.Devices, it.To.Device) })
		if err != nil {
			return store.Result{}, err
		}
		if !ok {
			return store.Result{}, fmt.Errorf("%s: %w", it.To, store.ErrNotFound)
		}
		d := it.Delivery
		if d.GetSeq() != 0 {
			d = proto.Clone(d).(*pb.Delivery)
			d.Seq = 0
		}
		body, err := pb.Marshal(d)
		if err != nil {
			return store.Result{}, err
		}
		// Every item has a message id, so that publishing it again after
		// a lost ack stores it once: the sender's message id when there is
		// one (a resend of the whole Send is then deduplicated too), else
		// one for this call.
		id := sentKey(b.Sender, b.MessageID) + ">" + devKey(it.To)
		if b.MessageID == "" {
			id = batchID + ">" + devKey(it.To)
		}
		msgs[i] = &nats.Msg{Subject: queueSubject(it.To), Data: body, Header: nats.Header{jetstream.MsgIDHeader: []string{id}}}
	}
	var seqs []uint64
	var err error
	if n.cfg.MaxQueuedBytes > 0 {
		to := make([]store.Address, len(b.Items))
		for i, it := range b.Items {
			to[i] = it.To
		}
		seqs, err = n.publishCapped(ctx, to, msgs)
	} else {
		seqs, err = n.publishAll(ctx, msgs)
	}
	if err != nil {
		return store.Result{}, err
	}
	if b.MessageID != "" {
		if err := put(ctx, n.kv.sent, sentKey(b.Sender, b.MessageID), strconv.AppendInt(nil, b.UnixMs, 10)); err != nil {
			return store.Result{}, err
		}
	}
	for i, it := range b.Items {
		it.Delivery.Seq = seqs[i]
	}
	return store.Result{UnixMs: b.UnixMs, Seqs: seqs}, nil
}

// publishAll publishes msgs at once and returns their stream sequences
// once JetStream stored each; one whose ack does not come is published
// again (its message id makes that harmless) until ctx ends.
func (n *Node) publishAll(ctx context.Context, msgs []*nats.Msg) ([]uint64, error) {
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		futures[i], _ = n.js.PublishMsgAsync(m) // on error, nil: published again below
	}
	seqs := make([]uint64, len(msgs))
	for i, f := range futures {
		if f != nil {
			select {
			case ack := <-f.Ok():
				seqs[i] = ack.Sequence
				continue
			case <-f.Err():
			case <-time.After(attemptTimeout):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		again := &nats.Msg{Subject: msgs[i].Subject, Data: msgs[i].Data, Header: msgs[i].Header}
		err := retry(ctx, func(ctx context.Context) error {
			ack, err := n.js.PublishMsg(ctx, again)
			if err == nil {
				seqs[i] = ack.Sequence
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return seqs, nil
}

func (n *Node) sent(ctx context.Context, sender store.Address, messageID string) (int64, bool, error) {
	e, err := get(ctx, n.kv.sent, sentKey(sender, messageID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	ms, err := strconv.ParseInt(string(e.Value()), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("corrupt sent record: %w", err)
	}
	return ms, true, nil
}

func (n *Node) Sent(sender store.Address, messageID string) (int64, bool, error) {
	ctx, cancel := n.ctx()
	defer cancel()
	ms, ok, err := n.sent(ctx, sender, messageID)
	if err != nil {
		return 0, false, fmt.Errorf("cluster: sent by %s: %w", sender, err)
	}
	return ms, ok, nil
}

// exists fails with store.ErrNotFound when a is not a device: a removed
// device's queue is gone, as in the bbolt store. A device on its
// account's cached list exists without a request.
func (n *Node) exists(ctx context.Context, a store.Address) error {
	if acct, err := n.cachedAccount(ctx, a.User); err == nil && slices.Contains(acct.Devices, a.Device) {
		return nil // the cache may trail a removal, whose queue is purged
	}
	_, err := get(ctx, n.kv.devices, devKey(a))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return store.ErrNotFound
	}
	return err
}

// Read gets the device's items one by one, each the first of its subject
// at or after a sequence: the stream is shared, the subject is the queue.
// It asks for the subject's last item first: when nothing waits, that one
// request says so, and when one item waits, it is that item.
func (n *Node) Read(a store.Address, after uint64, max int) ([]*pb.Delivery, error) {
	ctx, cancel := n.ctx()
	defer cancel()
	if err := n.exists(ctx, a); err != nil {
		return nil, fmt.Errorf("cluster: read queue of %s: %w", a, err)
	}
	subject := queueSubject(a)
	var last *jetstream.RawStreamMsg
	err := retry(ctx, func(ctx context.Context) (err error) {
		last, err = n.q.GetLastMsgForSubject(ctx, subject)
		return err
	})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: read queue of %s: %w", a, err)
	}
	var out []*pb.Delivery
	for seq := after + 1; seq <= last.Sequence && len(out) < max; {
		m := last
		if seq < last.Sequence {
			if m, err = n.getMsg(ctx, seq, jetstream.WithGetMsgSubject(subject)); errors.Is(err, jetstream.ErrMsgNotFound) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("cluster: read queue of %s: %w", a, err)
			}
		}
		d := new(pb.Delivery)
		if err := pb.Unmarshal(m.Data, d); err != nil {
			return nil, fmt.Errorf("cluster: read queue of %s: corrupt item %d: %w", a, m.Sequence, err)
		}
		d.Seq = m.Sequence
		out = append(out, d)
		n.read.remember(m.Sequence, subject)
		seq = m.Sequence + 1
	}
	return out, nil
}

// Ack deletes only the items of a's own subject: a seq is a stream
// sequence, and a device must not delete another's items by naming theirs.
// An item this node read is known to be a's; any other is looked at first.
// A removed device has no items left, so its acks delete nothing.
func (n *Node) Ack(a store.Address, seqs []uint64) (int, error) {
	ctx, cancel := n.ctx()
	defer cancel()
	subject, deleted := queueSubject(a), 0
	for _, seq := range seqs {
		if !n.read.owns(seq, subject) {
			m, err := n.getMsg(ctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				return deleted, fmt.Errorf("cluster: ack %s: %w", a, err)
			}
			if m.Subject != subject {
				continue
			}
		}
		err := retry(ctx, func(ctx context.Context) error { return n.q.DeleteMsg(ctx, seq) })
		n.read.forget(seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
			continue // deleted meanwhile by another node
		}
		if err != nil {
			return deleted, fmt.Errorf("cluster: ack %s: %w", a, err)
		}
		deleted++
	}
	return deleted, nil
}

func (n *Node) Len(a store.Address) (int, error) {
	ctx, cancel := n.ctx()
	defer cancel()
	if err := n.exists(ctx, a); err != nil {
		return 0, fmt.Errorf("cluster: queue length of %s: %w", a, err)
	}
	subject := queueSubject(a)
	var info *jetstream.StreamInfo
	err := retry(ctx, func(ctx context.Context) (err error) {
		info, err = n.q.Info(ctx, jetstream.WithSubjectFilter(subject))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("cluster: queue length of %s: %w", a, err)
	}
	return int(info.State.Subjects[subject]), nil
}

// readItems remembers the subject of each item read lately, so that its ack
// needs no look-up. It forgets everything past maxReadItems: the items of
// devices that never ack.
type readItems struct {
	mu    sync.Mutex
	items map[uint64]string // seq -> subject
}

const maxReadItems = 100_000

func (r *readItems) remember(seq uint64, subject string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.items == nil || len(r.items) >= maxReadItems {
		r.items = map[uint64]string{}
	}
	r.items[seq] = subject
}

// owns reports whether seq was read as an item of subject.
func (r *readItems) owns(seq uint64, subject string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.items[seq]
	return ok && s == subject
}

func (r *readItems) forget(seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.items, seq)
}

// getMsg reads one item of the stream, trying again while NATS fails over.
func (n *Node) getMsg(ctx context.Context, seq uint64, opts ...jetstream.GetMsgOpt) (m *jetstream.RawStreamMsg, err error) {
	err = retry(ctx, func(ctx context.Context) error {
		m, err = n.q.GetMsg(ctx, seq, opts...)
		return err
	})
	return m, err
}

// Depth is the items waiting in every queue of the cluster; 0 when NATS
// does not answer (it feeds a gauge).
func (n *Node) Depth() int64 {
	st, err := n.queueState()
	if err != nil {
		return 0
	}
	return int64(st.Msgs)
}

// QueuedBytes is what JetStream counts for the queued items (their
// subjects and headers included); 0 when NATS does not answer.
func (n *Node) QueuedBytes() int64 {
	st, err := n.queueState()
	if err != nil {
		return 0
	}
	return int64(st.Bytes)
}

func (n *Node) queueState() (jetstream.StreamState, error) {
	ctx, cancel := n.ctx()
	defer cancel()
	info, err := n.q.Info(ctx)
	if err != nil {
		return jetstream.StreamState{}, err
	}
	return info.State, nil
}
