package e2e

import (
	"bytes"
	"slices"
	"testing"

	"github.com/linksim/linksim/sim/kv"
)

func TestOpenKeepsIdentity(t *testing.T) {
	db := kv.NewMem()
	s1, err := Open(db)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Open(db)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s1.IdentityKey(), s2.IdentityKey()) || s1.RegistrationID() != s2.RegistrationID() {
		t.Error("second Open of the same KV made a new identity")
	}
	if k := s1.IdentityKey(); len(k) != 33 || k[0] != 0x05 {
		t.Errorf("identity key %x, want 33 bytes starting 05", k)
	}
	if r := s1.RegistrationID(); r < 1 || r > 16380 {
		t.Errorf("registration id %d, want 1..16380", r)
	}
	if other := newStore(t); bytes.Equal(other.IdentityKey(), s1.IdentityKey()) {
		t.Error("two fresh stores share an identity key")
	}
}

// TestSignedPreKeyMadeByFirstKeys: Open signs nothing (a companion's first
// QR code waits on Open); the first Keys makes signed prekey 1 and every
// later Keys, of this Store or one reopened on the same KV, returns it.
func TestSignedPreKeyMadeByFirstKeys(t *testing.T) {
	db := kv.NewMem()
	s, err := Open(db)
	if err != nil {
		t.Fatal(err)
	}
	if spk, err := s.sig.LoadSignedPreKey(t.Context(), signedPreKeyID); err != nil || spk != nil {
		t.Fatalf("Open stored a signed prekey (%v, err %v), want none before Keys", spk, err)
	}
	first, err := s.Keys(0)
	if err != nil {
		t.Fatal(err)
	}
	if spk := first.SignedPrekey; !Verify(first.IdentityKey, spk.PublicKey, spk.Signature) {
		t.Fatal("the signed prekey made by Keys does not verify with the identity key")
	}
	if s, err = Open(db); err != nil {
		t.Fatal(err)
	}
	again, err := s.Keys(0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.SignedPrekey.PublicKey, first.SignedPrekey.PublicKey) {
		t.Error("Keys after reopening made a new signed prekey; want the stored one")
	}
}

func TestPreKeyIDs(t *testing.T) {
	db := kv.NewMem()
	s, err := Open(db)
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.Keys(3)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.IdentityKey, s.IdentityKey()) || k.RegistrationId != s.RegistrationID() {
		t.Error("Keys disagrees with IdentityKey or RegistrationID")
	}
	spk := k.SignedPrekey
	if spk.Id != 1 || !Verify(k.IdentityKey, spk.PublicKey, spk.Signature) {
		t.Errorf("signed prekey %d does not verify with the identity key", spk.Id)
	}
	more, err := s.NewPreKeys(2)
	if err != nil {
		t.Fatal(err)
	}
	// Consume one the way a prekey message does; its id must not come back.
	if err := s.sig.RemovePreKey(t.Context(), 5); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(db); err != nil {
		t.Fatal(err)
	}
	last, err := s.NewPreKeys(1)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint32
	for _, p := range append(append(k.Prekeys, more...), last...) {
		if len(p.PublicKey) != 33 {
			t.Errorf("prekey %d public key is %d bytes, want 33", p.Id, len(p.PublicKey))
		}
		ids = append(ids, p.Id)
	}
	want := []uint32{1, 2, 3, 4, 5, 6}
	if !slices.Equal(ids, want) {
		t.Errorf("prekey ids %v, want %v", ids, want)
	}
	if n := s.PreKeyCount(); n != 5 {
		t.Errorf("PreKeyCount = %d, want 5", n)
	}
	if _, err := s.NewPreKeys(-1); err == nil {
		t.Error("NewPreKeys(-1) succeeded")
	}
}

func TestSignVerify(t *testing.T) {
	s, other := newStore(t), newStore(t)
	msg := []byte("linksim")
	sig := s.Sign(msg)
	if len(sig) != 64 {
		t.Fatalf("signature is %d bytes, want 64", len(sig))
	}
	tests := []struct {
		name          string
		key, msg, sig []byte
		want          bool
	}{
		{"valid", s.IdentityKey(), msg, sig, true},
		{"other message", s.IdentityKey(), []byte("linksin"), sig, false},
		{"other key", other.IdentityKey(), msg, sig, false},
		{"short signature", s.IdentityKey(), msg, sig[:63], false},
		{"32-byte key", s.IdentityKey()[1:], msg, sig, false},
		{"no key", nil, msg, sig, false},
	}
	for _, tt := range tests {
		if got := Verify(tt.key, tt.msg, tt.sig); got != tt.want {
			t.Errorf("%s: Verify = %v, want %v", tt.name, got, tt.want)
		}
	}
}
