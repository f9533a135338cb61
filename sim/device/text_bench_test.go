package device

import (
	"context"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/relay"
)

// BenchmarkTextRoundTrip is the per-message path of a load run once the
// chat exists: alice's phone sends a text to bob's through an in-process
// relay, bob decrypts, stores and acks it and sends a delivery receipt,
// and alice takes the receipt. One iteration waits for bob's Received
// event and alice's receipt, so it counts the client work of both ends
// (and the relay's; the profile splits them).
func BenchmarkTextRoundTrip(b *testing.B) {
	_, alice, bob, events := twoPhones(b, relay.Config{})
	ctx := context.Background()
	roundTrip := func() {
		id, err := alice.SendText(ctx, bob.Self().User, "a text of some forty bytes, as in a chat")
		if err != nil {
			b.Fatal(err)
		}
		for got := 0; got < 2; {
			select {
			case e := <-events:
				if e.MessageID == id && (e.Kind == Received || e.Kind == ReceiptIn) {
					got++
				}
			case <-time.After(10 * time.Second):
				b.Fatalf("msg %s: no Received and ReceiptIn within 10s", id)
			}
		}
	}
	// Both directions once: the sessions exist from here on.
	roundTrip()
	if _, err := bob.SendText(ctx, alice.Self().User, "hi"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		roundTrip()
	}
}
