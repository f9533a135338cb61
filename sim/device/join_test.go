package device

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/relay"
)

func TestRegistrationKeysInBatches(t *testing.T) {
	sig, err := e2e.Open(kv.NewMem())
	if err != nil {
		t.Fatal(err)
	}
	n := 2*keyBatch + 3 // two full batches and a short one
	keys, err := registrationKeys(sig, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys.Prekeys) != n || sig.PreKeyCount() != n || keys.SignedPrekey == nil || len(keys.IdentityKey) != 33 {
		t.Fatalf("%d prekeys returned, %d stored, signed prekey %v; want %d, %d and one", len(keys.Prekeys), sig.PreKeyCount(), keys.SignedPrekey, n, n)
	}
	for i, pk := range keys.Prekeys {
		if pk.Id != uint32(i+1) {
			t.Fatalf("prekey %d has id %d, want ids 1..%d in order", i, pk.Id, n)
		}
	}
}

// A companion marks each step on its way to the first pairing ref, once and
// in order, for the page's start-up timeline (webclient/driver.Timeline).
func TestPairMarksEachStepToTheFirstRef(t *testing.T) {
	srv, err := relay.Serve(relay.Config{DataDir: t.TempDir(), NoSync: true}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var (
		mu    sync.Mutex
		steps []string
	)
	mark := func(step string) {
		mu.Lock()
		steps = append(steps, step)
		mu.Unlock()
	}
	cfg := Config{Name: "web", RelayURL: srv.WSURL(), RelayKey: srv.Key(), Mark: mark, PreKeys: 2}
	refs := 0
	_, err = Pair(ctx, cfg, func(Ref) {
		refs++
		cancel() // one ref is all this test needs
	})
	if refs != 1 || !errors.Is(err, context.Canceled) {
		t.Fatalf("pairing showed %d refs and ended with %v; want 1 ref, then the cancel", refs, err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"keys.noise", "keys.identity", "relay.dialled", "frame.sent", "pair.started", "pair.ref"}
	if !slices.Equal(steps, want) {
		t.Fatalf("marks %q, want %q", steps, want)
	}
}
