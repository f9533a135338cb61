package wire

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/linksim/linksim/sim/wire/pb"
)

// frames are the frames of a pairing and of a message, as the devices and
// the relay send them.
func frames() []*pb.Frame {
	ciphertext := bytes.Repeat([]byte{0xA5}, 180)
	key := bytes.Repeat([]byte{5}, 33)
	return []*pb.Frame{
		{Id: 1, Body: &pb.Frame_PairStart{PairStart: &pb.PairStart{}}},
		{Id: 1, Body: &pb.Frame_Ok{Ok: &pb.Ok{}}},
		{Body: &pb.Frame_PairRef{PairRef: &pb.PairRef{Ref: "q3Vb0x9-c5b_lUoFzN2u9w", ExpiresUnixMs: 1764619200000, Index: 1, Count: 6}}},
		{Body: &pb.Frame_PairOffer{PairOffer: &pb.PairOffer{Ref: "q3Vb0x9-c5b_lUoFzN2u9w", AccountIdentityKey: key,
			Identity: &pb.SignedDeviceIdentityHMAC{Details: ciphertext[:120], Hmac: key[:32]}}}},
		{Id: 2, Body: &pb.Frame_PairFinish{PairFinish: &pb.PairFinish{Ref: "q3Vb0x9-c5b_lUoFzN2u9w", Platform: "Chromium",
			Identity: &pb.SignedDeviceIdentity{Details: ciphertext[:60], AccountSignatureKey: key, AccountSignature: ciphertext[:64], DeviceSignature: ciphertext[:64]},
			Keys: &pb.SignalKeys{RegistrationId: 4711, IdentityKey: key, SignedPrekey: &pb.SignedPreKey{Id: 1, PublicKey: key, Signature: ciphertext[:64]},
				Prekeys: []*pb.PreKey{{Id: 1, PublicKey: key}, {Id: 2, PublicKey: key}}}}}},
		{Id: 2, Body: &pb.Frame_Linked{Linked: &pb.Linked{User: "+15550100", Device: 1}}},
		{Id: 3, Body: &pb.Frame_Hello{Hello: &pb.Hello{ClientVersion: 1}}},
		{Id: 4, Body: &pb.Frame_Send{Send: &pb.Send{MessageId: "3eb0c8a1f2d4e6b8a0c2e4f6a8b0c2d4",
			Envelopes: []*pb.Envelope{
				{To: &pb.Address{User: "+15550101", Device: 0}, Type: pb.CipherType_PREKEY_MESSAGE, Ciphertext: ciphertext},
				{To: &pb.Address{User: "+15550101", Device: 1}, Type: pb.CipherType_PREKEY_MESSAGE, Ciphertext: ciphertext},
				{To: &pb.Address{User: "+15550100", Device: 2}, Type: pb.CipherType_PREKEY_MESSAGE, Ciphertext: ciphertext}},
			ListHashes: map[string]string{"+15550101": "0123456789abcdef"}}}},
		{Body: &pb.Frame_Delivery{Delivery: &pb.Delivery{Seq: 17, ServerUnixMs: 1764619200123, From: &pb.Address{User: "+15550100"},
			Item: &pb.Delivery_Message{Message: &pb.Message{MessageId: "3eb0c8a1f2d4e6b8a0c2e4f6a8b0c2d4", Type: pb.CipherType_PREKEY_MESSAGE, Ciphertext: ciphertext}}}}},
		{Id: 5, Body: &pb.Frame_Ack{Ack: &pb.Ack{Seqs: []uint64{17}}}},
		{Id: 4, Body: &pb.Frame_Error{Error: &pb.Error{Code: pb.ErrorCode_STALE_DEVICE_LIST, Message: "stale",
			DeviceLists: &pb.DeviceLists{Lists: []*pb.DeviceList{{User: "+15550101", Devices: []uint32{0, 1, 3}, Hash: "0123456789abcdef"}}}}}},
	}
}

