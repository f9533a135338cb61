package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/serialize"
	"go.mau.fi/libsignal/state/record"
	"go.mau.fi/libsignal/state/store"

	"github.com/linksim/linksim/sim/kv"
)

// signalStore implements libsignal's pairwise stores (identity, prekey,
// signed prekey, session) on a kv.KV. It is a separate type from Store
// because libsignal's method names (DeleteSession) clash with Store's, and
// its interfaces are not what a device should call. It has no lock of its
// own: Store serialises every use.
//
// Group sender keys, the rest of store.SignalProtocol, are not kept: linksim
// has no groups.
type signalStore struct {
	kv   kv.KV
	ser  *serialize.Serializer
	pair *identity.KeyPair
	reg  uint32
}

var (
	_ store.IdentityKey  = (*signalStore)(nil)
	_ store.PreKey       = (*signalStore)(nil)
	_ store.SignedPreKey = (*signalStore)(nil)
	_ store.Session      = (*signalStore)(nil)
)

func (s *signalStore) GetIdentityKeyPair() *identity.KeyPair { return s.pair }
func (s *signalStore) GetLocalRegistrationID() uint32        { return s.reg }

// IsTrustedIdentity trusts every key: a relinked device has new keys, and
// the relay vouches for them with device identity signatures.
func (s *signalStore) IsTrustedIdentity(context.Context, *protocol.SignalAddress, *identity.Key) (bool, error) {
	return true, nil
}

// SaveIdentity records the peer's latest key. libsignal calls it on every
// encrypt and decrypt, so an unchanged key is not rewritten.
func (s *signalStore) SaveIdentity(_ context.Context, a *protocol.SignalAddress, k *identity.Key) error {
	key := prefixPeerID + a.String()
	old, ok, err := s.kv.Get(key)
	if err != nil {
		return err
	}
	if ok && bytes.Equal(old, k.Serialize()) {
		return nil
	}
	return s.kv.Put(key, k.Serialize())
}

// One-time and signed prekeys are not kept in libsignal's record format:
// its decoder takes the first 32 bytes of the 33-byte public key as the key,
// so a reloaded record has a wrong public half. Their private keys are kept
// instead, and the public keys derived again.

// LoadPreKey returns nil for an unknown id, which libsignal reports as a
// missing one-time key.
func (s *signalStore) LoadPreKey(_ context.Context, id uint32) (*record.PreKey, error) {
	b, ok, err := s.kv.Get(idKey(prefixPreKey, id))
	if err != nil || !ok {
		return nil, err
	}
	if len(b) != 32 {
		return nil, fmt.Errorf("prekey %d is %d bytes, want 32", id, len(b))
	}
	return record.NewPreKey(id, createKeyPair(b), s.ser.PreKeyRecord), nil
}

func (s *signalStore) StorePreKey(_ context.Context, id uint32, r *record.PreKey) error {
	e := preKeyEntry(id, r)
	return s.kv.Put(e.Key, e.Value)
}

// preKeyEntry is how prekey id is stored: its private key.
func preKeyEntry(id uint32, r *record.PreKey) kv.Entry {
	priv := r.KeyPair().PrivateKey().Serialize()
	return kv.Entry{Key: idKey(prefixPreKey, id), Value: priv[:]}
}

func (s *signalStore) ContainsPreKey(_ context.Context, id uint32) (bool, error) {
	_, ok, err := s.kv.Get(idKey(prefixPreKey, id))
	return ok, err
}

func (s *signalStore) RemovePreKey(_ context.Context, id uint32) error {
	return s.kv.Delete(idKey(prefixPreKey, id))
}

func (s *signalStore) LoadSignedPreKey(_ context.Context, id uint32) (*record.SignedPreKey, error) {
	b, ok, err := s.kv.Get(idKey(prefixSigned, id))
	if err != nil || !ok {
		return nil, err
	}
	return s.signedPreKey(id, b)
}

// signedPreKey decodes a stored signed prekey: private key, then signature.
func (s *signalStore) signedPreKey(id uint32, b []byte) (*record.SignedPreKey, error) {
	if len(b) != 32+64 {
		return nil, fmt.Errorf("signed prekey %d is %d bytes, want 96", id, len(b))
	}
	return record.NewSignedPreKey(id, 0, createKeyPair(b[:32]), [64]byte(b[32:]), s.ser.SignedPreKeyRecord), nil
}

func (s *signalStore) LoadSignedPreKeys(context.Context) ([]*record.SignedPreKey, error) {
	var out []*record.SignedPreKey
	err := s.kv.Scan(prefixSigned, func(k string, b []byte) error {
		id, err := strconv.ParseUint(strings.TrimPrefix(k, prefixSigned), 10, 32)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		r, err := s.signedPreKey(uint32(id), b)
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

func (s *signalStore) StoreSignedPreKey(_ context.Context, id uint32, r *record.SignedPreKey) error {
	priv, sig := r.KeyPair().PrivateKey().Serialize(), r.Signature()
	return s.kv.Put(idKey(prefixSigned, id), append(priv[:], sig[:]...))
}

func (s *signalStore) ContainsSignedPreKey(_ context.Context, id uint32) (bool, error) {
	_, ok, err := s.kv.Get(idKey(prefixSigned, id))
	return ok, err
}

func (s *signalStore) RemoveSignedPreKey(_ context.Context, id uint32) error {
	return s.kv.Delete(idKey(prefixSigned, id))
}

// LoadSession returns a fresh, unsaved record when there is no session, as
// libsignal expects.
func (s *signalStore) LoadSession(_ context.Context, a *protocol.SignalAddress) (*record.Session, error) {
	b, ok, err := s.kv.Get(prefixSession + a.String())
	if err != nil {
		return nil, err
	}
	if !ok {
		return record.NewSession(s.ser.Session, s.ser.State), nil
	}
	r, err := record.NewSessionFromBytes(b, s.ser.Session, s.ser.State)
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", a, err)
	}
	return r, nil
}

// GetSubDeviceSessions lists the devices other than the phone (device 0)
// that name has sessions with.
func (s *signalStore) GetSubDeviceSessions(_ context.Context, name string) ([]uint32, error) {
	var ids []uint32
	p := prefixSession + name + ":"
	err := s.kv.Scan(p, func(k string, _ []byte) error {
		// A user whose name extends this one ("a:b" after "a") leaves a
		// non-numeric rest; it is not ours.
		id, err := strconv.ParseUint(strings.TrimPrefix(k, p), 10, 32)
		if err == nil && id != 0 {
			ids = append(ids, uint32(id))
		}
		return nil
	})
	return ids, err
}

func (s *signalStore) StoreSession(_ context.Context, a *protocol.SignalAddress, r *record.Session) error {
	return s.kv.Put(prefixSession+a.String(), r.Serialize())
}

func (s *signalStore) ContainsSession(_ context.Context, a *protocol.SignalAddress) (bool, error) {
	_, ok, err := s.kv.Get(prefixSession + a.String())
	return ok, err
}

func (s *signalStore) DeleteSession(_ context.Context, a *protocol.SignalAddress) error {
	return s.kv.Delete(prefixSession + a.String())
}

func (s *signalStore) DeleteAllSessions(context.Context) error {
	return s.kv.DeletePrefix(prefixSession)
}
