package e2e

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/state/record"
	"go.mau.fi/libsignal/util/keyhelper"
	"go.mau.fi/libsignal/util/medium"

	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/wire/pb"
)

// signedPreKeyID is the only signed prekey a Store makes; linksim does not
// rotate it.
const signedPreKeyID = 1

// Store is one device's Signal state, kept in a kv.KV under Prefix. It is
// safe for concurrent use; operations run one at a time. Open one Store per
// KV: two would not see each other's locks.
type Store struct {
	// mu makes libsignal's load-modify-store of a session, and the
	// allocation of prekey ids, atomic.
	mu  sync.Mutex
	sig *signalStore
	// agreeing is the identity key for X25519 (OpenHistory), made once:
	// making it computes its public key, a scalar multiplication.
	agreeing func() (*ecdh.PrivateKey, error)
}

// Open loads the device's Signal state from db, or, on first use, creates
// an identity key pair and a registration id. Signed prekey 1 is made by
// the first Keys: nobody needs it before the keys are registered, and a
// companion shows its first QR code (which carries the identity key)
// sooner without the signing.
func Open(db kv.KV) (*Store, error) {
	s := &Store{sig: &signalStore{kv: db, ser: newSerializer()}}
	s.agreeing = sync.OnceValues(func() (*ecdh.PrivateKey, error) {
		private := s.sig.pair.PrivateKey().Serialize()
		return ecdh.X25519().NewPrivateKey(private[:])
	})
	priv, ok, err := db.Get(keyIdentity)
	if err != nil {
		return nil, fmt.Errorf("e2e: open: %w", err)
	}
	if !ok {
		if err := s.create(); err != nil {
			return nil, fmt.Errorf("e2e: open: create identity: %w", err)
		}
		return s, nil
	}
	if len(priv) != 32 {
		return nil, fmt.Errorf("e2e: open: stored identity key is %d bytes, want 32", len(priv))
	}
	reg, ok, err := db.Get(keyRegID)
	if err != nil || !ok || len(reg) != 4 {
		return nil, fmt.Errorf("e2e: open: registration id missing or corrupt (err %v)", err)
	}
	s.sig.pair = keyPair(createKeyPair(priv))
	s.sig.reg = binary.BigEndian.Uint32(reg)
	return s, nil
}

// create makes a new identity. The identity key is written last: until it
// is there, Open starts over, so a crash cannot leave half an identity.
func (s *Store) create() error {
	kp, err := generateKeyPair()
	if err != nil {
		return err
	}
	s.sig.pair = keyPair(kp)
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	// Signal keeps registration ids in 1..16380.
	s.sig.reg = 1 + uint32(binary.BigEndian.Uint16(b[:]))%16380
	if err := s.sig.kv.Put(keyRegID, binary.BigEndian.AppendUint32(nil, s.sig.reg)); err != nil {
		return err
	}
	priv := kp.PrivateKey().Serialize()
	return s.sig.kv.Put(keyIdentity, priv[:])
}

func keyPair(kp *ecc.ECKeyPair) *identity.KeyPair {
	return identity.NewKeyPair(identity.NewKey(kp.PublicKey()), kp.PrivateKey())
}

// IdentityKey returns the public identity key: 33 bytes, 0x05 then the
// Curve25519 point.
func (s *Store) IdentityKey() []byte {
	return s.sig.pair.PublicKey().Serialize()
}

// RegistrationID returns the id made when the identity was, in 1..16380.
func (s *Store) RegistrationID() uint32 {
	return s.sig.reg
}

// Keys returns the public keys to register with the relay: identity,
// registration id, signed prekey, and prekeys new one-time prekeys.
func (s *Store) Keys(prekeys int) (*pb.SignalKeys, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	spk, err := s.signedPreKey()
	if err != nil {
		return nil, fmt.Errorf("e2e: keys: signed prekey %d: %w", signedPreKeyID, err)
	}
	pks, err := s.newPreKeys(prekeys)
	if err != nil {
		return nil, fmt.Errorf("e2e: keys: %w", err)
	}
	sig := spk.Signature()
	return &pb.SignalKeys{
		RegistrationId: s.sig.reg,
		IdentityKey:    s.IdentityKey(),
		SignedPrekey: &pb.SignedPreKey{
			Id:        spk.ID(),
			PublicKey: spk.KeyPair().PublicKey().Serialize(),
			Signature: sig[:],
		},
		Prekeys: pks,
	}, nil
}

// signedPreKey loads signed prekey 1, making and storing it on first use.
func (s *Store) signedPreKey() (*record.SignedPreKey, error) {
	spk, err := s.sig.LoadSignedPreKey(context.Background(), signedPreKeyID)
	if err != nil || spk != nil {
		return spk, err
	}
	spk, err = keyhelper.GenerateSignedPreKey(s.sig.pair, signedPreKeyID, s.sig.ser.SignedPreKeyRecord)
	if err != nil {
		return nil, err
	}
	return spk, s.sig.StoreSignedPreKey(context.Background(), signedPreKeyID, spk)
}

