package relay

import (
	"errors"

	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// onUploadPreKeys adds one-time prekeys and maybe rotates the signed prekey
// (§6).
func (c *conn) onUploadPreKeys(me store.Address, _ uint64, f *pb.Frame) (*pb.Frame, error) {
	req := f.GetUploadPrekeys()
	if err := checkPreKeys(req.GetPrekeys()); err != nil {
		return nil, err
	}
	if spk := req.GetSignedPrekey(); spk != nil {
		d, err := c.r.st.Device(me)
		if err != nil {
			return nil, err
		}
		if err := checkSignedPreKey(d.IdentityKey, spk); err != nil {
			return nil, err
		}
		if err := c.r.st.SetSignedPreKey(me, spk); err != nil {
			return nil, err
		}
	}
	n, err := c.r.st.AddPreKeys(me, req.GetPrekeys(), maxStoredPreKeys)
	if err != nil {
		return nil, err
	}
	c.logger().Debug("prekeys uploaded", "sent", len(req.GetPrekeys()), "stored", n)
	return okFrame(), nil
}

// onFetchBundles hands out one bundle per address, each with a one-time
// prekey that is consumed, and tells devices running low (§6).
func (c *conn) onFetchBundles(_ store.Address, _ uint64, f *pb.Frame) (*pb.Frame, error) {
	req := f.GetFetchBundles()
	n := len(req.GetAddresses())
	if n == 0 || n > maxAddresses {
		return nil, badRequest("%d addresses, want 1 to %d", n, maxAddresses)
	}
	addrs := make([]store.Address, n)
	for i, a := range req.GetAddresses() {
		if err := checkUser(a.GetUser()); err != nil {
			return nil, err
		}
		addrs[i] = store.Address{User: a.GetUser(), Device: a.GetDevice()}
	}
	bundles, left, err := c.r.st.TakeBundles(addrs)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fail(pb.ErrorCode_UNKNOWN_DEVICE, "an address is not a device")
	}
	if err != nil {
		return nil, err
	}
	if err := c.r.vouch(bundles); err != nil {
		return nil, err
	}
	for i := range bundles {
		if left[i] >= preKeysLow { // a device that ran out needs it most
			continue
		}
		if d := c.r.hub.conn(addrs[i]); d != nil {
			d.send(&pb.Frame{Body: &pb.Frame_PrekeysLow{PrekeysLow: &pb.PreKeysLow{Left: uint32(left[i])}}})
		}
	}
	return &pb.Frame{Body: &pb.Frame_Bundles{Bundles: &pb.Bundles{Bundles: bundles}}}, nil
}
