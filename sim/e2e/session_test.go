package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/wire/pb"
)

var (
	aliceAddr = Address{User: "+15550100", Device: 0}
	bobAddr   = Address{User: "+15550101", Device: 2}
)

func newStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(kv.NewMem())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// bundle is what the relay would hand out for s at a: its keys with one
// fresh one-time prekey, or none.
func bundle(t testing.TB, s *Store, a Address, withPreKey bool) *pb.Bundle {
	t.Helper()
	n := 0
	if withPreKey {
		n = 1
	}
	k, err := s.Keys(n)
	if err != nil {
		t.Fatal(err)
	}
	b := &pb.Bundle{
		Address:        &pb.Address{User: a.User, Device: a.Device},
		RegistrationId: k.RegistrationId,
		IdentityKey:    k.IdentityKey,
		SignedPrekey:   k.SignedPrekey,
	}
	if withPreKey {
		b.Prekey = k.Prekeys[0]
	}
	return b
}

// peer is one side of a conversation.
type peer struct {
	s    *Store
	addr Address
}

// send encrypts text from one peer to the other, checks the cipher type
// and that the other side reads the text back.
func send(t testing.TB, from, to peer, text string, want pb.CipherType) {
	t.Helper()
	ct, c := encrypt(t, from, to, text)
	if ct != want {
		t.Errorf("%s → %s %q: cipher type %v, want %v", from.addr, to.addr, text, ct, want)
	}
	got, err := to.s.Decrypt(context.Background(), from.addr, ct, c)
	if err != nil {
		t.Fatalf("%s → %s %q: %v", from.addr, to.addr, text, err)
	}
	if string(got) != text {
		t.Fatalf("%s → %s: decrypted %q, want %q", from.addr, to.addr, got, text)
	}
}

func encrypt(t testing.TB, from, to peer, text string) (pb.CipherType, []byte) {
	t.Helper()
	ct, c, err := from.s.Encrypt(context.Background(), to.addr, []byte(text))
	if err != nil {
		t.Fatalf("%s → %s %q: %v", from.addr, to.addr, text, err)
	}
	return ct, c
}

// start makes alice and bob with a session from alice to bob.
func start(t testing.TB, withPreKey bool) (alice, bob peer) {
	t.Helper()
	alice, bob = peer{newStore(t), aliceAddr}, peer{newStore(t), bobAddr}
	if err := alice.s.ProcessBundle(context.Background(), bundle(t, bob.s, bob.addr, withPreKey)); err != nil {
		t.Fatal(err)
	}
	return alice, bob
}

func TestSessionRoundTrip(t *testing.T) {
	const (
		pre = pb.CipherType_PREKEY_MESSAGE
		sig = pb.CipherType_SIGNAL_MESSAGE
	)
	// Alice sends prekey messages until bob's first answer acknowledges the
	// session; from then on both sides send plain signal messages.
	steps := []struct {
		fromAlice bool
		want      pb.CipherType
	}{
		{true, pre}, {true, pre}, {false, sig}, {true, sig}, {true, sig},
		{false, sig}, {false, sig}, {true, sig},
	}
	for _, withPreKey := range []bool{true, false} {
		t.Run(fmt.Sprintf("one-time prekey %v", withPreKey), func(t *testing.T) {
			alice, bob := start(t, withPreKey)
			before := bob.s.PreKeyCount()
			for i, st := range steps {
				from, to := alice, bob
				if !st.fromAlice {
					from, to = bob, alice
				}
				send(t, from, to, fmt.Sprintf("message %d", i), st.want)
			}
			wantLeft := before
			if withPreKey {
				wantLeft--
			}
			if n := bob.s.PreKeyCount(); n != wantLeft {
				t.Errorf("bob has %d one-time prekeys left, want %d", n, wantLeft)
			}
			if !alice.s.HasSession(bob.addr) || !bob.s.HasSession(alice.addr) {
				t.Error("a side lacks the session after the conversation")
			}
		})
	}
}

func TestDeleteSession(t *testing.T) {
	ctx := context.Background()
	alice, bob := start(t, true)
	send(t, alice, bob, "hi", pb.CipherType_PREKEY_MESSAGE)
	send(t, bob, alice, "hello", pb.CipherType_SIGNAL_MESSAGE)

	if err := bob.s.DeleteSession(alice.addr); err != nil {
		t.Fatal(err)
	}
	if bob.s.HasSession(alice.addr) {
		t.Fatal("bob still has a session after DeleteSession")
	}
	ct, c := encrypt(t, alice, bob, "lost")
	if _, err := bob.s.Decrypt(ctx, alice.addr, ct, c); !errors.Is(err, ErrNoSession) {
		t.Fatalf("decrypt without session: %v, want ErrNoSession", err)
	}
	if _, _, err := bob.s.Encrypt(ctx, alice.addr, []byte("x")); !errors.Is(err, ErrNoSession) {
		t.Fatalf("encrypt without session: %v, want ErrNoSession", err)
	}

	// What a retry receipt leads to: alice starts over from a fresh bundle.
	if err := alice.s.ProcessBundle(ctx, bundle(t, bob.s, bob.addr, true)); err != nil {
		t.Fatal(err)
	}
	send(t, alice, bob, "again", pb.CipherType_PREKEY_MESSAGE)
	send(t, bob, alice, "got it", pb.CipherType_SIGNAL_MESSAGE)
	send(t, alice, bob, "good", pb.CipherType_SIGNAL_MESSAGE)
}

