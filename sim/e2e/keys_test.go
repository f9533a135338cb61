package e2e

import (
	"bytes"
	"crypto/rand"
	"testing"

	"go.mau.fi/libsignal/ecc"
)

// TestCreateKeyPairIsLibsignals checks createKeyPair, and both ways it
// computes public keys, against libsignal's on random and edge private
// keys.
func TestCreateKeyPairIsLibsignals(t *testing.T) {
	keys := [][]byte{make([]byte, 32), bytes.Repeat([]byte{0xff}, 32)}
	for range 200 {
		k := make([]byte, 32)
		rand.Read(k)
		keys = append(keys, k)
	}
	for _, k := range keys {
		want, got := ecc.CreateKeyPair(k), createKeyPair(k)
		if got.PublicKey().PublicKey() != want.PublicKey().PublicKey() {
			t.Fatalf("private key %x: public key %x, libsignal's %x", k, got.PublicKey().PublicKey(), want.PublicKey().PublicKey())
		}
		private := got.PrivateKey().Serialize()
		if e, l := edwardsPublic(&private), ladderPublic(&private); e != want.PublicKey().PublicKey() || l != want.PublicKey().PublicKey() {
			t.Fatalf("private key %x: public key %x on the Edwards form, %x by the ladder, libsignal's %x", k, e, l, want.PublicKey().PublicKey())
		}
		if private != want.PrivateKey().Serialize() {
			t.Fatalf("private key %x: kept %x, libsignal keeps %x", k, got.PrivateKey().Serialize(), want.PrivateKey().Serialize())
		}
	}
}

// BenchmarkKeyPair is one key pair from a private key, libsignal's way and
// ours.
func BenchmarkKeyPair(b *testing.B) {
	k := make([]byte, 32)
	rand.Read(k)
	b.Run("libsignal", func(b *testing.B) {
		for b.Loop() {
			ecc.CreateKeyPair(k)
		}
	})
	b.Run("edwards", func(b *testing.B) {
		for b.Loop() {
			createKeyPair(k)
		}
	})
	private := createKeyPair(k).PrivateKey().Serialize()
	b.Run("ladder", func(b *testing.B) {
		for b.Loop() {
			ladderPublic(&private)
		}
	})
}
