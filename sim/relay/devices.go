package relay

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/linksim/linksim/sim/route"
	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// listHash is the device-list hash of docs/protocol.md §7: the first 8
// bytes, in lowercase hex, of SHA-256("user:id,id,...") with ids ascending
// in decimal.
func listHash(user string, ids []uint32) string {
	var b strings.Builder
	b.WriteString(user)
	b.WriteByte(':')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(id), 10))
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
}

func deviceList(user string, ids []uint32) *pb.DeviceList {
	return &pb.DeviceList{User: user, Devices: ids, Hash: listHash(user, ids)}
}

// currentList reads a user's device list; UNKNOWN_USER if there is none.
func (r *Relay) currentList(user string) (*pb.DeviceList, error) {
	l, err := r.currentIDs(user)
	if err != nil {
		return nil, err
	}
	if l.KeyIndexList, err = r.keyIndexList(user); err != nil {
		return nil, err
	}
	return l, nil
}

// currentIDs is currentList without the signed key index list, which
// costs a read and a decode of the account: checks need only the ids.
func (r *Relay) currentIDs(user string) (*pb.DeviceList, error) {
	return listIDs(r.st.ListedIDs, user)
}

// listIDs is currentIDs with the ids read by listed.
func listIDs(listed func(string) ([]uint32, error), user string) (*pb.DeviceList, error) {
	ids, err := listed(user)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fail(pb.ErrorCode_UNKNOWN_USER, "no account %s", user)
	}
	if err != nil {
		return nil, err
	}
	return deviceList(user, ids), nil
}

func (c *conn) onGetDevices(_ store.Address, _ uint64, f *pb.Frame) (*pb.Frame, error) {
	users := f.GetGetDevices().GetUsers()
	if len(users) == 0 || len(users) > maxUsers {
		return nil, badRequest("%d users, want 1 to %d", len(users), maxUsers)
	}
	lists := make([]*pb.DeviceList, 0, len(users))
	seen := map[string]*pb.DeviceList{} // a user named twice is read once
	for _, u := range users {
		if err := checkUser(u); err != nil {
			return nil, err
		}
		l := seen[u]
		if l == nil {
			var err error
			if l, err = c.r.currentList(u); err != nil {
				return nil, err
			}
			seen[u] = l
		}
		lists = append(lists, l)
	}
	return &pb.Frame{Body: &pb.Frame_DeviceLists{DeviceLists: &pb.DeviceLists{Lists: lists}}}, nil
}

// devicesChanged pushes a user's current device list to each of the user's
// connected devices (§7).
func (r *Relay) devicesChanged(user string) {
	l, err := r.currentList(user)
	if err != nil {
		r.log.Error("device list after a change", "user", user, "err", err)
		return
	}
	r.pushUser(user, &pb.Frame{Body: &pb.Frame_DevicesChanged{DevicesChanged: &pb.DevicesChanged{List: l}}})
}

// onRemoveDevices unlinks companions (§11): the removed devices are logged
// out and disconnected at once, and their keys refused from then on.
func (c *conn) onRemoveDevices(me store.Address, id uint64, f *pb.Frame) (*pb.Frame, error) {
	req := f.GetRemoveDevices()
	ids := slices.Clone(req.GetDevices())
	if slices.Contains(ids, 0) {
		return nil, badRequest("device 0 (the phone) cannot be removed")
	}
	current, err := c.r.st.DeviceIDs(me.User)
	if err != nil {
		return nil, err
	}
	if me.Device != 0 {
		if req.GetAllCompanions() {
			return nil, fail(pb.ErrorCode_NOT_PRIMARY, "only the phone may remove all companions")
		}
		if len(ids) == 0 {
			ids = []uint32{me.Device}
		}
		for _, d := range ids {
			if d != me.Device {
				return nil, fail(pb.ErrorCode_NOT_PRIMARY, "a companion may remove only itself")
			}
		}
	} else {
		switch {
		case req.GetAllCompanions():
			ids = slices.DeleteFunc(slices.Clone(current), func(d uint32) bool { return d == 0 })
		case len(ids) == 0:
			return nil, badRequest("no devices named")
		}
		for _, d := range ids {
			if !slices.Contains(current, d) {
				return nil, fail(pb.ErrorCode_UNKNOWN_DEVICE, "%s:%d is not a device", me.User, d)
			}
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	removed, err := c.r.st.RemoveDevices(me.User, ids)
	if err != nil {
		return nil, err
	}
	// Answer first: a companion removing itself sees Ok before LoggedOut.
	c.answer(id, okFrame())
	for _, d := range removed {
		c.logger().Info("device removed", "removed", d.Device)
		// The connection stops sending at once, so the DevicesChanged
		// below reaches only the devices that remain.
		c.r.pushTo(d.Address, route.LoggedOut, loggedOut("removed"))
	}
	if len(removed) > 0 {
		c.r.devicesChanged(me.User)
	}
	return nil, nil
}
