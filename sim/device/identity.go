package device

import (
	"bytes"
	"fmt"
	"time"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
)

// notePhoneKey follows the identity key a peer's phone started a session
// with (a PREKEY_MESSAGE from device 0): the first one is pinned as the
// account key; another one is an identity change.
func (d *Device) notePhoneKey(from e2e.Address, t pb.CipherType) error {
	if t != pb.CipherType_PREKEY_MESSAGE || from.Device != 0 || from.User == d.self.User {
		return nil
	}
	key, ok, err := d.sig.PeerIdentity(from)
	if err != nil || !ok {
		return err
	}
	pinned, err := d.accountKey(from.User)
	if err != nil || bytes.Equal(pinned, key) {
		return err
	}
	if err := d.cfg.State.Put(accountKeyKey(from.User), key); err != nil {
		return err
	}
	if pinned != nil {
		d.identityChanged(from.User)
	}
	return nil
}

// identityChanged tells that user's phone has a new identity key: the
// safety number with them changed (a reinstall, or someone else). The chat
// with them shows a notice.
func (d *Device) identityChanged(user string) {
	d.log.Info("identity key changed", "user", user)
	now := time.Now()
	n := Message{ID: fmt.Sprintf("notice-identity-%d", now.UnixNano()), From: user, Sent: now,
		Text: fmt.Sprintf("Your security code with %s changed.", user), Notice: true, Status: StatusRead}
	if _, err := d.chats.store(user, n); err != nil {
		d.log.Warn("store identity change notice", "err", err)
	}
	d.emit(Event{Kind: IdentityChanged, Chat: user, MessageID: n.ID, Text: n.Text})
}
