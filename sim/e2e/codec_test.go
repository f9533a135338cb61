package e2e

import (
	"bytes"
	stdjson "encoding/json"
	"testing"

	"go.mau.fi/libsignal/state/record"

	"github.com/linksim/linksim/sim/wire/pb"
)

// TestSessionCodecIsEncodingJSON checks that a session with chains in both
// directions and an archived state is stored as the bytes encoding/json
// makes of it, as libsignal's own serializer stored it, and that those
// bytes read back to the same record.
func TestSessionCodecIsEncodingJSON(t *testing.T) {
	alice, bob := start(t, true)
	send(t, alice, bob, "hi", pb.CipherType_PREKEY_MESSAGE)
	send(t, bob, alice, "hello", pb.CipherType_SIGNAL_MESSAGE)
	send(t, alice, bob, "again", pb.CipherType_SIGNAL_MESSAGE)
	// A second session over the first archives it.
	if err := alice.s.ProcessBundle(t.Context(), bundle(t, bob.s, bob.addr, true)); err != nil {
		t.Fatal(err)
	}
	stored, ok, err := alice.s.sig.kv.Get(prefixSession + bob.addr.signal().String())
	if err != nil || !ok {
		t.Fatalf("alice's session with bob: %v (stored %v)", err, ok)
	}
	r, err := alice.s.sig.LoadSession(t.Context(), bob.addr.signal())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.PreviousSessionStates()) == 0 {
		t.Fatal("the second session archived nothing: the test covers no archived state")
	}
	want, err := stdjson.Marshal(r.Structure())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored, want) {
		t.Errorf("stored session differs from encoding/json's:\n got %s\nwant %s", stored, want)
	}
	s, err := jsonCodec[record.SessionStructure]{}.Deserialize(want)
	if err != nil {
		t.Fatalf("encoding/json's bytes do not read back: %v", err)
	}
	if again := (jsonCodec[record.SessionStructure]{}).Serialize(s); !bytes.Equal(again, want) {
		t.Errorf("encoding/json's bytes, read and written again, changed:\n got %s\nwant %s", again, want)
	}
}
