package device

import (
	"context"
	"errors"
	"fmt"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
)

// Prekey refill: below lowPreKeys left at the relay, upload preKeyBatch more.
const (
	lowPreKeys  = 10
	preKeyBatch = 50
)

// consume processes pushes in order. Acks and delivery receipts are batched
// until the device has caught up with what the relay pushed.
func (d *Device) consume(l *link) error {
	var acks []uint64
	delivered := make(map[string][]string) // sender user -> message ids
	for {
		f, err := l.next(d.ctx)
		if err != nil {
			return err
		}
		switch b := f.Body.(type) {
		case *pb.Frame_Delivery:
			if err := d.deliver(l, b.Delivery, delivered); err != nil {
				return fmt.Errorf("delivery %d: %w", b.Delivery.Seq, err)
			}
			acks = append(acks, b.Delivery.Seq)
		case *pb.Frame_DevicesChanged:
			d.lists.put(b.DevicesChanged.List)
			d.ownDevicesChanged(b.DevicesChanged.List)
		case *pb.Frame_PrekeysLow:
			d.background.Go(func() { d.refillPreKeys(l) })
		default:
			d.log.Warn("unexpected push", "type", fmt.Sprintf("%T", f.Body))
		}
		if l.pendingPushes() || len(acks) == 0 {
			continue
		}
		if err := d.flush(l, acks, delivered); err != nil {
			return err
		}
		acks = acks[:0]
		clear(delivered)
	}
}

// flush sends the batched delivery receipts, then the acks: once acked, the
// relay forgets the items, so everything they caused must be out first.
func (d *Device) flush(l *link, acks []uint64, delivered map[string][]string) error {
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.CallTimeout)
	defer cancel()
	for user, ids := range delivered {
		r := &pb.SendReceipt{Type: pb.ReceiptType_DELIVERED, ToUser: user, MessageIds: ids}
		if _, err := l.call(ctx, &pb.Frame{Body: &pb.Frame_SendReceipt{SendReceipt: r}}); err != nil {
			return fmt.Errorf("delivery receipt to %s: %w", user, err)
		}
	}
	return l.post(ctx, &pb.Frame{Body: &pb.Frame_Ack{Ack: &pb.Ack{Seqs: acks}}})
}

// deliver handles one queued item. It returns an error only when the item
// could not be stored, so it must stay queued.
func (d *Device) deliver(l *link, del *pb.Delivery, delivered map[string][]string) error {
	from := e2e.Address{User: del.GetFrom().GetUser(), Device: del.GetFrom().GetDevice()}
	if m := del.GetMessage(); m != nil {
		// Reported before any deduplication, so a recorder sees what the
		// relay did even where the device hides it.
		d.emit(Event{Kind: Pushed, MessageID: m.MessageId, From: from, Seq: del.Seq})
	}
	if del.Seq <= d.lastSeq {
		return nil // pushed again after a lost ack; already handled
	}
	switch item := del.Item.(type) {
	case *pb.Delivery_Message:
		if err := d.receive(l, from, item.Message, delivered); err != nil {
			return err
		}
	case *pb.Delivery_Receipt:
		if err := d.receipt(from, item.Receipt); err != nil {
			return err
		}
	}
	d.lastSeq = del.Seq
	return putUint(d.cfg.State, keyLastSeq, del.Seq)
}

func (d *Device) receive(l *link, from e2e.Address, m *pb.Message, delivered map[string][]string) error {
	if m.Type == pb.CipherType_PREKEY_MESSAGE && !d.sig.HasSession(from) {
		if ok, err := d.vouchedSender(l, from); err != nil || !ok {
			return d.refuseSender(from, m.MessageId, err)
		}
	}
	d.cryptoMu.Lock()
	pt, err := d.sig.Decrypt(d.ctx, from, m.Type, m.Ciphertext)
	d.cryptoMu.Unlock()
	if errors.Is(err, e2e.ErrDuplicate) {
		// Decrypted before: its content is stored, or kept until it is.
		kept, ok, kerr := d.keptPlain(from, m.MessageId)
		if !ok || kerr != nil {
			return kerr
		}
		pt, err = kept, nil
	} else if err == nil {
		d.keepPlain(from, m.MessageId, pt)
		if err := d.notePhoneKey(from, m.Type); err != nil {
			return err
		}
	}
	if err != nil {
		return d.askRetry(l, from, m.MessageId, err)
	}
	if err := d.receivePlain(from, m.MessageId, pt, delivered); err != nil {
		return err
	}
	if err := d.retried(from, m.MessageId); err != nil {
		return err
	}
	return d.dropPlain(from, m.MessageId)
}

// receivePlain stores and reports what a message decrypted to.
func (d *Device) receivePlain(from e2e.Address, id string, pt []byte, delivered map[string][]string) error {
	var c pb.Content
	if err := pb.Unmarshal(pt, &c); err != nil {
		d.log.Warn("undecodable content", "msg", id, "from", from.String())
		return nil
	}
	if d.cfg.Content != nil && from.User == d.self.User {
		if handled, err := d.cfg.Content(from, id, &c); handled || err != nil {
			return err
		}
	}
	switch k := c.Kind.(type) {
	case *pb.Content_Chat:
		d.emit(Event{Kind: Decrypted, MessageID: id, From: from, Text: k.Chat.Text})
		return d.receiveChat(from, id, k.Chat, delivered)
	case *pb.Content_HistorySync:
		return d.receiveHistory(from, k.HistorySync, nil)
	case *pb.Content_Media:
		return d.receiveMedia(from, id, k.Media, delivered)
	case *pb.Content_Call:
		return d.receiveCall(from, k.Call)
	case *pb.Content_AppState:
		return d.receiveAppState(from, k.AppState)
	}
	return nil
}

