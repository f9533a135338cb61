package relay

import (
	"errors"
	"unicode/utf8"

	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// onRegister creates an account whose phone is this connection (§5).
func (c *conn) onRegister(id uint64, req *pb.Register) (*pb.Frame, error) {
	if _, ok := c.device(); ok {
		return nil, fail(pb.ErrorCode_ALREADY_REGISTERED, "this noise key already is a device")
	}
	if c.pairing() {
		return nil, badRequest("register while pairing")
	}
	if err := checkUser(req.GetUser()); err != nil {
		return nil, err
	}
	if len(req.GetPushName()) > maxPushName {
		return nil, badRequest("push name of %d bytes, at most %d", len(req.GetPushName()), maxPushName)
	}
	keys := req.GetKeys()
	if err := checkKeys(keys); err != nil {
		return nil, err
	}
	now := nowMs()
	a := store.Address{User: req.GetUser(), Device: 0}
	phone := store.Device{
		Address: a, NoiseKey: c.key, RegistrationID: keys.GetRegistrationId(),
		IdentityKey: keys.GetIdentityKey(), SignedPreKey: keys.GetSignedPrekey(), CreatedUnixMs: now,
	}
	err := c.r.st.CreateAccount(store.Account{User: a.User, PushName: req.GetPushName(), CreatedUnixMs: now}, phone, keys.GetPrekeys())
	switch {
	case errors.Is(err, store.ErrAccountExists):
		return nil, fail(pb.ErrorCode_ACCOUNT_EXISTS, "%s is registered", a.User)
	case errors.Is(err, store.ErrKeyTaken):
		return nil, fail(pb.ErrorCode_ALREADY_REGISTERED, "this noise key already is a device")
	case err != nil:
		return nil, err
	}
	c.becomeDevice(a, false)
	c.logger().Info("registered", "prekeys", len(keys.GetPrekeys()))
	return &pb.Frame{Body: &pb.Frame_Registered{Registered: &pb.Registered{User: a.User, Device: 0}}}, nil
}

// onHello answers Welcome, then starts pushing the device's queue (§3, §8).
func (c *conn) onHello(me store.Address, id uint64, f *pb.Frame) (*pb.Frame, error) {
	if c.refuseOutdated(id, f.GetHello()) {
		return nil, nil
	}
	// Acks the device sent on an older connection must be committed
	// first, or this one would push those items again.
	c.r.acks.wait(me)
	queued, err := c.r.st.Len(me)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fail(pb.ErrorCode_UNKNOWN_DEVICE, "device was removed")
	}
	if err != nil {
		return nil, err
	}
	left, err := c.r.st.PreKeyCount(me)
	if err != nil {
		return nil, err
	}
	c.answer(id, &pb.Frame{Body: &pb.Frame_Welcome{Welcome: &pb.Welcome{
		User: me.User, Device: me.Device, Queued: uint32(queued), PrekeysLeft: uint32(left),
	}}})
	c.startPusher(me)
	c.logger().Debug("hello", "queued", queued, "prekeys_left", left)
	return nil, nil
}

func (c *conn) onSetProfile(me store.Address, _ uint64, f *pb.Frame) (*pb.Frame, error) {
	req := f.GetSetProfile()
	if req == nil {
		req = &pb.SetProfile{}
	}
	if req.PushName != nil && len(req.GetPushName()) > maxPushName {
		return nil, badRequest("push name of %d bytes, at most %d", len(req.GetPushName()), maxPushName)
	}
	if req.About != nil && utf8.RuneCountInString(req.GetAbout()) > maxAbout {
		return nil, badRequest("about of %d characters, at most %d", utf8.RuneCountInString(req.GetAbout()), maxAbout)
	}
	if err := c.r.st.SetProfile(me.User, req.PushName, req.About, nowMs()); err != nil {
		return nil, err
	}
	return okFrame(), nil
}

func (c *conn) onGetProfile(_ store.Address, _ uint64, f *pb.Frame) (*pb.Frame, error) {
	user := f.GetGetProfile().GetUser()
	if err := checkUser(user); err != nil {
		return nil, err
	}
	a, err := c.r.st.Account(user)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fail(pb.ErrorCode_UNKNOWN_USER, "no account %s", user)
	}
	if err != nil {
		return nil, err
	}
	ids, err := c.r.st.ListedIDs(user)
	if err != nil {
		return nil, err
	}
	return &pb.Frame{Body: &pb.Frame_Profile_{Profile_: &pb.Profile{
		User: a.User, PushName: a.PushName, About: a.About, AboutSetUnixMs: a.AboutSetUnixMs, Devices: ids,
	}}}, nil
}
