package relay

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire"
	"github.com/linksim/linksim/sim/wire/pb"
)

// onSend checks a Send against the device lists, commits every envelope to
// its target's durable queue in one (group-committed) transaction, and only
// then acks (§8).
func (c *conn) onSend(me store.Address, _ uint64, f *pb.Frame) (*pb.Frame, error) {
	req := f.GetSend()
	if err := checkMessageID(req.GetMessageId()); err != nil {
		return nil, err
	}
	envs := req.GetEnvelopes()
	if len(envs) == 0 || len(envs) > maxEnvelopes {
		return nil, badRequest("%d envelopes, want 1 to %d", len(envs), maxEnvelopes)
	}
	if req.GetDirect() && len(envs) != 1 {
		return nil, badRequest("a direct send carries exactly one envelope, not %d", len(envs))
	}
	now := nowMs()
	from := &pb.Address{User: me.User, Device: me.Device}
	items := make([]store.Item, len(envs))
	addressed := map[string][]uint32{}
	size := 0
	for i, e := range envs {
		to := store.Address{User: e.GetTo().GetUser(), Device: e.GetTo().GetDevice()}
		if err := checkUser(to.User); err != nil {
			return nil, err
		}
		if to == me {
			return nil, badRequest("envelope addressed to the sending device")
		}
		if slices.Contains(addressed[to.User], to.Device) {
			return nil, badRequest("two envelopes for %s", to)
		}
		addressed[to.User] = append(addressed[to.User], to.Device)
		if t := e.GetType(); t != pb.CipherType_PREKEY_MESSAGE && t != pb.CipherType_SIGNAL_MESSAGE {
			return nil, badRequest("envelope for %s has cipher type %v", to, t)
		}
		if len(e.GetCiphertext()) == 0 {
			return nil, badRequest("envelope for %s has no ciphertext", to)
		}
		d := &pb.Delivery{ServerUnixMs: now, From: from, Item: &pb.Delivery_Message{Message: &pb.Message{
			MessageId: req.GetMessageId(), Type: e.GetType(), Ciphertext: e.GetCiphertext(),
		}}}
		if err := fitsFrame(d); err != nil {
			return nil, err
		}
		size += len(e.GetCiphertext())
		items[i] = store.Item{To: to, Delivery: d}
	}
	// Attributes formatted only when logged: Logger.With would format
	// them on every send, a few percent of the relay's CPU at full load.
	debug := func(msg string, args ...any) {
		if log := c.logger(); log.Enabled(context.Background(), slog.LevelDebug) {
			log.Debug(msg, append(args, "msg_id", req.GetMessageId(), "envelopes", len(envs), "bytes", size, "direct", req.GetDirect())...)
		}
	}

	batch := store.Batch{Sender: me, UnixMs: now, Items: items}
	if c.isMirror() && (!req.GetDirect() || items[0].To.User != me.User) {
		return nil, fail(pb.ErrorCode_NOT_PRIMARY, "a mirror companion sends only to its own devices, one direct envelope at a time")
	}
	if req.GetDirect() {
		to, err := c.r.st.Device(items[0].To)
		if err != nil {
			return nil, c.r.unknownAddress(items[0].To, err)
		}
		if to.Mirror && to.User != me.User {
			// Only its own phone talks to a mirror companion (§19).
			return nil, fail(pb.ErrorCode_UNKNOWN_DEVICE, "%s is not a device other users reach", items[0].To)
		}
	} else {
		expect, err := c.r.checkLists(me, addressed, req.GetListHashes())
		if err != nil {
			// Idempotence first: a resend after a lost ack is acked
			// again whatever happened to the lists since. (When the
			// lists hold, Enqueue finds a duplicate itself.)
			if ms, ok, serr := c.r.st.Sent(me, req.GetMessageId()); serr != nil {
				return nil, serr
			} else if ok {
				c.r.m.sends.WithLabelValues("duplicate").Inc()
				debug("duplicate send acked again")
				return sendAck(req.GetMessageId(), ms), nil
			}
			c.r.m.sends.WithLabelValues("stale").Inc()
			return nil, err
		}
		batch.MessageID, batch.Expect = req.GetMessageId(), expect
	}

	t0 := time.Now()
	res, err := c.r.st.Enqueue(batch)
	c.r.m.commit.Observe(time.Since(t0).Seconds())
	switch {
	case errors.Is(err, store.ErrStale):
		// A device was linked or removed between the check and the commit.
		c.r.m.sends.WithLabelValues("stale").Inc()
		_, err := c.r.checkLists(me, addressed, nil)
		return nil, err
	case errors.Is(err, store.ErrNotFound):
		c.r.m.sends.WithLabelValues("error").Inc()
		return nil, fail(pb.ErrorCode_UNKNOWN_DEVICE, "a target device was removed")
	case errors.Is(err, store.ErrQueueFull):
		c.r.m.sends.WithLabelValues("queue_full").Inc()
		return nil, c.r.queueFull(err)
	case err != nil:
		c.r.m.sends.WithLabelValues("error").Inc()
		return nil, err
	}
	if res.Dup {
		c.r.m.sends.WithLabelValues("duplicate").Inc()
		return sendAck(req.GetMessageId(), res.UnixMs), nil
	}
	c.r.m.sends.WithLabelValues("ok").Inc()
	for _, it := range items {
		c.r.notify(it.To)
	}
	debug("send committed", "commit_ms", time.Since(t0).Milliseconds())
	return sendAck(req.GetMessageId(), res.UnixMs), nil
}

