package e2e

import (
	"crypto/ecdh"
	"crypto/rand"

	"filippo.io/edwards25519"
	"go.mau.fi/libsignal/ecc"
)

// createKeyPair is ecc.CreateKeyPair, the Curve25519 key pair of private
// key priv (clamped as X25519 clamps it): natively by edwardsPublic, in
// WebAssembly by ladderPublic (keys_js.go says why).
func createKeyPair(priv []byte) *ecc.ECKeyPair {
	var private [32]byte
	copy(private[:], priv)
	private[0] &= 248
	private[31] &= 127
	private[31] |= 64
	var public [32]byte
	if baseTable {
		public = edwardsPublic(&private)
	} else {
		public = ladderPublic(&private)
	}
	return ecc.NewECKeyPair(ecc.NewDjbECPublicKey(public), ecc.NewDjbECPrivateKey(private))
}

// edwardsPublic is the public key of a clamped private key, computed on
// the curve's Edwards form from precomputed multiples of the base point
// instead of by the Montgomery ladder: the same key, for a third of the
// CPU once the table is built. Key generation was the largest part of a
// load run's client CPU while chats start (every device refills 50
// one-time prekeys once its first 16 are taken; docs/performance.md,
// "Worker CPU per message").
func edwardsPublic(private *[32]byte) [32]byte {
	// A clamped scalar always sets; only its length is checked.
	s, _ := edwards25519.NewScalar().SetBytesWithClamping(private[:])
	return [32]byte(new(edwards25519.Point).ScalarBaseMult(s).BytesMontgomery())
}

// ladderPublic is the public key of a clamped private key by X25519's
// Montgomery ladder (crypto/ecdh), which needs no table.
func ladderPublic(private *[32]byte) [32]byte {
	// A 32-byte key always sets.
	k, _ := ecdh.X25519().NewPrivateKey(private[:])
	return [32]byte(k.PublicKey().Bytes())
}

// generateKeyPair is ecc.GenerateKeyPair by createKeyPair.
func generateKeyPair() (*ecc.ECKeyPair, error) {
	var priv [32]byte
	if _, err := rand.Read(priv[:]); err != nil {
		return nil, err
	}
	return createKeyPair(priv[:]), nil
}
