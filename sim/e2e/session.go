package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/serialize"
	"go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/signalerror"
	"go.mau.fi/libsignal/state/record"
	"go.mau.fi/libsignal/util/optional"

	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/wire/pb"
)

// ProcessBundle starts an outgoing session with the bundle's device. An
// existing session is archived, still able to decrypt late messages. Until
// the peer answers, Encrypt makes PREKEY_MESSAGEs.
func (s *Store) ProcessBundle(ctx context.Context, b *pb.Bundle) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer recoverInto(&err)
	a := Address{User: b.GetAddress().GetUser(), Device: b.GetAddress().GetDevice()}
	if err := s.processBundle(ctx, a, b); err != nil {
		return fmt.Errorf("e2e: bundle of %s: %w", a, err)
	}
	return nil
}

func (s *Store) processBundle(ctx context.Context, a Address, b *pb.Bundle) error {
	if b.GetAddress() == nil {
		return errors.New("no address")
	}
	ik, err := decodeKey(b.GetIdentityKey())
	if err != nil {
		return fmt.Errorf("identity key: %w", err)
	}
	spk := b.GetSignedPrekey()
	pub, err := decodeKey(spk.GetPublicKey())
	if err != nil {
		return fmt.Errorf("signed prekey: %w", err)
	}
	// libsignal checks this too, but says only "invalid signature".
	if !Verify(b.GetIdentityKey(), spk.GetPublicKey(), spk.GetSignature()) {
		return fmt.Errorf("signed prekey: %w", ErrBadSignature)
	}
	id := optional.NewEmptyUint32()
	var otk ecc.ECPublicKeyable
	if pk := b.GetPrekey(); pk != nil {
		if otk, err = decodeKey(pk.GetPublicKey()); err != nil {
			return fmt.Errorf("prekey %d: %w", pk.GetId(), err)
		}
		id = optional.NewOptionalUint32(pk.GetId())
	}
	bundle := prekey.NewBundle(b.GetRegistrationId(), a.Device, id, spk.GetId(), otk, pub,
		[64]byte(spk.GetSignature()), identity.NewKey(ik))
	return s.builder(a).ProcessBundle(ctx, bundle)
}

// HasSession reports whether there is a session with a. A failing KV
// counts as no session.
func (s *Store) HasSession(a Address) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok, _ := s.sig.ContainsSession(context.Background(), a.signal())
	return ok
}

// DeleteSession forgets the session with a; the next message from a must
// start a new one.
func (s *Store) DeleteSession(a Address) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.sig.DeleteSession(context.Background(), a.signal()); err != nil {
		return fmt.Errorf("e2e: delete session %s: %w", a, err)
	}
	return nil
}

// Encrypt encrypts plaintext for a, with ErrNoSession when there is no
// session to encrypt with (call ProcessBundle first).
func (s *Store) Encrypt(ctx context.Context, to Address, plaintext []byte) (t pb.CipherType, ciphertext []byte, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer recoverInto(&err)
	ok, err := s.sig.ContainsSession(ctx, to.signal())
	if err == nil && !ok {
		err = ErrNoSession
	}
	if err != nil {
		return 0, nil, fmt.Errorf("e2e: encrypt for %s: %w", to, err)
	}
	m, err := session.NewCipher(s.builder(to), to.signal()).Encrypt(ctx, plaintext)
	if err != nil {
		return 0, nil, fmt.Errorf("e2e: encrypt for %s: %w", to, err)
	}
	t = pb.CipherType_SIGNAL_MESSAGE
	if m.Type() == protocol.PREKEY_TYPE {
		t = pb.CipherType_PREKEY_MESSAGE
	}
	return t, m.Serialize(), nil
}

// Decrypt decrypts a message from a device. A PREKEY_MESSAGE starts a new
// session and consumes the one-time prekey it names. A SIGNAL_MESSAGE needs
// a session (ErrNoSession otherwise); one whose key was already used fails
// with ErrDuplicate. Malformed input is an error, never a panic.
func (s *Store) Decrypt(ctx context.Context, from Address, t pb.CipherType, ciphertext []byte) (plaintext []byte, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer recoverInto(&err)
	plaintext, err = s.decrypt(ctx, from, t, ciphertext)
	if errors.Is(err, signalerror.ErrOldCounter) {
		err = fmt.Errorf("%w: %w", ErrDuplicate, err)
	}
	if err != nil {
		return nil, fmt.Errorf("e2e: decrypt %v from %s: %w", t, from, err)
	}
	return plaintext, nil
}

