package device

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
)

// ErrUntrustedDevice means the relay offered keys for a device that the
// account's phone does not vouch for: no signed device list, a companion
// missing from it or without the account's signature over its identity key,
// or an account key other than the one this device knows. Nothing is ever
// encrypted for such a device.
var ErrUntrustedDevice = errors.New("device not vouched for by its account")

func accountKeyKey(user string) string { return prefixAccountKey + user }

// accountKey is the identity key of user's phone as this device first saw
// it (or learnt it since through an identity change), or nil.
func (d *Device) accountKey(user string) ([]byte, error) {
	if user == d.self.User && d.Primary() {
		return d.sig.IdentityKey(), nil
	}
	k, _, err := d.cfg.State.Get(accountKeyKey(user))
	return k, err
}

// checkBundle decides whether the device of bundle b belongs to its user's
// account (docs/protocol.md §16.2): the phone's bundle must carry the
// account's signed device list; a companion's must also carry the device
// identity the phone signed at pairing, for this identity key and key
// index, and the list must name that index. The account key is pinned on
// first use; a phone that shows a new one is an identity change (returned
// as changed, and pinned), a companion that shows one is refused.
func (d *Device) checkBundle(b *pb.Bundle) (changed bool, err error) {
	a := e2e.Address{User: b.GetAddress().GetUser(), Device: b.GetAddress().GetDevice()}
	pinned, err := d.accountKey(a.User)
	if err != nil {
		return false, err
	}
	account := b.GetIdentityKey()
	if a.Device != 0 {
		var s pb.SignedDeviceIdentity
		if err := proto.Unmarshal(b.GetDeviceIdentity(), &s); err != nil || len(b.GetDeviceIdentity()) == 0 {
			return false, fmt.Errorf("%s: %w: no signed device identity", a, ErrUntrustedDevice)
		}
		account = s.GetAccountSignatureKey()
		if pinned != nil && !bytes.Equal(account, pinned) {
			return false, fmt.Errorf("%s: %w: signed by another account key", a, ErrUntrustedDevice)
		}
		id, err := e2e.VerifyDeviceIdentity(&s, b.GetIdentityKey(), account)
		if err != nil {
			return false, fmt.Errorf("%s: %w: %w", a, ErrUntrustedDevice, err)
		}
		if id.GetUser() != a.User || id.GetDevice() != a.Device || id.GetKeyIndex() != a.Device {
			return false, fmt.Errorf("%s: %w: its identity names %s:%d (key index %d)", a, ErrUntrustedDevice, id.GetUser(), id.GetDevice(), id.GetKeyIndex())
		}
	}
	l, err := e2e.OpenKeyIndexList(b.GetKeyIndexList(), account)
	if err != nil {
		return false, fmt.Errorf("%s: %w: %w", a, ErrUntrustedDevice, err)
	}
	if l.GetUser() != a.User {
		return false, fmt.Errorf("%s: %w: the signed list is %s's", a, ErrUntrustedDevice, l.GetUser())
	}
	if a.Device != 0 && !slices.Contains(l.GetValidIndexes(), a.Device) {
		return false, fmt.Errorf("%s: %w: not on the account's signed device list %v", a, ErrUntrustedDevice, l.GetValidIndexes())
	}
	if bytes.Equal(account, pinned) {
		return false, nil
	}
	return pinned != nil, d.cfg.State.Put(accountKeyKey(a.User), account)
}

// unpinned lists the users among targets whose account key this device does
// not know yet and whose phone is not among targets: the phone's bundle is
// fetched with the others so that the key comes from the phone itself.
func (d *Device) unpinned(targets []e2e.Address) ([]e2e.Address, error) {
	var phones []e2e.Address
	for _, a := range targets {
		phone := e2e.Address{User: a.User}
		if a.Device == 0 || slices.Contains(targets, phone) || slices.Contains(phones, phone) {
			continue
		}
		k, err := d.accountKey(a.User)
		if err != nil {
			return nil, err
		}
		if k == nil {
			phones = append(phones, phone)
		}
	}
	return phones, nil
}
