package harness_test

import (
	"strings"
	"testing"

	"github.com/linksim/linksim/harness"
)

// A ledger that holds less than the flow declares fails, with a line that
// says what was expected and what was seen; an empty one is never clean.
func TestLedgerMustHoldWhatTheFlowExpects(t *testing.T) {
	env := harness.Start(t, harness.Config{})
	six := harness.Expect{Messages: 6, Deliveries: 12, Devices: 4}
	if err := env.Check(); err == nil || !strings.Contains(err.Error(), "event wiring broken?") {
		t.Errorf("Check of an empty ledger: got %v, want an error", err)
	}
	want := "ledger: expected 6 messages delivered as 12 copies to 4 devices; the ledger saw none: event wiring broken?"
	if err := env.CheckExpected(six); err == nil || err.Error() != want {
		t.Errorf("an empty ledger:\n got %v\nwant %s", err, want)
	}
	if err := env.CheckExpected(harness.Expect{}); err != nil {
		t.Errorf("a flow that declares no message, with none: %v", err)
	}

	ctx, _ := aliceWroteToBob(t, env, "one")
	if err := harness.Await(ctx, "the message to bob", env.Check); err != nil {
		t.Fatal(err)
	}
	one := harness.Expect{Messages: 1, Deliveries: 1, Devices: 1}
	if err := env.CheckExpected(one); err != nil {
		t.Errorf("the ledger holds what was sent: %v", err)
	}
	want = "ledger: expected 6 messages delivered as 12 copies to 4 devices; the ledger saw 1 messages delivered as 1 copies to 1 devices"
	if err := env.CheckExpected(six); err == nil || err.Error() != want {
		t.Errorf("a short ledger:\n got %v\nwant %s", err, want)
	}
	if err := env.CheckExpected(harness.Expect{}); err == nil || !strings.Contains(err.Error(), "declare them in its Expect") {
		t.Errorf("a flow that declares no message but sent one: got %v", err)
	}
}
