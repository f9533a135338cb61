package phone_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/device"
)

// A companion is removed (by the phone, or by logging out) and a new one
// linked, again and again, while a peer and the phone write to each other:
// the phone's signed device list must keep vouching for the companion it
// linked last, and only for it, so no send fails on an untrusted device.
// (The phone's pushes queue behind the peer's messages, so a removal
// reaches it late, after a fresher list came with an answer.)
func TestRelinkWhileSendingKeepsTheNewCompanionVouched(t *testing.T) {
	e := newEnv(t)
	alice := e.register("alice", "+15550300", nil)
	bob := e.register("bob", "+15550301", nil)

	ctx, stop := context.WithCancel(e.ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sendErrs []error
	send := func(from interface {
		SendText(context.Context, string, string) (string, error)
	}, to string) {
		defer wg.Done()
		for ctx.Err() == nil {
			if _, err := from.SendText(ctx, to, "hi"); err != nil && ctx.Err() == nil {
				mu.Lock()
				sendErrs = append(sendErrs, err)
				mu.Unlock()
			}
		}
	}

	c := e.companion("bob/web", nil)
	id, err := bob.Scan(e.ctx, c.qr)
	if err != nil {
		t.Fatal(err)
	}
	web := c.device(t)
	wg.Add(2)
	go send(alice, bob.Self().User)
	go send(bob, alice.Self().User)
	defer func() { stop(); wg.Wait() }()

	for round := range 8 {
		if round%2 == 0 {
			err = bob.Unlink(e.ctx, id)
		} else {
			err = web.Logout(e.ctx)
		}
		if err != nil {
			t.Fatalf("round %d: unlink %d: %v", round, id, err)
		}
		c := e.companion("bob/web", nil)
		if id, err = bob.Scan(e.ctx, c.qr); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		web = c.device(t)
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			vouched, err := bob.Vouched()
			if err != nil {
				t.Fatal(err)
			}
			if slices.Equal(vouched, []uint32{id}) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the phone vouches for %v, 5s after it linked companion %d as its only one", round, vouched, id)
			}
		}
	}
	stop()
	wg.Wait()
	for _, err := range sendErrs {
		if errors.Is(err, device.ErrUntrustedDevice) {
			t.Errorf("a send failed on a device the phone did not vouch for: %v", err)
		}
	}
	t.Logf("%d send errors in all (%v)", len(sendErrs), errors.Join(sendErrs...))
}
