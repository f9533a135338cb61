package relay

import (
	"slices"
	"testing"

	"github.com/linksim/linksim/sim/wire/pb"
)

// directTo is a direct Send of one opaque envelope to user:device.
func directTo(id, user string, device uint32) *pb.Frame {
	return frame(&pb.Send{MessageId: id, Direct: true, Envelopes: []*pb.Envelope{
		{To: &pb.Address{User: user, Device: device}, Type: pb.CipherType_SIGNAL_MESSAGE, Ciphertext: []byte(id)},
	}})
}

// A mirror companion (protocol §19) is on no device list, is reached only
// by its own devices, and reaches only them, across a reconnect too.
func TestMirrorCompanionTalksOnlyToItsOwnDevices(t *testing.T) {
	s := startRelay(t, Config{})
	alice := phone(t, s, "alice", "+15550100")
	bob := phone(t, s, "bob", "+15550101")
	web := linkAs(t, s, alice, "alice/web", true)
	multi := link(t, s, alice, "alice/web-2")

	if got := bob.lists(alice.user)[alice.user].GetDevices(); !slices.Equal(got, []uint32{0, multi.device}) {
		t.Errorf("alice's device list is %v; want her phone and multi-device companion %d, not mirror companion %d", got, multi.device, web.device)
	}
	bob.sendText(alice.user, "to alice's listed devices")
	alice.ack(alice.delivery().GetSeq())
	bob.fails(directTo("bob-direct", alice.user, web.device), pb.ErrorCode_UNKNOWN_DEVICE)

	for _, c := range []*client{web, web.twin()} {
		if c != web {
			web.hangUp()
			c.connect(s)
			c.hello()
		}
		c.fails(directTo("to-bob-"+c.name, bob.user, 0), pb.ErrorCode_NOT_PRIMARY)
		c.fails(frame(&pb.Send{MessageId: "listed-" + c.name, Envelopes: []*pb.Envelope{
			{To: &pb.Address{User: alice.user, Device: 0}, Type: pb.CipherType_SIGNAL_MESSAGE, Ciphertext: []byte("x")},
		}}), pb.ErrorCode_NOT_PRIMARY)
		c.fails(frame(&pb.SendReceipt{Type: pb.ReceiptType_DELIVERED, ToUser: bob.user, MessageIds: []string{"to alice's listed devices"}}), pb.ErrorCode_NOT_PRIMARY)
		c.ok(directTo("to-phone-"+c.name, alice.user, 0), "send_ack")
		if d := alice.delivery(); d.GetFrom().GetDevice() != web.device || d.GetMessage().GetMessageId() != "to-phone-"+c.name {
			t.Errorf("alice's phone got %v; want the mirror companion's request", d)
		} else {
			alice.ack(d.GetSeq())
		}
		alice.ok(directTo("view-"+c.name, alice.user, web.device), "send_ack")
		if d := c.delivery(); d.GetMessage().GetMessageId() != "view-"+c.name {
			t.Errorf("the mirror companion got %v; want its phone's view", d)
		} else {
			c.ack(d.GetSeq())
		}
	}
}