// NewPreKeys makes and stores n one-time prekeys and returns their public
// halves, to upload. Ids continue from the last one made and are never
// reused, even after the prekey is consumed.
func (s *Store) NewPreKeys(n int) ([]*pb.PreKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pks, err := s.newPreKeys(n)
	if err != nil {
		return nil, fmt.Errorf("e2e: new prekeys: %w", err)
	}
	return pks, nil
}

func (s *Store) newPreKeys(n int) ([]*pb.PreKey, error) {
	if n < 0 {
		return nil, fmt.Errorf("negative count %d", n)
	}
	next := uint32(1)
	b, ok, err := s.sig.kv.Get(keyNextPreKeyID)
	if err != nil {
		return nil, err
	}
	if ok && len(b) == 4 {
		next = binary.BigEndian.Uint32(b)
	}
	// Prekey ids are 24-bit on the wire, and libsignal treats the largest
	// as "none".
	if uint64(next)+uint64(n) > uint64(medium.MaxValue) {
		return nil, errors.New("prekey ids exhausted")
	}
	// Advance the counter before storing the keys: a crash in between
	// leaves a gap in the ids, never a reused id.
	if err := s.sig.kv.Put(keyNextPreKeyID, binary.BigEndian.AppendUint32(nil, next+uint32(n))); err != nil {
		return nil, err
	}
	out := make([]*pb.PreKey, 0, n)
	stored := make([]kv.Entry, 0, n)
	for id := next; id < next+uint32(n); id++ {
		kp, err := generateKeyPair()
		if err != nil {
			return nil, err
		}
		stored = append(stored, preKeyEntry(id, record.NewPreKey(id, kp, s.sig.ser.PreKeyRecord)))
		out = append(out, &pb.PreKey{Id: id, PublicKey: kp.PublicKey().Serialize()})
	}
	// One batch: in a browser each write is an IndexedDB transaction, and
	// a hundred of them one after another took 112 ms, one took 6 ms.
	if err := kv.PutAll(s.sig.kv, stored); err != nil {
		return nil, err
	}
	return out, nil
}

// PreKeyCount returns how many one-time prekeys are stored and unused. A
// failing KV counts as none left, which at worst uploads more.
func (s *Store) PreKeyCount() int {
	n := 0
	s.sig.kv.Scan(prefixPreKey, func(string, []byte) error { n++; return nil })
	return n
}

// Sign returns the 64-byte XEdDSA signature of msg by the identity key.
func (s *Store) Sign(msg []byte) []byte {
	sig := ecc.CalculateSignature(s.sig.pair.PrivateKey(), msg)
	return sig[:]
}

// Verify reports whether sig is an XEdDSA signature of msg by identityKey,
// in its 33-byte form.
func Verify(identityKey, msg, sig []byte) bool {
	seen := verifiedKey(identityKey, msg, sig)
	if verified.has(seen) {
		return true
	}
	k, err := decodeKey(identityKey)
	if err != nil || len(sig) != 64 {
		return false
	}
	if !ecc.VerifySignature(k, msg, [64]byte(sig)) {
		return false
	}
	verified.add(seen)
	return true
}

// verified remembers the signatures Verify found good, across every Store
// of the process: the same account's signed device list and device
// identities are checked by every device that writes to that account
// (a bundle fetch checks two or three), and a signature check is ~40x
// the cost of the hash that finds it here. Only good ones are kept, so a
// bad signature is checked each time.
var verified = &verifiedSet{m: make(map[[sha256.Size]byte]struct{})}

// maxVerified bounds verified: ~64 bytes an entry, 4 MiB at most; when
// full it starts over.
const maxVerified = 1 << 16

type verifiedSet struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]struct{}
}

func (v *verifiedSet) has(k [sha256.Size]byte) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.m[k]
	return ok
}

func (v *verifiedSet) add(k [sha256.Size]byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.m) >= maxVerified {
		clear(v.m)
	}
	v.m[k] = struct{}{}
}

// verifiedKey names one (key, message, signature): each part with its
// length, so no two triples run together into the same bytes.
func verifiedKey(identityKey, msg, sig []byte) [sha256.Size]byte {
	h := sha256.New()
	for _, part := range [][]byte{identityKey, msg, sig} {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(part))))
		h.Write(part)
	}
	return [sha256.Size]byte(h.Sum(nil))
}

// decodeKey parses a 33-byte type-prefixed public key. libsignal's
// DecodePoint panics on empty input and accepts short keys.
func decodeKey(b []byte) (ecc.ECPublicKeyable, error) {
	if len(b) != 33 {
		return nil, fmt.Errorf("public key is %d bytes, want 33", len(b))
	}
	if b[0] != ecc.DjbType {
		return nil, fmt.Errorf("public key type %#x, want %#x", b[0], ecc.DjbType)
	}
	return ecc.NewDjbECPublicKey([32]byte(b[1:])), nil
}
