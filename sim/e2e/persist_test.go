//go:build !js

package e2e

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/wire/pb"
)

// TestSessionPersists restarts bob, on a bbolt file, mid-conversation.
func TestSessionPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bob.db")
	db, err := kv.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := Open(db)
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := peer{newStore(t), aliceAddr}, peer{bs, bobAddr}
	if err := alice.s.ProcessBundle(context.Background(), bundle(t, bob.s, bob.addr, true)); err != nil {
		t.Fatal(err)
	}
	send(t, alice, bob, "before restart", pb.CipherType_PREKEY_MESSAGE)
	send(t, bob, alice, "ack", pb.CipherType_SIGNAL_MESSAGE)
	// A message in flight across the restart.
	ct, inFlight := encrypt(t, alice, bob, "in flight")

	ik, reg := bob.s.IdentityKey(), bob.s.RegistrationID()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = kv.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if bob.s, err = Open(db); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bob.s.IdentityKey(), ik) || bob.s.RegistrationID() != reg {
		t.Fatal("reopened store has a different identity or registration id")
	}
	got, err := bob.s.Decrypt(context.Background(), alice.addr, ct, inFlight)
	if err != nil || string(got) != "in flight" {
		t.Fatalf("in-flight message after restart: %q, %v", got, err)
	}
	send(t, bob, alice, "after restart", pb.CipherType_SIGNAL_MESSAGE)
	send(t, alice, bob, "still fine", pb.CipherType_SIGNAL_MESSAGE)
}