// queueFull turns the store's ErrQueueFull into QUEUE_FULL naming the
// device whose queue is full.
func (r *Relay) queueFull(err error) error {
	r.m.refusals.WithLabelValues(refuseQueueFull).Inc()
	to := "a target device"
	if qf := (*store.QueueFullError)(nil); errors.As(err, &qf) {
		to = qf.To.String()
	}
	return fail(pb.ErrorCode_QUEUE_FULL, "the queue of %s holds %d bytes at most: retry once the device has read it",
		to, r.cfg.Limits.MaxQueuedBytes)
}

func sendAck(id string, ms int64) *pb.Frame {
	return &pb.Frame{Body: &pb.Frame_SendAck{SendAck: &pb.SendAck{MessageId: id, ServerUnixMs: ms}}}
}

// fitsFrame checks that a delivery encodes within MaxFrame once it has a
// seq and sits in a Frame (at most 16 bytes more), so that what the relay
// accepts it can also deliver.
func fitsFrame(d *pb.Delivery) error {
	if n := pb.Size(d) + 16; n > wire.MaxFrame {
		return badRequest("delivery of %d bytes would exceed the %d-byte frame limit", n, wire.MaxFrame)
	}
	return nil
}

// unknownAddress turns a failed device lookup into UNKNOWN_USER or
// UNKNOWN_DEVICE.
func (r *Relay) unknownAddress(a store.Address, err error) error {
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if _, err := r.st.Account(a.User); errors.Is(err, store.ErrNotFound) {
		return fail(pb.ErrorCode_UNKNOWN_USER, "no account %s", a.User)
	}
	return fail(pb.ErrorCode_UNKNOWN_DEVICE, "%s is not a device", a)
}

// checkLists checks a Send's targets (§8): for the recipient and for the
// sender's own user, the addressed devices are the current list (less the
// sender) and the sender's hash is the current one. It returns the lists
// to expect at commit, or STALE_DEVICE_LIST with the fresh lists.
//
// A store that caches lists (a cluster node) is asked its cache first:
// lists that match there are used; any other outcome is decided on fresh
// reads, so a sender is never told a list it has is stale by a cache that
// trails it.
func (r *Relay) checkLists(me store.Address, addressed map[string][]uint32, hashes map[string]string) (map[string][]uint32, error) {
	if lc, ok := r.st.(store.ListCache); ok {
		if expect, err := r.checkListsIn(lc.CachedListedIDs, me, addressed, hashes); err == nil {
			return expect, nil
		}
	}
	return r.checkListsIn(r.st.ListedIDs, me, addressed, hashes)
}

// checkListsIn is checkLists with the device lists read by listed.
func (r *Relay) checkListsIn(listed func(string) ([]uint32, error), me store.Address, addressed map[string][]uint32, hashes map[string]string) (map[string][]uint32, error) {
	recipient := me.User
	for u := range addressed {
		if u == me.User {
			continue
		}
		if recipient != me.User {
			return nil, badRequest("envelopes name more than one recipient")
		}
		recipient = u
	}
	users := []string{recipient}
	if recipient != me.User {
		users = append(users, me.User)
	}
	expect := map[string][]uint32{}
	stale := &protoErr{code: pb.ErrorCode_STALE_DEVICE_LIST, lists: &pb.DeviceLists{}}
	for _, u := range users {
		l, err := listIDs(listed, u)
		if err != nil {
			return nil, err
		}
		want := slices.DeleteFunc(slices.Clone(l.Devices), func(d uint32) bool { return u == me.User && d == me.Device })
		got := slices.Sorted(slices.Values(addressed[u]))
		if hashes[u] != l.Hash || !slices.Equal(got, want) {
			stale.msg += u + " "
		}
		stale.lists.Lists = append(stale.lists.Lists, l)
		expect[u] = l.Devices
	}
	if stale.msg != "" {
		stale.msg = "device list changed: " + stale.msg
		for _, l := range stale.lists.Lists {
			var err error
			if l.KeyIndexList, err = r.keyIndexList(l.User); err != nil {
				return nil, err
			}
		}
		return nil, stale
	}
	return expect, nil
}