func (s *Store) decrypt(ctx context.Context, from Address, t pb.CipherType, ciphertext []byte) ([]byte, error) {
	// libsignal indexes the version byte without checking.
	if len(ciphertext) == 0 {
		return nil, errors.New("empty ciphertext")
	}
	switch t {
	case pb.CipherType_PREKEY_MESSAGE:
		m, err := protocol.NewPreKeySignalMessageFromBytes(ciphertext, s.sig.ser.PreKeySignalMessage, s.sig.ser.SignalMessage)
		if err != nil {
			return nil, err
		}
		r, err := s.sig.LoadSession(ctx, from.signal())
		if err != nil {
			return nil, err
		}
		// Process starts a session from the message's base key, unless one
		// exists, archiving the current one.
		oneTime, err := s.builder(from).Process(ctx, r, m)
		if err != nil {
			return nil, err
		}
		pt, err := s.decryptRecord(ctx, from, r.Serialize(), m.WhisperMessage())
		if err != nil {
			return nil, err
		}
		if !oneTime.IsEmpty {
			return pt, s.sig.RemovePreKey(ctx, oneTime.Value)
		}
		return pt, nil
	case pb.CipherType_SIGNAL_MESSAGE:
		m, err := protocol.NewSignalMessageFromBytes(ciphertext, s.sig.ser.SignalMessage)
		if err != nil {
			return nil, err
		}
		raw, ok, err := s.sig.kv.Get(prefixSession + from.signal().String())
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, ErrNoSession
		}
		return s.decryptRecord(ctx, from, raw, m)
	default:
		return nil, errors.New("unknown cipher type")
	}
}

// decryptRecord decrypts m with the current state of the serialized session
// record raw, or else with an archived one, which it makes current, and
// stores the record. libsignal's own Cipher tries each state in place: a
// state that fails still has its ratchet advanced by the message's key, and
// that broken state is saved when another one succeeds, so sessions that two
// devices started at once (each archiving the other's) stop decrypting.
// Here every attempt runs on a fresh copy and only the successful one is
// stored.
func (s *Store) decryptRecord(ctx context.Context, from Address, raw []byte, m *protocol.SignalMessage) ([]byte, error) {
	c := session.NewCipher(s.builder(from), from.signal())
	for i := 0; ; i++ {
		r, err := record.NewSessionFromBytes(raw, s.sig.ser.Session, s.sig.ser.State)
		if err != nil {
			return nil, fmt.Errorf("session %s: %w", from, err)
		}
		previous := r.PreviousSessionStates()
		if i > len(previous) {
			return nil, signalerror.ErrNoValidSessions
		}
		st := r.SessionState()
		if i > 0 {
			st = previous[i-1]
		}
		pt, _, err := c.DecryptWithState(ctx, st, m)
		if errors.Is(err, signalerror.ErrOldCounter) {
			return nil, err
		}
		if err != nil {
			continue
		}
		if i > 0 {
			if r, err = promote(r, i-1, s.sig.ser); err != nil {
				return nil, fmt.Errorf("session %s: %w", from, err)
			}
		}
		if err := s.sig.SaveIdentity(ctx, from.signal(), r.SessionState().RemoteIdentityKey()); err != nil {
			return nil, err
		}
		return pt, s.sig.StoreSession(ctx, from.signal(), r)
	}
}

// promote makes archived state i of r current, archiving the current one
// first, within libsignal's bound of 40 archived states.
func promote(r *record.Session, i int, ser *serialize.Serializer) (*record.Session, error) {
	st := r.Structure()
	current := st.PreviousStates[i]
	previous := append([]*record.StateStructure{st.SessionState}, slices.Delete(st.PreviousStates, i, i+1)...)
	st.SessionState, st.PreviousStates = current, previous[:min(len(previous), maxArchivedStates)]
	return record.NewSessionFromStructure(st, ser.Session, ser.State)
}

// maxArchivedStates is libsignal's bound on a record's archived states.
const maxArchivedStates = 40

func (s *Store) builder(a Address) *session.Builder {
	return session.NewBuilder(s.sig, s.sig, s.sig, s.sig, a.signal(), s.sig.ser)
}

func (a Address) signal() *protocol.SignalAddress {
	return protocol.NewSignalAddress(a.User, a.Device)
}

// recoverInto turns a libsignal panic on malformed input into an error.
// libsignal writes a session only after it has decrypted, so a panic leaves
// the stored state as it was.
func recoverInto(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("e2e: libsignal panicked on malformed input: %v", r)
	}
}

// CorruptSession leaves the session with a as a corrupted store or a bad
// restore would: still there, but matching nothing a has, so what a sends
// fails its MAC, and what is encrypted with it a cannot read. For
// simulations of field failures.
func (s *Store) CorruptSession(ctx context.Context, a Address) (err error) {
	stranger, err := Open(kv.NewMem())
	if err != nil {
		return err
	}
	keys, err := stranger.Keys(1)
	if err != nil {
		return err
	}
	b := &pb.Bundle{Address: &pb.Address{User: a.User, Device: a.Device}, RegistrationId: keys.GetRegistrationId(),
		IdentityKey: keys.GetIdentityKey(), SignedPrekey: keys.GetSignedPrekey(), Prekey: keys.GetPrekeys()[0]}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer recoverInto(&err)
	if err := s.processBundle(ctx, a, b); err != nil {
		return fmt.Errorf("e2e: corrupt session %s: %w", a, err)
	}
	r, err := s.sig.LoadSession(ctx, a.signal())
	if err != nil {
		return fmt.Errorf("e2e: corrupt session %s: %w", a, err)
	}
	// Only the stranger's state: no archived one that would still decrypt.
	return s.sig.StoreSession(ctx, a.signal(), record.NewSessionFromState(r.SessionState(), s.sig.ser.Session))
}

// PeerIdentity is the identity key a's last message or bundle came with,
// if any.
func (s *Store) PeerIdentity(a Address) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sig.kv.Get(prefixPeerID + a.signal().String())
}
