package e2e

// A history bundle carried by the phone's scan (docs/protocol.md §10 step
// 4): the companion lists its chats as it links, instead of after a Signal
// session is set up and a message has gone round. Only the companion opens
// it: it is sealed to the companion's identity key from the QR code by a
// fresh key of the phone's, keyed by the adv secret too (which only the QR
// code carries), and bound to the signed device identity:
//
//	shared = X25519(fresh private key, companion identity key)
//	key    = HKDF-SHA256(secret shared, salt adv secret, info "linksim Pairing History", 32 bytes)
//	sealed = fresh public key (32) || AES-256-GCM(key, nonce 12 zero bytes, bundle, additional data S)
//
// with S the serialized SignedDeviceIdentity the scan carries. The key is
// used once, so a fixed nonce is safe.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
)

// HistoryInline is the largest history bundle (encoded) a scan or a
// message carries; a larger one goes through the media store.
const HistoryInline = 64 << 10

// SealedHistoryOverhead is how much longer a sealed bundle is than the
// bundle: the fresh public key and the GCM tag.
const SealedHistoryOverhead = 32 + 16

// ErrHistorySeal means a sealed history does not open: it was altered, or
// sealed for another companion, QR code or identity.
var ErrHistorySeal = errors.New("sealed history does not open")

const pairingHistoryInfo = "linksim Pairing History"

// SealHistory seals bundle for the companion whose QR code carried
// companionIdentityKey (33 bytes) and advSecret; signed is S, the
// serialized SignedDeviceIdentity of the scan.
func SealHistory(companionIdentityKey, advSecret, signed, bundle []byte) ([]byte, error) {
	companion, err := montgomeryKey(companionIdentityKey)
	if err != nil {
		return nil, fmt.Errorf("e2e: seal history: %w", err)
	}
	fresh, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("e2e: seal history: %w", err)
	}
	shared, err := fresh.ECDH(companion)
	if err != nil {
		return nil, fmt.Errorf("e2e: seal history: %w", err)
	}
	aead, err := historyCipher(shared, advSecret)
	if err != nil {
		return nil, fmt.Errorf("e2e: seal history: %w", err)
	}
	out := make([]byte, 0, len(bundle)+SealedHistoryOverhead)
	out = append(out, fresh.PublicKey().Bytes()...)
	return aead.Seal(out, make([]byte, aead.NonceSize()), bundle, signed), nil
}

// OpenHistory opens a bundle SealHistory sealed to s's identity key, or
// fails with ErrHistorySeal.
func (s *Store) OpenHistory(advSecret, signed, sealed []byte) ([]byte, error) {
	if len(sealed) < SealedHistoryOverhead {
		return nil, fmt.Errorf("e2e: open history: %w: %d bytes", ErrHistorySeal, len(sealed))
	}
	fresh, err := ecdh.X25519().NewPublicKey(sealed[:32])
	if err != nil {
		return nil, fmt.Errorf("e2e: open history: %w: %v", ErrHistorySeal, err)
	}
	own, err := s.agreeing()
	if err != nil {
		return nil, fmt.Errorf("e2e: open history: %w", err)
	}
	shared, err := own.ECDH(fresh)
	if err != nil {
		// A low-order point: no honest phone sends one.
		return nil, fmt.Errorf("e2e: open history: %w: %v", ErrHistorySeal, err)
	}
	aead, err := historyCipher(shared, advSecret)
	if err != nil {
		return nil, fmt.Errorf("e2e: open history: %w", err)
	}
	bundle, err := aead.Open(nil, make([]byte, aead.NonceSize()), sealed[32:], signed)
	if err != nil {
		return nil, fmt.Errorf("e2e: open history: %w", ErrHistorySeal)
	}
	return bundle, nil
}

func historyCipher(shared, advSecret []byte) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, shared, advSecret, pairingHistoryInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// montgomeryKey is a 33-byte Signal public key (decodeKey) as an X25519
// key.
func montgomeryKey(identityKey []byte) (*ecdh.PublicKey, error) {
	k, err := decodeKey(identityKey)
	if err != nil {
		return nil, err
	}
	point := k.PublicKey()
	return ecdh.X25519().NewPublicKey(point[:])
}

// WarmUp does ahead the first-use work a pairing companion meets between
// the phone's offer and its chats (about 25 ms of a page's WebAssembly,
// profiled): the X25519 form of the identity key (OpenHistory), and the
// table crypto/ed25519 builds on its first signature check (the phone's
// account signature). A companion calls it while its QR code waits.
func (s *Store) WarmUp() error {
	if _, err := s.agreeing(); err != nil {
		return fmt.Errorf("e2e: warm up: %w", err)
	}
	// The table is the process's: one check builds it, and a load run
	// pairing thousands of companions pays for that check once.
	var err error
	verifyTable.Do(func() {
		msg := make([]byte, 32)
		rand.Read(msg) // a fresh message: a signature already checked is not checked again
		if !Verify(s.IdentityKey(), msg, s.Sign(msg)) {
			err = errors.New("e2e: warm up: our own signature does not verify")
		}
	})
	return err
}

var verifyTable sync.Once
