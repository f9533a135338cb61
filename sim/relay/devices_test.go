package relay

import (
	"slices"
	"testing"

	"github.com/linksim/linksim/sim/wire/pb"
)

func TestListHash(t *testing.T) {
	// The example of docs/protocol.md §7, hashed independently.
	if got := listHash("+15550100", []uint32{0, 1, 3}); got != "21af473d2aa7f6bc" {
		t.Fatalf("hash of +15550100:0,1,3 is %q, want 21af473d2aa7f6bc", got)
	}
}

func TestRemoveDevices(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{})
	alice := phone(t, s, "alice", "+15550100")
	web1 := link(t, s, alice, "web1")
	web2 := link(t, s, alice, "web2")
	alice.push("devices_changed")
	alice.push("devices_changed")
	web2.push("devices_changed")

	web2.fails(frame(&pb.RemoveDevices{Devices: []uint32{1}}), pb.ErrorCode_NOT_PRIMARY)
	web2.fails(frame(&pb.RemoveDevices{AllCompanions: true}), pb.ErrorCode_NOT_PRIMARY)
	web2.fails(frame(&pb.RemoveDevices{Devices: []uint32{0}}), pb.ErrorCode_BAD_REQUEST)
	alice.fails(frame(&pb.RemoveDevices{Devices: []uint32{0}}), pb.ErrorCode_BAD_REQUEST)
	alice.fails(frame(&pb.RemoveDevices{Devices: []uint32{7}}), pb.ErrorCode_UNKNOWN_DEVICE)

	// The phone removes web1: it is logged out and disconnected at once.
	alice.ok(frame(&pb.RemoveDevices{Devices: []uint32{1}}), "ok")
	if lo := web1.push("logged_out").GetLoggedOut(); lo.GetReason() != "removed" {
		t.Fatalf("LoggedOut %v", lo)
	}
	web1.closedWith("logged out")
	for _, c := range []*client{alice, web2} {
		if l := c.push("devices_changed").GetDevicesChanged().GetList(); !slices.Equal(l.GetDevices(), []uint32{0, 2}) {
			t.Fatalf("%s: DevicesChanged %v after removing 1", c.name, l)
		}
	}
	// ... and refused when it comes back.
	again := web1.twin()
	again.connect(s)
	again.push("logged_out")
	again.closedWith("logged out")

	// A companion removes itself: Ok, then LoggedOut.
	web2.ok(frame(&pb.RemoveDevices{}), "ok")
	web2.push("logged_out")
	web2.closedWith("logged out")
	if l := alice.push("devices_changed").GetDevicesChanged().GetList(); !slices.Equal(l.GetDevices(), []uint32{0}) {
		t.Fatalf("DevicesChanged %v after web2 left", l)
	}

	// Device ids are never reused; all_companions removes every companion.
	web3 := link(t, s, alice, "web3")
	if web3.device != 3 {
		t.Fatalf("new companion got device %d, want 3", web3.device)
	}
	alice.ok(frame(&pb.RemoveDevices{AllCompanions: true}), "ok")
	web3.push("logged_out")
	web3.closedWith("logged out")
	if p := alice.ok(frame(&pb.GetProfile{User: "+15550100"}), "profile").GetProfile_(); !slices.Equal(p.GetDevices(), []uint32{0}) {
		t.Fatalf("devices after removing all: %v", p.GetDevices())
	}
}
