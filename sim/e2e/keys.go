package e2e

import (
	"crypto/rand"

	"filippo.io/edwards25519"
	"go.mau.fi/libsignal/ecc"
)

// createKeyPair is ecc.CreateKeyPair, the Curve25519 key pair of private
// key priv (clamped as X25519 clamps it), with the public key computed on
// the curve's Edwards form from precomputed multiples of the base point
// instead of by the Montgomery ladder: the same key, for a third of the
// CPU. Key generation was the largest part of a load run's client CPU
// while chats start (every device refills 50 one-time prekeys once its
// first 16 are taken; docs/performance.md, "Worker CPU per message").
func createKeyPair(priv []byte) *ecc.ECKeyPair {
	var private [32]byte
	copy(private[:], priv)
	private[0] &= 248
	private[31] &= 127
	private[31] |= 64
	// A clamped scalar always sets; only its length is checked.
	s, _ := edwards25519.NewScalar().SetBytesWithClamping(private[:])
	public := [32]byte(new(edwards25519.Point).ScalarBaseMult(s).BytesMontgomery())
	return ecc.NewECKeyPair(ecc.NewDjbECPublicKey(public), ecc.NewDjbECPrivateKey(private))
}

// generateKeyPair is ecc.GenerateKeyPair by createKeyPair.
func generateKeyPair() (*ecc.ECKeyPair, error) {
	var priv [32]byte
	if _, err := rand.Read(priv[:]); err != nil {
		return nil, err
	}
	return createKeyPair(priv[:]), nil
}
