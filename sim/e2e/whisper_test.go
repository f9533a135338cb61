package e2e

import (
	"bytes"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/serialize"
	"go.mau.fi/libsignal/util/optional"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/linksim/linksim/sim/wire/pb"
)

// TestWhisperCodecWritesLibsignalBytes checks that both envelopes are
// written to the bytes libsignal's protobuf serializers write, field for
// field (nil, empty and full byte fields, zero and largest numbers, with and
// without version, MAC and one-time prekey), and that those bytes read
// back as libsignal reads them.
func TestWhisperCodecWritesLibsignalBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		sm := &protocol.SignalMessageStructure{
			Version:         pick(rng, 0, 3, 15),
			RatchetKey:      someBytes(rng),
			Counter:         pick[uint32](rng, 0, 1, 300, math.MaxUint32),
			PreviousCounter: pick[uint32](rng, 0, 127, 128, math.MaxUint32),
			CipherText:      someBytes(rng),
			Mac:             pick(rng, nil, bytes.Repeat([]byte{0xAC}, protocol.MacLength)),
		}
		want := (&serialize.ProtoBufSignalMessageSerializer{}).Serialize(sm)
		if got := (signalMessageCodec{}).Serialize(sm); !bytes.Equal(got, want) {
			t.Fatalf("signal message %d %+v:\n got %x\nwant %x", i, sm, got, want)
		}
		if sm.Version != 0 && sm.Mac != nil {
			checkSignalMessageReads(t, want)
		}

		pk := &protocol.PreKeySignalMessageStructure{
			Version:        pick(rng, 3, 15),
			RegistrationID: pick[uint32](rng, 0, 1, 16380, math.MaxUint32),
			PreKeyID: pick(rng, nil, optional.NewEmptyUint32(),
				optional.NewOptionalUint32(1), optional.NewOptionalUint32(1<<24-2)),
			SignedPreKeyID: pick[uint32](rng, 0, 1, math.MaxUint32),
			BaseKey:        someBytes(rng),
			IdentityKey:    someBytes(rng),
			Message:        someBytes(rng),
		}
		want = (&serialize.ProtoBufPreKeySignalMessageSerializer{}).Serialize(pk)
		if got := (preKeyMessageCodec{}).Serialize(pk); !bytes.Equal(got, want) {
			t.Fatalf("prekey signal message %d %+v:\n got %x\nwant %x", i, pk, got, want)
		}
		checkPreKeyMessageReads(t, want)
	}
}

// TestWhisperCodecCarriesSessions checks the codec on real envelopes: a
// prekey message and signal messages both ways decrypt, and each reads and
// writes again to the bytes sent.
func TestWhisperCodecCarriesSessions(t *testing.T) {
	alice, bob := start(t, true)
	for _, m := range []struct {
		from, to peer
		typ      pb.CipherType
	}{
		{alice, bob, pb.CipherType_PREKEY_MESSAGE},
		{bob, alice, pb.CipherType_SIGNAL_MESSAGE},
		{alice, bob, pb.CipherType_SIGNAL_MESSAGE},
	} {
		typ, ct := encrypt(t, m.from, m.to, "hi")
		var again []byte
		switch typ {
		case pb.CipherType_PREKEY_MESSAGE:
			checkPreKeyMessageReads(t, ct)
			s, _ := preKeyMessageCodec{}.Deserialize(ct)
			again = preKeyMessageCodec{}.Serialize(s)
		default:
			checkSignalMessageReads(t, ct)
			s, _ := signalMessageCodec{}.Deserialize(ct)
			again = signalMessageCodec{}.Serialize(s)
		}
		if typ != m.typ || !bytes.Equal(again, ct) {
			t.Errorf("%v, want %v; read and written again:\n got %x\nwant %x", typ, m.typ, again, ct)
		}
		if got, err := m.to.s.Decrypt(t.Context(), m.from.addr, typ, ct); err != nil || string(got) != "hi" {
			t.Fatalf("%s → %s: decrypted %q (%v), want \"hi\"", m.from.addr, m.to.addr, got, err)
		}
	}
}

// FuzzWhisperCodecReads checks that any bytes read as libsignal reads them:
// the same structure, or an error from both.
func FuzzWhisperCodecReads(f *testing.F) {
	f.Add([]byte("3\x0a\x02ab\x10\x01\x18\x00\x22\x00macmacma"))
	f.Add([]byte("3\x08\x05\x12\x01k\x1a\x00\x22\x03msg\x28\x07\x30\x01\x08\x00"))
	f.Add([]byte("3\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13"))
	// Field numbers just past the largest valid one, and the largest.
	for _, num := range []protowire.Number{protowire.MaxValidNumber + 1, protowire.MaxValidNumber} {
		b := protowire.AppendTag([]byte("3"), num, protowire.VarintType)
		f.Add(append(protowire.AppendVarint(b, 1), "macmacma"...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkSignalMessageReads(t, b)
		if len(b) > 0 { // libsignal indexes b[0] unchecked
			checkPreKeyMessageReads(t, b)
		}
	})
}

func checkSignalMessageReads(t *testing.T, b []byte) {
	t.Helper()
	checkReads(t, "signal message", b, (&serialize.ProtoBufSignalMessageSerializer{}).Deserialize, signalMessageCodec{}.Deserialize)
}

func checkPreKeyMessageReads(t *testing.T, b []byte) {
	t.Helper()
	checkReads(t, "prekey signal message", b, (&serialize.ProtoBufPreKeySignalMessageSerializer{}).Deserialize, preKeyMessageCodec{}.Deserialize)
}

// checkReads fails unless ours reads b as libsignal's serializer does.
func checkReads[T any](t *testing.T, what string, b []byte, libsignal, ours func([]byte) (T, error)) {
	t.Helper()
	want, wantErr := libsignal(b)
	got, err := ours(b)
	if (err != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
		t.Fatalf("%s %x reads as %+v (error %v), libsignal reads %+v (error %v)", what, b, got, err, want, wantErr)
	}
}

func pick[T any](rng *rand.Rand, vs ...T) T { return vs[rng.IntN(len(vs))] }

// someBytes is nil, empty, or up to 200 random bytes (a length past 127
// takes two bytes to write).
func someBytes(rng *rand.Rand) []byte {
	switch rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	b := make([]byte, rng.IntN(200))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}