// decodeWithProtobufGo is Decode as it was before the generated code: the
// reference that the new decoder must not be laxer than.
func decodeWithProtobufGo(b []byte) (*pb.Frame, error) {
	var f pb.Frame
	if err := proto.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	if f.GetBody() == nil || proto.Size(&f) > MaxFrame {
		return nil, errors.New("refused")
	}
	return &f, nil
}

// Every frame cut short, and every frame with any one byte changed, decodes
// without a panic, to an ErrDecode or to a frame that encodes and decodes to
// itself; where protobuf-go reads it too, to the same frame. (The two
// disagree on some inputs: see pb.Unmarshal.)
func TestDecodeTruncatedAndCorruptedFrames(t *testing.T) {
	accepted, refused, disagreed := 0, 0, 0
	try := func(what string, b []byte) {
		t.Helper()
		f, err := decodeNoPanic(b)
		ref, refErr := decodeWithProtobufGo(b)
		if (err == nil) != (refErr == nil) {
			disagreed++
		}
		switch {
		case err != nil && !errors.Is(err, ErrDecode):
			t.Errorf("%s: %v, want an ErrDecode", what, err)
		case err != nil:
			refused++
		case refErr == nil && !proto.Equal(f, ref):
			t.Errorf("%s: decoded to %v, protobuf-go to %v", what, f, ref)
		default:
			accepted++
			again, err := Encode(f)
			if err != nil {
				t.Errorf("%s: decoded to %v, which does not encode: %v", what, f, err)
				return
			}
			if f2, err := Decode(again); err != nil || !proto.Equal(f, f2) {
				t.Errorf("%s: decoded to %v, which encodes to a frame that decodes to %v (%v)", what, f, f2, err)
			}
		}
	}
	for _, fr := range frames() {
		b, err := Encode(fr)
		if err != nil {
			t.Fatalf("encode %v: %v", fr, err)
		}
		name := fmt.Sprintf("%T", fr.Body)
		for n := range len(b) {
			try(fmt.Sprintf("%s cut to %d of %d bytes", name, n, len(b)), b[:n])
		}
		for i := range b {
			for _, flip := range []byte{0x01, 0x07, 0x08, 0x80, 0xFF} {
				c := bytes.Clone(b)
				c[i] ^= flip
				try(fmt.Sprintf("%s byte %d ^ %#x", name, i, flip), c)
			}
		}
	}
	if accepted == 0 || refused == 0 {
		t.Errorf("%d accepted, %d refused: the inputs do not exercise both", accepted, refused)
	}
	t.Logf("%d inputs accepted, %d refused, %d of them unlike protobuf-go", accepted, refused, disagreed)
}

func decodeNoPanic(b []byte) (f *pb.Frame, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return Decode(b)
}

func TestEncodeRefusesInvalidUTF8(t *testing.T) {
	_, err := Encode(&pb.Frame{Id: 1, Body: &pb.Frame_Send{Send: &pb.Send{MessageId: "a\xffb"}}})
	if !errors.Is(err, pb.ErrInvalidUTF8) {
		t.Fatalf("Encode of a message id that is not UTF-8: %v, want ErrInvalidUTF8", err)
	}
}

// BenchmarkFrame encodes and decodes the frames above, one after the other,
// with the generated code (Encode, Decode) and with protobuf-go's reflection
// (proto.Marshal, proto.Unmarshal and proto.Size, as Decode did before).
func BenchmarkFrame(b *testing.B) {
	fs := frames()
	encoded := make([][]byte, len(fs))
	for i, f := range fs {
		encoded[i], _ = Encode(f)
	}
	b.Run("encode/codec=generated", func(b *testing.B) {
		for i := range b.N {
			if _, err := Encode(fs[i%len(fs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode/codec=protobuf-go", func(b *testing.B) {
		for i := range b.N {
			if _, err := proto.Marshal(fs[i%len(fs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/codec=generated", func(b *testing.B) {
		for i := range b.N {
			if _, err := Decode(encoded[i%len(fs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/codec=protobuf-go", func(b *testing.B) {
		for i := range b.N {
			if _, err := decodeWithProtobufGo(encoded[i%len(fs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
