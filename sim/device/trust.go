package device

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

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
		if err := pb.Unmarshal(b.GetDeviceIdentity(), &s); err != nil || len(b.GetDeviceIdentity()) == 0 {
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

// vouchedSender reports whether from, a companion starting a session with
// this device (a PREKEY_MESSAGE), is on its account's signed device list,
// fetching the list, and the account key from the phone's bundle, when this
// device does not hold them yet. A ghost device the relay added can send,
// but its messages are refused.
func (d *Device) vouchedSender(l *link, from e2e.Address) (bool, error) {
	if from.Device == 0 {
		return true, nil
	}
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.CallTimeout)
	defer cancel()
	key, err := d.accountKey(from.User)
	if err != nil {
		return false, err
	}
	if key == nil {
		phone := &pb.Address{User: from.User}
		ans, err := l.call(ctx, &pb.Frame{Body: &pb.Frame_FetchBundles{FetchBundles: &pb.FetchBundles{Addresses: []*pb.Address{phone}}}})
		if err != nil {
			return false, fmt.Errorf("account key of %s: %w", from.User, err)
		}
		for _, b := range ans.GetBundles().GetBundles() {
			if _, err := d.checkBundle(b); err != nil {
				return false, nil
			}
		}
		if key, err = d.accountKey(from.User); err != nil || key == nil {
			return false, err
		}
	}
	if vouches(d.lists.get(from.User), key, from.Device) {
		return true, nil
	}
	ans, err := l.call(ctx, &pb.Frame{Body: &pb.Frame_GetDevices{GetDevices: &pb.GetDevices{Users: []string{from.User}}}})
	if err != nil {
		return false, fmt.Errorf("device list of %s: %w", from.User, err)
	}
	d.lists.put(ans.GetDeviceLists().GetLists()...)
	return vouches(d.lists.get(from.User), key, from.Device), nil
}

// vouches reports whether list carries a key index list signed by
// accountKey that names device.
func vouches(list *pb.DeviceList, accountKey []byte, device uint32) bool {
	signed, err := e2e.OpenKeyIndexList(list.GetKeyIndexList(), accountKey)
	return err == nil && signed.GetUser() == list.GetUser() && slices.Contains(signed.GetValidIndexes(), device)
}

// refuseSender drops a message from a device its account does not vouch
// for (err nil), or fails the delivery when that could not be checked.
func (d *Device) refuseSender(from e2e.Address, id string, err error) error {
	if err != nil {
		return fmt.Errorf("check sender %s: %w", from, err)
	}
	err = fmt.Errorf("%s: %w: not on the account's signed device list", from, ErrUntrustedDevice)
	d.log.Warn("refused a message from a device its account does not vouch for", "msg", id, "from", from.String())
	d.emit(Event{Kind: UntrustedDevice, MessageID: id, From: from, Err: err})
	return nil
}
