package device

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/e2e"
)

// retries records the retry receipts a device sent, and whether it gave up.
type retries struct {
	mu     sync.Mutex
	counts []int
	causes []error
	gaveUp int
}

func (r *retries) event(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e.Kind {
	case Undecryptable:
		r.counts, r.causes = append(r.counts, e.Retry), append(r.causes, e.Err)
	case RetriesExhausted:
		r.gaveUp++
	}
}

func (r *retries) snapshot() ([]int, []error, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.counts...), append([]error(nil), r.causes...), r.gaveUp
}

// A corrupted session (its MAC checks fail) is recovered like a lost one:
// a placeholder shows where the message belongs, one retry receipt brings it
// again on a new session, and it takes the placeholder's place.
func TestCorruptedSessionRecoversThroughPlaceholder(t *testing.T) {
	ctx, alice, bob, r := corruptedAfterFirst(t)
	id, err := alice.SendText(ctx, bob.Self().User, "second")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the message to replace its placeholder", func() bool {
		msgs := bob.Messages(alice.Self().User)
		return len(msgs) == 2 && msgs[1].ID == id && !msgs[1].Placeholder
	})
	msgs := bob.Messages(alice.Self().User)
	if msgs[1].Text != "second" {
		t.Errorf("bob's chat shows %q where the message belongs, want %q", msgs[1].Text, "second")
	}
	counts, causes, _ := r.snapshot()
	if len(counts) != 1 || counts[0] != 1 {
		t.Errorf("bob sent retry receipts %v, want one, the first", counts)
	}
	if len(causes) == 1 && errors.Is(causes[0], e2e.ErrNoSession) {
		t.Errorf("a corrupted session was taken for a lost one: %v", causes[0])
	}
}

// A message that cannot be decrypted however often it is sent again is
// asked for at most maxRetries times, counted 1, 2, ...; its placeholder
// stays.
func TestRetriesAreCappedAndThePlaceholderStays(t *testing.T) {
	// Bob's session is corrupted and his signed prekey gone: neither what
	// alice sends on the session nor a new session from her can decrypt.
	ctx, alice, bob, r := corruptedAfterFirst(t)
	if err := bob.State().DeletePrefix(e2e.Prefix + "signed-prekey/"); err != nil {
		t.Fatal(err)
	}
	id, err := alice.SendText(ctx, bob.Self().User, "lost")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "bob to give up", func() bool { _, _, gaveUp := r.snapshot(); return gaveUp > 0 })
	counts, _, gaveUp := r.snapshot()
	want := []int{1, 2, 3, 4, 5}
	if len(counts) != len(want) || gaveUp != 1 {
		t.Fatalf("bob sent retry receipts %v and gave up %d times, want %v then once", counts, gaveUp, want)
	}
	for i := range want {
		if counts[i] != want[i] {
			t.Errorf("retry receipts counted %v, want %v", counts, want)
			break
		}
	}
	msgs := bob.Messages(alice.Self().User)
	if last := msgs[len(msgs)-1]; last.ID != id || !last.Placeholder {
		t.Errorf("bob's chat ends with %+v, want the placeholder of %s", last, id)
	}
}

// corruptedAfterFirst registers alice and bob, delivers one message from
// alice to bob, then corrupts bob's session with alice; r records bob's
// retry receipts.
func corruptedAfterFirst(t *testing.T) (ctx context.Context, alice, bob *Device, r *retries) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	s := startRelay(t)
	r = &retries{}
	alice = registerPhone(t, ctx, s, "+15550100", nil)
	bob = registerPhone(t, ctx, s, "+15550101", r.event)
	if _, err := alice.SendText(ctx, bob.Self().User, "first"); err != nil {
		t.Fatal(err)
	}
	waitMessages(t, ctx, bob, alice.Self().User, 1)
	if err := bob.Signal().CorruptSession(ctx, alice.Self()); err != nil {
		t.Fatal(err)
	}
	return ctx, alice, bob, r
}

func waitMessages(t *testing.T, ctx context.Context, d *Device, peer string, n int) {
	t.Helper()
	waitFor(t, ctx, "messages to arrive", func() bool { return len(d.Messages(peer)) >= n })
}

// waitFor polls cond until it holds, failing the test when ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
