package device

import (
	"context"
	"slices"
	"testing"
	"time"
)

// A push of the phone's own device list can reach it late: the removal of
// one companion, taken from the queue after the next companion was linked
// and a fresher list came with an answer. Read as the account's current
// devices it would drop the new companion from the signed list, and every
// peer would refuse it. Nor may a push drop a companion still being
// scanned; once its scan has ended unlinked, the next one does.
func TestLatePushKeepsTheLinkedCompanionVouched(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := startRelay(t)
	alice := registerPhone(t, ctx, s, "+15550400", nil)
	bob := registerPhone(t, ctx, s, "+15550401", nil)
	linkCompanion(t, ctx, s, bob, 1, nil)
	if err := bob.RemoveDevices(ctx, []uint32{1}, false); err != nil {
		t.Fatal(err)
	}
	linkCompanion(t, ctx, s, bob, 2, nil)
	vouches := func(when string, want ...uint32) {
		t.Helper()
		if v, err := bob.Vouched(); err != nil || !slices.Equal(v, want) {
			t.Fatalf("%s: the phone vouches for %v (%v), want %v", when, v, err, want)
		}
	}

	// What the push of companion 1's removal runs, with its list [0].
	if err := bob.dropDeparted(ctx, []uint32{0}); err != nil {
		t.Fatal(err)
	}
	vouches("after a late push without companion 2", 2)
	if _, err := alice.SendText(ctx, bob.Self().User, "hi"); err != nil {
		t.Fatalf("a peer sending to the account: %v", err)
	}

	scanned, err := bob.VouchFor(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.dropDeparted(ctx, []uint32{0, 2}); err != nil {
		t.Fatal(err)
	}
	vouches("during the scan of companion 3", 2, 3)
	scanned() // the scan failed: 3 was never linked
	if err := bob.dropDeparted(ctx, []uint32{0, 2}); err != nil {
		t.Fatal(err)
	}
	vouches("after the scan of companion 3 failed", 2)
}
