package device

import (
	"context"
	"fmt"
	"slices"
	"time"

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
	if err := pb.Unmarshal(raw, &l); err != nil {
		return nil, fmt.Errorf("corrupt signed device list: %w", err)
	}
	return l.GetValidIndexes(), nil
}

// VouchFor signs a device list that adds companion k, before the phone
// links it, so that its peers accept it as soon as it exists. The caller
// calls done once the scan has ended, linked or not: until then k is kept
// on the list, though it is not a device of the account yet.
func (d *Device) VouchFor(ctx context.Context, k uint32) (done func(), err error) {
	d.vouchMu.Lock()
	defer d.vouchMu.Unlock()
	ids, err := d.Vouched()
	if err == nil {
		err = d.signDevices(ctx, append(ids, k))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: vouch for device %d: %w", d.cfg.Name, k, err)
	}
	if d.scanning == nil {
		d.scanning = map[uint32]bool{}
	}
	d.scanning[k] = true
	return func() {
		d.vouchMu.Lock()
		defer d.vouchMu.Unlock()
		delete(d.scanning, k)
	}, nil
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
	raw, err := pb.Marshal(l)
	if err != nil {
		return err
	}
	return d.cfg.State.Put(keyKeyIndexes, raw)
}

// revoke signs a list without the companions in gone, once the phone has
// unlinked them.
func (d *Device) revoke(ctx context.Context, gone []uint32) error {
	d.vouchMu.Lock()
	defer d.vouchMu.Unlock()
	return d.unvouch(ctx, func(k uint32) bool { return slices.Contains(gone, k) })
}

// unvouch signs a list without the companions gone picks, if it picks
// any. Callers hold vouchMu.
func (d *Device) unvouch(ctx context.Context, gone func(uint32) bool) error {
	ids, err := d.Vouched()
	if err != nil {
		return err
	}
	kept := slices.DeleteFunc(slices.Clone(ids), gone)
	if len(kept) == len(ids) {
		return nil
	}
	return d.signDevices(ctx, kept)
}

// ownDevicesChanged follows a push of the account's own device list l: the
// phone stops vouching for companions that left (by logging out, or by the
// relay's doing). The push says only that something changed: it may be
// older than a list an answer brought since, or come after a later one,
// so a companion missing from it may have been linked since; which ones
// left is asked of the relay.
func (d *Device) ownDevicesChanged(l *pb.DeviceList) {
	if !d.Primary() || l.GetUser() != d.self.User {
		return
	}
	d.background.Go(func() {
		ctx, cancel := context.WithTimeout(d.ctx, d.cfg.CallTimeout)
		defer cancel()
		if err := d.dropDeparted(ctx, l.GetDevices()); err != nil {
			d.log.Warn("sign device list after a change", "err", err)
		}
	})
}

// dropDeparted signs a list without the companions that are no longer
// devices of the account, if pushed (a list the relay pushed) lacks any it
// vouches for. A companion being scanned is kept; one whose scan ended
// before the lock was taken was linked before the relay is asked, so it is
// on the relay's answer unless it left.
func (d *Device) dropDeparted(ctx context.Context, pushed []uint32) error {
	d.vouchMu.Lock()
	defer d.vouchMu.Unlock()
	ids, err := d.Vouched()
	if err != nil {
		return err
	}
	missingFrom := func(list []uint32) func(uint32) bool {
		return func(k uint32) bool { return !slices.Contains(list, k) && !d.scanning[k] }
	}
	if !slices.ContainsFunc(ids, missingFrom(pushed)) {
		return nil
	}
	devices, err := d.Devices(ctx, d.self.User)
	if err != nil {
		return err
	}
	return d.unvouch(ctx, missingFrom(devices))
}
