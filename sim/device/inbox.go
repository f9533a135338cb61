package device

import (
	"sync"

	"github.com/linksim/linksim/sim/e2e"
)

// inbox keeps what a delivery decrypted to until what it says is stored.
// Decrypting uses up the message key, so the relay pushing the delivery
// again (it stays queued while not acked) decrypts to ErrDuplicate: without
// the kept plaintext a failure to store the content lost the message. The
// plaintext is kept in State, for a device that stops before storing it,
// and in memory, for a State that fails to write.
type inbox struct {
	mu      sync.Mutex
	pending map[string][]byte
}

func inboxKey(from e2e.Address, id string) string { return prefixInbox + from.String() + "/" + id }

// keepPlain records pt, what message id from `from` decrypted to. A failing
// State is not an error here: the memory copy serves, and storing the
// content will fail the delivery.
func (d *Device) keepPlain(from e2e.Address, id string, pt []byte) {
	key := inboxKey(from, id)
	d.inbox.mu.Lock()
	if d.inbox.pending == nil {
		d.inbox.pending = make(map[string][]byte)
	}
	d.inbox.pending[key] = pt
	d.inbox.mu.Unlock()
	if err := d.cfg.State.Put(key, pt); err != nil {
		d.log.Warn("cannot keep a decrypted message before storing it", "msg", id, "err", err)
	}
}

// keptPlain returns what message id from `from` decrypted to, if it was
// decrypted before and its content not stored yet.
func (d *Device) keptPlain(from e2e.Address, id string) ([]byte, bool, error) {
	key := inboxKey(from, id)
	d.inbox.mu.Lock()
	pt, ok := d.inbox.pending[key]
	d.inbox.mu.Unlock()
	if ok {
		return pt, true, nil
	}
	return d.cfg.State.Get(key)
}

// dropPlain forgets the plaintext once its content is stored.
func (d *Device) dropPlain(from e2e.Address, id string) error {
	key := inboxKey(from, id)
	d.inbox.mu.Lock()
	delete(d.inbox.pending, key)
	d.inbox.mu.Unlock()
	return d.cfg.State.Delete(key)
}