// onSendReceipt queues a receipt to every device of to_user, or for RETRY
// to the one device named (§9).
func (c *conn) onSendReceipt(me store.Address, _ uint64, f *pb.Frame) (*pb.Frame, error) {
	if c.isMirror() {
		// It receives nothing but its phone's views: receipts are the
		// phone's to send (§19).
		return nil, fail(pb.ErrorCode_NOT_PRIMARY, "a mirror companion sends no receipts")
	}
	req := f.GetSendReceipt()
	ids := req.GetMessageIds()
	if len(ids) == 0 || len(ids) > maxReceiptIDs {
		return nil, badRequest("%d message ids, want 1 to %d", len(ids), maxReceiptIDs)
	}
	for _, id := range ids {
		if err := checkMessageID(id); err != nil {
			return nil, err
		}
	}
	if err := checkUser(req.GetToUser()); err != nil {
		return nil, err
	}
	// A DELIVERED or READ receipt goes to the devices to_user has when it
	// is queued: a device removed between the read of the list and the
	// write is no target any more, so the list is read again.
	var targets []store.Address
	for tries := 1; ; tries++ {
		var err error
		if targets, err = c.receiptTargets(me, req); err != nil {
			return nil, err
		}
		err = c.queueReceipt(me, req, targets)
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if req.GetType() == pb.ReceiptType_RETRY || tries == receiptTries {
			return nil, fail(pb.ErrorCode_UNKNOWN_DEVICE, "a target device was removed")
		}
	}
	for _, a := range targets {
		c.r.notify(a)
	}
	c.logger().Debug("receipt queued", "type", req.GetType().String(), "to_user", req.GetToUser(), "ids", len(ids), "targets", len(targets))
	return okFrame(), nil
}

// receiptTries bounds the reads of to_user's devices for one receipt: each
// read after the first follows a removal that committed meanwhile.
const receiptTries = 3

// receiptTargets are the devices a receipt goes to: every device of
// to_user but the sender, or for RETRY the one named.
func (c *conn) receiptTargets(me store.Address, req *pb.SendReceipt) ([]store.Address, error) {
	switch req.GetType() {
	case pb.ReceiptType_DELIVERED, pb.ReceiptType_READ:
		l, err := c.r.currentIDs(req.GetToUser())
		if err != nil {
			return nil, err
		}
		var targets []store.Address
		for _, d := range l.Devices {
			if a := (store.Address{User: req.GetToUser(), Device: d}); a != me {
				targets = append(targets, a)
			}
		}
		return targets, nil
	case pb.ReceiptType_RETRY:
		a := store.Address{User: req.GetToUser(), Device: req.GetToDevice()}
		if a == me {
			return nil, badRequest("retry receipt to the sending device")
		}
		if _, err := c.r.st.Device(a); err != nil {
			return nil, c.r.unknownAddress(a, err)
		}
		return []store.Address{a}, nil
	}
	return nil, badRequest("receipt type %v", req.GetType())
}

// queueReceipt enqueues the receipt for targets; store.ErrNotFound means
// one of them was removed.
func (c *conn) queueReceipt(me store.Address, req *pb.SendReceipt, targets []store.Address) error {
	if len(targets) == 0 {
		return nil
	}
	now := nowMs()
	from := &pb.Address{User: me.User, Device: me.Device}
	items := make([]store.Item, len(targets))
	for i, a := range targets {
		items[i] = store.Item{To: a, Delivery: &pb.Delivery{ServerUnixMs: now, From: from, Item: &pb.Delivery_Receipt{Receipt: &pb.Receipt{
			Type: req.GetType(), MessageIds: req.GetMessageIds(), RegistrationId: req.GetRegistrationId(), RetryCount: req.GetRetryCount(),
		}}}}
	}
	_, err := c.r.st.Enqueue(store.Batch{Sender: me, UnixMs: now, Items: items})
	if errors.Is(err, store.ErrQueueFull) {
		return c.r.queueFull(err)
	}
	return err
}