func (d *Device) receiveChat(from e2e.Address, id string, c *pb.Chat, delivered map[string][]string) error {
	m := Message{ID: id, From: from.User, Text: c.Text, Sent: sentTime(c.SentUnixMs)}
	return d.receiveMessage(from, m, c.ChatUser, Event{Kind: Received, Text: c.Text}, delivered)
}

// receiveMessage stores m, from `from`, in its chat and reports it with ev.
// A copy of our own message (from another of our devices) names its chat in
// chatUser; a message from anyone else belongs to the chat with them and is
// owed a delivery receipt.
func (d *Device) receiveMessage(from e2e.Address, m Message, chatUser string, ev Event, delivered map[string][]string) error {
	own := from.User == d.self.User
	peer := from.User
	if own {
		peer = chatUser
		if peer == "" {
			d.log.Warn("own-device copy without a chat", "msg", m.ID)
			return nil
		}
		m.Outgoing, m.Status = true, StatusSent
	}
	stored, err := d.chats.store(peer, m)
	if err != nil || !stored {
		return err
	}
	if !own {
		if err := d.readBeforeArrival(peer, m.ID); err != nil {
			return err
		}
	}
	ev.MessageID, ev.Chat, ev.From = m.ID, peer, from
	d.emit(ev)
	if !own {
		delivered[from.User] = append(delivered[from.User], m.ID)
	}
	return nil
}

// readBeforeArrival marks the chat read up to message id when another of
// our devices read up to it before it got here (a resend after a retry
// receipt can come after the read it was read in).
func (d *Device) readBeforeArrival(peer, id string) error {
	if s, ok := d.state.get(SettingRead + peer); !ok || s.Value != id || s.Device == d.self.Device {
		return nil
	}
	return d.chats.markReadUpTo(peer, id)
}

func (d *Device) receipt(from e2e.Address, r *pb.Receipt) error {
	if r.Type == pb.ReceiptType_RETRY {
		// Answered off the push path: the resend waits on the relay, and the
		// pushes behind this one need not wait for it.
		d.background.Go(func() {
			ctx, cancel := context.WithTimeout(d.ctx, 3*d.cfg.CallTimeout)
			defer cancel()
			if err := d.resend(ctx, from, r.MessageIds, r.RetryCount); err != nil {
				d.log.Warn("answer retry receipt", "from", from.String(), "err", err)
			}
		})
		return nil
	}
	if from.User == d.self.User {
		return nil
	}
	status := StatusDelivered
	if r.Type == pb.ReceiptType_READ {
		status = StatusRead
	}
	for _, id := range r.MessageIds {
		d.emit(Event{Kind: ReceiptIn, MessageID: id, Chat: from.User, From: from, Receipt: r.Type})
	}
	return d.chats.setStatus(from.User, r.MessageIds, status)
}

func (d *Device) importHistory(from e2e.Address, h *pb.HistorySync) error {
	if err := d.mergeState(from, h.AppState); err != nil {
		return err
	}
	for _, c := range h.Contacts {
		if err := d.chats.setName(c.User, c.Name); err != nil {
			return err
		}
	}
	for _, hc := range h.Chats {
		for _, hm := range hc.Messages {
			m := Message{ID: hm.MessageId, From: hm.FromUser, Text: hm.Text, Sent: sentTime(hm.SentUnixMs),
				Outgoing: hm.FromUser == d.self.User, Status: Status(hm.Status)}
			if hm.Media != nil {
				// A media message whose descriptor does not verify shows
				// as its caption alone.
				m.Media, _ = mediaOf(hm.Media)
			}
			if _, err := d.chats.store(hc.Peer, m); err != nil {
				return err
			}
		}
	}
	return nil
}

// MarkRead marks the chat with peer read, tells the senders (one read
// receipt per message, from this device only) and our other devices, which
// mark it read without receipts of their own.
func (d *Device) MarkRead(ctx context.Context, peer string) error {
	read, last, err := d.chats.markRead(peer)
	if err != nil {
		return fmt.Errorf("%s: mark %s read: %w", d.cfg.Name, peer, err)
	}
	for user, ids := range read {
		r := &pb.SendReceipt{Type: pb.ReceiptType_READ, ToUser: user, MessageIds: ids}
		if _, err := d.Call(ctx, &pb.Frame{Body: &pb.Frame_SendReceipt{SendReceipt: r}}); err != nil {
			return fmt.Errorf("%s: read receipt to %s: %w", d.cfg.Name, user, err)
		}
	}
	if len(read) == 0 {
		return nil // nothing newly read: our other devices have nothing to learn
	}
	return d.change(ctx, SettingRead+peer, last)
}

func (d *Device) refillPreKeys(l *link) {
	// Every bundle fetched below the mark brings a PreKeysLow: one refill
	// at a time is enough.
	if !d.refilling.CompareAndSwap(false, true) {
		return
	}
	defer d.refilling.Store(false)
	keys, err := d.sig.NewPreKeys(preKeyBatch)
	if err == nil {
		ctx, cancel := context.WithTimeout(d.ctx, d.cfg.CallTimeout)
		defer cancel()
		_, err = l.call(ctx, &pb.Frame{Body: &pb.Frame_UploadPrekeys{UploadPrekeys: &pb.UploadPreKeys{Prekeys: keys}}})
	}
	if err != nil {
		d.log.Warn("refill prekeys", "err", err)
	}
}
