package cluster_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// A node's cached device list follows a companion linked and removed
// through another node: the watch of the accounts bucket makes it forget.
// And a send checked against a list the cache does not hold yet (the
// sender heard of the new device first) is checked again afresh, not
// refused as stale.
func TestCachedListsFollowOtherNodes(t *testing.T) {
	url := startNATS(t)
	a, b := openNode(t, url), openNode(t, url)
	alice := store.Address{User: "+15550100"}
	bob := store.Address{User: "+15550111"}
	for i, d := range []store.Address{alice, bob} {
		if err := a.CreateAccount(store.Account{User: d.User}, store.Device{Address: d, NoiseKey: []byte{byte(i + 1)}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	cached := func(want []uint32) {
		t.Helper()
		var got []uint32
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			var err error
			if got, err = b.CachedListedIDs(alice.User); err != nil {
				t.Fatal(err)
			}
			if slices.Equal(got, want) {
				return
			}
		}
		t.Fatalf("node b's cached list of alice is %v 5s after node a changed it, want %v", got, want)
	}
	cached([]uint32{0})

	web := store.Address{User: alice.User, Device: 1}
	if err := a.AddCompanion(store.Device{Address: web, NoiseKey: []byte{3}}, nil, 4); err != nil {
		t.Fatal(err)
	}
	// Right after the link, before node b may have heard of it: bob sends
	// for both of alice's devices through node b.
	send := store.Batch{Sender: bob, UnixMs: 1, MessageID: "m1",
		Expect: map[string][]uint32{alice.User: {0, 1}, bob.User: {0}},
		Items:  []store.Item{{To: alice, Delivery: delivery("m1")}, {To: web, Delivery: delivery("m1")}}}
	if _, err := b.Enqueue(send); err != nil {
		t.Fatalf("a send for alice's new list through the other node: %v, want it enqueued", err)
	}
	cached([]uint32{0, 1})

	if _, err := a.RemoveDevices(alice.User, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	cached([]uint32{0})
	send.MessageID = "m2"
	if _, err := b.Enqueue(send); !errors.Is(err, store.ErrStale) {
		t.Fatalf("a send for alice's removed companion through the other node: %v, want %v", err, store.ErrStale)
	}
}

func delivery(id string) *pb.Delivery {
	return &pb.Delivery{Item: &pb.Delivery_Message{Message: &pb.Message{MessageId: id, Ciphertext: []byte(id)}}}
}

// A node whose watch of the accounts bucket ended (nats.go gives one up
// when it cannot make its consumer again during a failover) does not
// answer from a cache that nothing keeps current any more: a companion
// linked through another node is soon in its list, as with a watch.
func TestCachedListsFollowOtherNodesAfterTheWatchEnds(t *testing.T) {
	url := startNATS(t)
	a, b := openNode(t, url), openNode(t, url)
	alice := store.Address{User: "+15550100"}
	if err := a.CreateAccount(store.Account{User: alice.User}, store.Device{Address: alice, NoiseKey: []byte{1}}, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := b.CachedListedIDs(alice.User); err != nil || !slices.Equal(got, []uint32{0}) {
		t.Fatalf("node b's cached list of alice: %v (%v), want [0]", got, err)
	}
	b.EndAccountWatch()
	for d := range uint32(2) {
		web := store.Address{User: alice.User, Device: d + 1}
		if err := a.AddCompanion(store.Device{Address: web, NoiseKey: []byte{byte(d + 2)}}, nil, 4); err != nil {
			t.Fatal(err)
		}
		var got []uint32
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if got, _ = b.CachedListedIDs(alice.User); slices.Contains(got, web.Device) {
				break
			}
		}
		if !slices.Contains(got, web.Device) {
			t.Fatalf("node b's cached list of alice is %v 5s after node a linked device %d, its watch having ended", got, web.Device)
		}
	}
}
