package device

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// A receiver that lost its session asks for retries while the sender keeps
// sending: answering them must not pull the session from under the sends
// (they failed with "no session"), and every message must arrive once.
func TestRetryWhileSending(t *testing.T) {
	const messages = 40
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := startRelay(t)
	box := &recorder{texts: map[string][]string{}}
	alice := registerPhone(t, ctx, s, "+15550100", func(Event) {})
	bob := registerPhone(t, ctx, s, "+15550101", box.event)
	if _, err := alice.SendText(ctx, bob.Self().User, "hello"); err != nil {
		t.Fatal(err)
	}
	for len(box.received(alice.Self().User)) < 1 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := range messages {
			if _, err := alice.SendText(ctx, bob.Self().User, fmt.Sprint(n)); err != nil {
				t.Errorf("send %d: %v", n, err)
			}
		}
	})
	// Bob loses his session with alice again and again while she sends.
	for range 5 {
		if err := bob.Signal().DeleteSession(alice.Self()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	want := messages + 1
	for len(box.received(alice.Self().User)) < want && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	got := box.received(alice.Self().User)
	seen := map[string]int{}
	for _, text := range got {
		seen[text]++
	}
	for n := range messages {
		if c := seen[fmt.Sprint(n)]; c != 1 {
			t.Errorf("message %d arrived %d times", n, c)
		}
	}
	if box.undecryptableCount() == 0 {
		t.Error("bob never failed to decrypt: the test did not lose his session")
	}
}
