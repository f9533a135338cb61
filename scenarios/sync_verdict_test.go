package scenarios

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/wire/pb"
)

// The sync verdicts fail when the thing they judge is broken on purpose: a
// device whose contact name was changed without syncing is out of step, and
// a second read receipt for a message (as a client that ignores the synced
// read state would send) is counted.
func TestSyncVerdictsCatchBreakage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := harness.Start(t, harness.Config{})
	alice, bob, err := aliceAndBob(ctx, env, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	phone, web, bobUser := alice.Phone.Device, alice.Web(0), bob.Phone.Self().User
	id, err := bob.Phone.SendText(ctx, alice.Phone.Self().User, "read me once")
	if err != nil {
		t.Fatal(err)
	}
	if err := unreadOn(ctx, bobUser, 1, phone, web); err != nil {
		t.Fatal(err)
	}
	if err := phone.MarkRead(ctx, bobUser); err != nil {
		t.Fatal(err)
	}
	if err := awaitInStep(ctx, phone, web); err != nil {
		t.Fatalf("before the breakage: %v", err)
	}
	if err := settleReceipts(ctx, alice, bob); err != nil {
		t.Fatal(err)
	}
	if err := oneReadReceipt(env, bob.Phone.Name(), []string{id}); err != nil {
		t.Fatalf("before the breakage: %v", err)
	}

	// A rename kept on one device only.
	if err := web.SetContactName(bobUser, "known only here"); err != nil {
		t.Fatal(err)
	}
	if err := inStep([]*device.Device{phone, web}); err == nil || !strings.Contains(err.Error(), "contact names") {
		t.Errorf("a contact renamed on %s alone: verdict %v, want out of step on contact names", web.Name(), err)
	}

	// The web client reads the message again as if it had not heard.
	again := &pb.SendReceipt{Type: pb.ReceiptType_READ, ToUser: bobUser, MessageIds: []string{id}}
	if _, err := web.Call(ctx, &pb.Frame{Body: &pb.Frame_SendReceipt{SendReceipt: again}}); err != nil {
		t.Fatal(err)
	}
	if err := settleReceipts(ctx, alice, bob); err != nil {
		t.Fatal(err)
	}
	if err := oneReadReceipt(env, bob.Phone.Name(), []string{id}); err == nil || !strings.Contains(err.Error(), "got 2 read receipts") {
		t.Errorf("a second read receipt from %s: verdict %v, want 2 receipts counted", web.Name(), err)
	}
}
