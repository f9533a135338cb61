package device

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/relay"
)

func TestRegisterMakesConfiguredPreKeys(t *testing.T) {
	srv, err := relay.Serve(relay.Config{DataDir: t.TempDir()}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct{ preKeys, want int }{{0, registerPreKeys}, {7, 7}} {
		d, err := Register(ctx, Config{RelayURL: srv.WSURL(), RelayKey: srv.Key(), PreKeys: tc.preKeys}, fmt.Sprintf("+155502%02d", tc.want), "p")
		if err != nil {
			t.Fatal(err)
		}
		sig, err := e2e.Open(d.State())
		if err != nil {
			t.Fatal(err)
		}
		if n := sig.PreKeyCount(); n != tc.want {
			t.Errorf("PreKeys %d: %d prekeys stored, want %d", tc.preKeys, n, tc.want)
		}
		d.Close()
	}
}

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
