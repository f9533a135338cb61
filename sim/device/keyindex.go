package device

import (
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
)

// Vouched returns the companions the phone last signed for
// (docs/protocol.md §16.2).
func (d *Device) Vouched() ([]uint32, error) {
	raw, ok, err := d.cfg.State.Get(keyKeyIndexes)
	if err != nil || !ok {
		return nil, err
	}
	var l pb.KeyIndexList
	if err := proto.Unmarshal(raw, &l); err != nil {
		return nil, fmt.Errorf("corrupt signed device list: %w", err)
	}
	return l.GetValidIndexes(), nil
}

// VouchFor signs a device list that adds companion k, before the phone
// links it, so that its peers accept it as soon as it exists.
func (d *Device) VouchFor(ctx context.Context, k uint32) error {
	d.vouchMu.Lock()
	defer d.vouchMu.Unlock()
	ids, err := d.Vouched()
	if err == nil {
		err = d.signDevices(ctx, append(ids, k))
	}
	if err != nil {
		return fmt.Errorf("%s: vouch for device %d: %w", d.cfg.Name, k, err)
	}
	return nil
}

// signDevices signs the list of companions the phone vouches for and hands
// it to the relay, which gives it out with the account's keys. Callers
// hold vouchMu (but Register, before anything else runs): the relay refuses
// a list older than the one it has.
func (d *Device) signDevices(ctx context.Context, companions []uint32) error {
	if !d.Primary() {
		return fmt.Errorf("only the phone signs the device list")
	}
	ids := slices.Clone(companions)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	l := &pb.KeyIndexList{User: d.self.User, TimestampUnixMs: time.Now().UnixMilli(), ValidIndexes: ids}
	signed, err := e2e.SignKeyIndexList(d.sig, l)
	if err != nil {
		return err
	}
	if _, err := d.Call(ctx, &pb.Frame{Body: &pb.Frame_SetKeyIndexList{SetKeyIndexList: &pb.SetKeyIndexList{List: signed}}}); err != nil {
		return fmt.Errorf("set key index list: %w", err)
	}
	raw, err := proto.Marshal(l)
	if err != nil {
		return err
	}
	return d.cfg.State.Put(keyKeyIndexes, raw)
}

// revoke signs a list without the companions in gone, once they are
// unlinked: by the phone, or by themselves.
func (d *Device) revoke(ctx context.Context, gone []uint32) error {
	d.vouchMu.Lock()
	defer d.vouchMu.Unlock()
	ids, err := d.Vouched()
	if err != nil {
		return err
	}
	kept := slices.DeleteFunc(slices.Clone(ids), func(k uint32) bool { return slices.Contains(gone, k) })
	if len(kept) == len(ids) {
		return nil
	}
	return d.signDevices(ctx, kept)
}

// ownDevicesChanged follows a push of the account's own device list, old
// being the one before: the phone stops vouching for companions that left.
// (A companion vouched for but not linked yet is in neither list.)
func (d *Device) ownDevicesChanged(old, l *pb.DeviceList) {
	if !d.Primary() || l.GetUser() != d.self.User {
		return
	}
	gone := slices.DeleteFunc(slices.Clone(old.GetDevices()), func(k uint32) bool { return slices.Contains(l.GetDevices(), k) })
	if len(gone) == 0 {
		return
	}
	d.background.Go(func() {
		ctx, cancel := context.WithTimeout(d.ctx, d.cfg.CallTimeout)
		defer cancel()
		if err := d.revoke(ctx, gone); err != nil {
			d.log.Warn("sign device list after a change", "err", err)
		}
	})
}
