package device

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/linksim/linksim/sim/wire/pb"
)

// SetProfile changes this user's push name and/or about text; nil leaves a
// field as it is.
func (d *Device) SetProfile(ctx context.Context, pushName, about *string) error {
	p := &pb.SetProfile{PushName: pushName, About: about}
	if _, err := d.Call(ctx, &pb.Frame{Body: &pb.Frame_SetProfile{SetProfile: p}}); err != nil {
		return fmt.Errorf("%s: set profile: %w", d.cfg.Name, err)
	}
	// The relay holds the public profile; our other devices learn of the
	// change end to end, like any other synced state.
	changed := map[string]string{}
	if pushName != nil {
		changed[SettingPushName] = *pushName
	}
	if about != nil {
		changed[SettingAbout] = *about
	}
	return d.changeAll(ctx, changed)
}

// SetAbout changes this user's about (status) text.
func (d *Device) SetAbout(ctx context.Context, about string) error {
	return d.SetProfile(ctx, nil, &about)
}

// Profile fetches user's profile: push name, about text, devices.
func (d *Device) Profile(ctx context.Context, user string) (*pb.Profile, error) {
	ans, err := d.Call(ctx, &pb.Frame{Body: &pb.Frame_GetProfile{GetProfile: &pb.GetProfile{User: user}}})
	if err != nil {
		return nil, fmt.Errorf("%s: profile of %s: %w", d.cfg.Name, user, err)
	}
	return ans.GetProfile_(), nil
}

// RemoveDevices unlinks companions: the phone may name any, or all; a
// companion may name only itself.
func (d *Device) RemoveDevices(ctx context.Context, devices []uint32, all bool) error {
	r := &pb.RemoveDevices{Devices: devices, AllCompanions: all}
	if _, err := d.CallUnlessDone(ctx, &pb.Frame{Body: &pb.Frame_RemoveDevices{RemoveDevices: r}}, func(have []uint32) bool {
		return !slices.ContainsFunc(have, func(k uint32) bool { return k != 0 && (all || slices.Contains(devices, k)) })
	}); err != nil {
		return fmt.Errorf("%s: remove devices %v (all: %v): %w", d.cfg.Name, devices, all, err)
	}
	if !d.Primary() {
		return nil
	}
	gone := devices
	if all {
		var err error
		if gone, err = d.Vouched(); err != nil {
			return err
		}
	}
	if err := d.revoke(ctx, gone); err != nil {
		return fmt.Errorf("%s: removed devices %v (all: %v) but did not sign the new device list: %w", d.cfg.Name, devices, all, err)
	}
	return nil
}

// CallUnlessDone sends f, a request that is not repeatable, and when the
// link ends before its answer asks the relay for the account's device
// list: if done says the list shows f carried out, that is its answer;
// otherwise f goes again, and if the relay refuses that, the list is read
// again until it shows f done or a call's time is up. A companion's own
// device list is not its to read once it is removed, so it just sends
// again: the relay tells a removed device it is logged out.
func (d *Device) CallUnlessDone(ctx context.Context, f *pb.Frame, done func(devices []uint32) bool) (*pb.Frame, error) {
	ans, err := d.Call(ctx, f)
	if !errors.Is(err, ErrUnanswered) {
		return ans, err
	}
	if d.Primary() {
		have, lerr := d.Devices(ctx, d.self.User)
		if lerr != nil {
			return nil, errors.Join(err, lerr)
		}
		if done(have) {
			d.log.Info("request done though unanswered: the device list shows it", "request", fmt.Sprintf("%T", f.GetBody()))
			return nil, nil
		}
	}
	d.log.Info("request unanswered and not done: sending it again", "request", fmt.Sprintf("%T", f.GetBody()))
	ans, err = d.Call(ctx, f)
	if err == nil || Code(err) == pb.ErrorCode_ERROR_UNSPECIFIED || !d.Primary() {
		return ans, err
	}
	// Refused, it may be the first one still being carried out (a scan
	// whose companion is finishing its pairing meets REF_USED): the list
	// decides, for as long as a call may take.
	for deadline := time.Now().Add(d.cfg.CallTimeout); time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(unlessDonePoll):
		}
		if have, lerr := d.Devices(ctx, d.self.User); lerr == nil && done(have) {
			d.log.Info("request refused when sent again, but the device list shows the first one done", "request", fmt.Sprintf("%T", f.GetBody()), "refused", err)
			return nil, nil
		}
	}
	return nil, err
}

// unlessDonePoll is how often CallUnlessDone reads the device list while a
// refused repeat may be the first request still being carried out.
const unlessDonePoll = 100 * time.Millisecond

// Logout unlinks this companion, wipes its state and stops it.
func (d *Device) Logout(ctx context.Context) error {
	if d.Primary() {
		return fmt.Errorf("%s: logout: the phone owns the account and cannot log out", d.cfg.Name)
	}
	// Told it is logged out instead of Ok, the device lost its link after
	// the relay removed it and heard so on connecting again: done.
	var lo *LoggedOutError
	if err := d.RemoveDevices(ctx, nil, false); err != nil && !errors.As(err, &lo) {
		return err
	}
	select {
	case <-d.done:
	case <-ctx.Done():
		return fmt.Errorf("%s: logout: waiting for the relay to drop us: %w", d.cfg.Name, ctx.Err())
	}
	return nil
}
