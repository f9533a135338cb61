package device

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/kv"
)

// When a peer's phone starts a session with another identity key than the
// one this device knew (a reinstall, or an impostor), the chat shows a
// "security code changed" notice, once.
func TestIdentityChangeShowsANotice(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := startRelay(t)
	var mu sync.Mutex
	var changes []Event
	alice := registerPhone(t, ctx, s, "+15550100", func(e Event) {
		if e.Kind == IdentityChanged {
			mu.Lock()
			changes = append(changes, e)
			mu.Unlock()
		}
	})
	bob := registerPhone(t, ctx, s, "+15550101", nil)
	if _, err := bob.SendText(ctx, alice.Self().User, "one"); err != nil {
		t.Fatal(err)
	}
	waitMessages(t, ctx, alice, bob.Self().User, 1)
	// Alice knew bob's phone by another key, as before a reinstall; bob
	// starts a new session with her.
	old, err := e2e.Open(kv.NewMem())
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.State().Put(accountKeyKey(bob.Self().User), old.IdentityKey()); err != nil {
		t.Fatal(err)
	}
	if err := bob.Signal().DeleteSession(alice.Self()); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"two", "three"} {
		if _, err := bob.SendText(ctx, alice.Self().User, text); err != nil {
			t.Fatal(err)
		}
	}
	waitMessages(t, ctx, alice, bob.Self().User, 4)
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 1 || changes[0].Chat != bob.Self().User {
		t.Fatalf("identity change events %+v, want one for %s", changes, bob.Self().User)
	}
	var notices []Message
	for _, m := range alice.Messages(bob.Self().User) {
		if m.Notice {
			notices = append(notices, m)
		}
	}
	if len(notices) != 1 || notices[0].Text != "Your security code with +15550101 changed." {
		t.Errorf("alice's chat with bob has notices %+v, want one saying the security code changed", notices)
	}
	if k, _ := alice.accountKey(bob.Self().User); string(k) != string(bob.Signal().IdentityKey()) {
		t.Error("alice did not pin bob's current key")
	}
}
