package device

import (
	"context"
	"time"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
)

// maxRetries caps the retry receipts a device sends for one message, and
// the ones a sender answers: a message still undecryptable after that many
// new sessions will not decrypt, and asking on would loop for ever. Its
// placeholder stays.
const maxRetries = 5

func retryKey(from e2e.Address, id string) string { return prefixRetry + from.String() + "/" + id }

// askRetry handles a delivery that did not decrypt (a lost session, or a
// corrupted one: bad MAC): the chat shows a placeholder in its place and the
// sender's device is asked to send it again on a new session, counting the
// requests, up to maxRetries.
func (d *Device) askRetry(l *link, from e2e.Address, id string, cause error) error {
	st := d.cfg.State
	n, err := getUint(st, retryKey(from, id))
	if err != nil {
		return err
	}
	n++
	if n > maxRetries {
		d.log.Warn("cannot decrypt, and out of retries", "msg", id, "from", from.String(), "err", cause)
		d.emit(Event{Kind: RetriesExhausted, MessageID: id, From: from, Err: cause, Retry: int(n - 1)})
		return nil
	}
	d.log.Info("cannot decrypt, asking for a retry", "msg", id, "from", from.String(), "retry", n, "err", cause)
	d.emit(Event{Kind: Undecryptable, MessageID: id, From: from, Err: cause, Retry: int(n)})
	if err := putUint(st, retryKey(from, id), n); err != nil {
		return err
	}
	if from.User != d.self.User {
		// A copy from our own device names its chat only inside the
		// ciphertext: it gets no placeholder.
		p := Message{ID: id, From: from.User, Sent: time.Now(), Placeholder: true}
		if _, err := d.chats.store(from.User, p); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.CallTimeout)
	defer cancel()
	r := &pb.SendReceipt{Type: pb.ReceiptType_RETRY, ToUser: from.User, ToDevice: from.Device,
		MessageIds: []string{id}, RegistrationId: d.sig.RegistrationID(), RetryCount: uint32(n)}
	_, err = l.call(ctx, &pb.Frame{Body: &pb.Frame_SendReceipt{SendReceipt: r}})
	return err
}

// retried forgets the retry count of a message that finally decrypted.
func (d *Device) retried(from e2e.Address, id string) error {
	key := retryKey(from, id)
	if _, ok, err := d.cfg.State.Get(key); err != nil || !ok {
		return err
	}
	return d.cfg.State.Delete(key)
}
