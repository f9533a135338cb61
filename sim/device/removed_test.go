package device

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// A companion removed while it has a request to make (the web client
// fetches its profile as the linked screen opens, and that request first
// waits for the linking state's commit) ends logged out, its state wiped,
// and the request fails with the logout. Between the link ending and the
// device's run loop dropping it, the request must wait for the next link,
// not retry on the ended one: under WebAssembly nothing preempts a
// goroutine that retries without blocking, so the run loop never ran again
// and the page hung.
func TestRemovedWhileARequestWaits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := startRelay(t)
	phone := registerPhone(t, ctx, s, "+15550131", nil)
	// The run loop reports Disconnected before it drops the ended link:
	// holding it there holds the device in that window.
	var holding atomic.Bool
	held, release := make(chan struct{}), make(chan struct{})
	web := linkCompanion(t, ctx, s, phone, 1, func(e Event) {
		if e.Kind == Disconnected && holding.CompareAndSwap(true, false) {
			close(held)
			<-release
		}
	})
	if err := web.WaitOnline(ctx); err != nil {
		t.Fatal(err)
	}
	web.mu.Lock()
	ended := web.current
	web.mu.Unlock()

	holding.Store(true)
	if err := phone.RemoveDevices(ctx, []uint32{1}, false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatal("the removed companion never reported its link down")
	}
	before := ended.nextID.Load()
	fetched := make(chan error, 1)
	go func() {
		_, err := web.Profile(ctx, "+15550131")
		fetched <- err
	}()
	time.Sleep(100 * time.Millisecond) // room for retries on the ended link
	tries := ended.nextID.Load() - before
	close(release)

	var lo *LoggedOutError
	if err := <-fetched; !errors.As(err, &lo) {
		t.Errorf("the profile fetch of the removed companion ended with %v, want its logout", err)
	}
	if tries > 1 {
		t.Errorf("the profile fetch was tried %d times on the link that had ended, want at most once", tries)
	}
	select {
	case <-web.Done():
	case <-ctx.Done():
		t.Fatal("the removed companion never stopped")
	}
	if _, ok, _ := web.State().Get(keySelf); ok {
		t.Error("the removed companion kept its identity; its state must be wiped")
	}
}
