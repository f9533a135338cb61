package device

import (
	"testing"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/kv"
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