func TestDecryptDuplicate(t *testing.T) {
	ctx := context.Background()
	alice, bob := start(t, true)
	for _, want := range []pb.CipherType{pb.CipherType_PREKEY_MESSAGE, pb.CipherType_SIGNAL_MESSAGE} {
		ct, c := encrypt(t, alice, bob, "once")
		if ct != want {
			t.Fatalf("cipher type %v, want %v", ct, want)
		}
		if _, err := bob.s.Decrypt(ctx, alice.addr, ct, c); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.s.Decrypt(ctx, alice.addr, ct, c); !errors.Is(err, ErrDuplicate) {
			t.Errorf("second decrypt of a %v: %v, want ErrDuplicate", ct, err)
		}
		send(t, bob, alice, "ack", pb.CipherType_SIGNAL_MESSAGE)
	}
}

func TestDecryptGarbage(t *testing.T) {
	ctx := context.Background()
	alice, bob := start(t, true)
	pre, preMsg := encrypt(t, alice, bob, "first")
	_, sigMsg := encrypt(t, alice, bob, "second")
	r := rand.New(rand.NewPCG(1, 2))
	inputs := [][]byte{nil, {}, {0x33}, {0x33, 0x08}}
	for range 200 {
		b := make([]byte, r.IntN(200))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		inputs = append(inputs, b)
	}
	// Valid messages cut short or with one bit flipped reach deeper into
	// libsignal than random bytes do.
	for _, m := range [][]byte{preMsg, sigMsg} {
		for i := range m {
			inputs = append(inputs, m[:i])
			f := bytes.Clone(m)
			f[i] ^= 1 << r.IntN(8)
			inputs = append(inputs, f)
		}
	}
	for _, ct := range []pb.CipherType{pb.CipherType_PREKEY_MESSAGE, pb.CipherType_SIGNAL_MESSAGE, pb.CipherType_CIPHER_UNSPECIFIED} {
		for _, in := range inputs {
			// A flipped bit in a protobuf tag can leave a message that
			// still decrypts; only the plaintext matters then.
			if got, err := bob.s.Decrypt(ctx, alice.addr, ct, in); err == nil && string(got) != "first" && string(got) != "second" {
				t.Errorf("Decrypt(%v, %x) = %q, want an error", ct, in, got)
			}
		}
	}
	// Garbage must not have damaged the session.
	if got, err := bob.s.Decrypt(ctx, alice.addr, pre, preMsg); err != nil && !errors.Is(err, ErrDuplicate) {
		t.Fatalf("real message after garbage: %q, %v", got, err)
	}
	send(t, bob, alice, "still here", pb.CipherType_SIGNAL_MESSAGE)
	send(t, alice, bob, "me too", pb.CipherType_SIGNAL_MESSAGE)
}

func TestProcessBundleRejects(t *testing.T) {
	bob := newStore(t)
	eve := newStore(t)
	tests := []struct {
		name   string
		mutate func(b *pb.Bundle)
		is     error
	}{
		{"no address", func(b *pb.Bundle) { b.Address = nil }, nil},
		{"short identity key", func(b *pb.Bundle) { b.IdentityKey = b.IdentityKey[1:] }, nil},
		{"no signed prekey", func(b *pb.Bundle) { b.SignedPrekey = nil }, nil},
		{"short signature", func(b *pb.Bundle) { b.SignedPrekey.Signature = b.SignedPrekey.Signature[:10] }, ErrBadSignature},
		{"signed by another key", func(b *pb.Bundle) { b.SignedPrekey.Signature = eve.Sign(b.SignedPrekey.PublicKey) }, ErrBadSignature},
		{"bad one-time prekey", func(b *pb.Bundle) { b.Prekey.PublicKey = []byte{5} }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alice := newStore(t)
			b := bundle(t, bob, bobAddr, true)
			tt.mutate(b)
			err := alice.ProcessBundle(context.Background(), b)
			if err == nil || tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("ProcessBundle = %v, want an error (%v)", err, tt.is)
			}
			if alice.HasSession(bobAddr) {
				t.Error("a rejected bundle left a session")
			}
		})
	}
}

func BenchmarkEncryptDecrypt(b *testing.B) {
	ctx := context.Background()
	alice, bob := start(b, true)
	send(b, alice, bob, "hi", pb.CipherType_PREKEY_MESSAGE)
	send(b, bob, alice, "hi", pb.CipherType_SIGNAL_MESSAGE)
	msg := bytes.Repeat([]byte("x"), 100)
	for b.Loop() {
		ct, c, err := alice.s.Encrypt(ctx, bob.addr, msg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bob.s.Decrypt(ctx, alice.addr, ct, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFirstDecrypt is a companion's first message from its phone: a
// prekey message, so X3DH and the session's first ratchet step.
func BenchmarkFirstDecrypt(b *testing.B) {
	ctx := context.Background()
	msg := bytes.Repeat([]byte("x"), 300)
	for b.Loop() {
		b.StopTimer()
		alice, bob := start(b, true)
		ct, c := encrypt(b, alice, bob, string(msg))
		b.StartTimer()
		if _, err := bob.s.Decrypt(ctx, alice.addr, ct, c); err != nil {
			b.Fatal(err)
		}
	}
}
