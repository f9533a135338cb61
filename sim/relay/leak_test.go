package relay

import (
	"runtime"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// collectable reports, by polling the garbage collector, whether x's memory
// is reclaimed within waitFor once nothing references it; release is run
// first and must drop every reference the test itself holds.
func collectable[T any](t *testing.T, x *T, release func()) bool {
	t.Helper()
	collected := make(chan struct{})
	runtime.AddCleanup(x, func(ch chan struct{}) { close(ch) }, collected)
	x = nil
	release()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(waitFor)
	for {
		runtime.GC()
		select {
		case <-collected:
			return true
		case <-deadline:
			return false
		case <-tick.C:
		}
	}
}

// A companion that was linked and then removed must not stay reachable from
// the pairing refs the relay remembers for an hour (issue 12: ~24 KiB per
// link-and-remove cycle).
func TestRemovedCompanionConnectionIsCollected(t *testing.T) {
	s := startRelay(t, Config{})
	alice := phone(t, s, "alice", "+15550100")
	web := link(t, s, alice, "web")
	r := s.Relay()
	rc := r.connOf(store.Address{User: web.user, Device: web.device})
	if rc == nil {
		t.Fatal("the linked companion has no connection on the relay")
	}
	ok := collectable(t, rc, func() {
		rc = nil
		alice.ok(frame(&pb.RemoveDevices{Devices: []uint32{web.device}}), "ok")
		web.closedWith("logged out")
		awaitConns(t, r, 1) // the phone's
	})
	if !ok {
		t.Fatalf("the removed companion's connection is still reachable %v after it ended", waitFor)
	}
}

// awaitConns waits until the relay serves exactly n device connections.
func awaitConns(t *testing.T, r *Relay, n int) {
	t.Helper()
	awaitCount(t, "device connections", n, func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.conns)
	})
}

// awaitCount polls count until it returns want, failing after waitFor.
func awaitCount(t *testing.T, what string, want int, count func() int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		got := count()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d %s after %v, want %d", got, what, waitFor, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
