package relay

import (
	"errors"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// onSetKeyIndexList stores the phone's signed device list (§16.2) and
// pushes the account's list, now carrying it, to its devices. The relay
// checks the signature only to refuse garbage early; devices check it
// themselves, since they must not trust the relay.
func (c *conn) onSetKeyIndexList(me store.Address, _ uint64, f *pb.Frame) (*pb.Frame, error) {
	if me.Device != 0 {
		return nil, fail(pb.ErrorCode_NOT_PRIMARY, "only the phone signs the device list")
	}
	signed := f.GetSetKeyIndexList().GetList()
	phone, err := c.r.st.Device(me)
	if err != nil {
		return nil, err
	}
	l, err := e2e.OpenKeyIndexList(signed, phone.IdentityKey)
	if errors.Is(err, e2e.ErrBadSignature) {
		return nil, fail(pb.ErrorCode_BAD_SIGNATURE, "key index list: %v", err)
	}
	if err != nil {
		return nil, badRequest("key index list: %v", err)
	}
	if l.GetUser() != me.User {
		return nil, badRequest("key index list of %q, not of this account", l.GetUser())
	}
	if old, err := c.r.keyIndexList(me.User); err != nil {
		return nil, err
	} else if old != nil {
		var prev pb.KeyIndexList
		if pb.Unmarshal(old.GetDetails(), &prev) == nil && prev.GetTimestampUnixMs() > l.GetTimestampUnixMs() {
			return nil, badRequest("key index list older than the stored one")
		}
	}
	raw, err := pb.Marshal(signed)
	if err != nil {
		return nil, err
	}
	if err := c.r.st.SetKeyIndexList(me.User, raw); err != nil {
		return nil, err
	}
	c.r.devicesChanged(me.User)
	return okFrame(), nil
}

// keyIndexList is the account's signed device list, or nil.
func (r *Relay) keyIndexList(user string) (*pb.SignedKeyIndexList, error) {
	a, err := r.st.Account(user)
	if err != nil || len(a.KeyIndexList) == 0 {
		return nil, err
	}
	var s pb.SignedKeyIndexList
	if err := pb.Unmarshal(a.KeyIndexList, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// vouch adds to each bundle what lets its receiver check the device
// belongs to the account: the companion's signed device identity and the
// account's signed device list.
func (r *Relay) vouch(bundles []*pb.Bundle) error {
	lists := map[string]*pb.SignedKeyIndexList{}
	for _, b := range bundles {
		a := store.Address{User: b.GetAddress().GetUser(), Device: b.GetAddress().GetDevice()}
		l, ok := lists[a.User]
		if !ok {
			var err error
			if l, err = r.keyIndexList(a.User); err != nil {
				return err
			}
			lists[a.User] = l
		}
		b.KeyIndexList = l
		if a.Device != 0 {
			d, err := r.st.Device(a)
			if err != nil {
				return err
			}
			b.DeviceIdentity = d.Identity
		}
	}
	return nil
}
