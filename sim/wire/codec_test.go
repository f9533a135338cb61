package wire

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/linksim/linksim/sim/wire/pb"
)

func TestDecodeRejectsBadInput(t *testing.T) {
	noBody, _ := proto.Marshal(&pb.Frame{Id: 9})
	unknownField := append(noBody, 0xF8, 0x3F, 0x01) // field 1023, varint: no body this version knows
	tests := map[string][]byte{
		"empty":          nil,
		"garbage":        {0xFF, 0xFF, 0xFF, 0xFF},
		"truncated":      {0x0A, 0x10, 0x01},
		"no body":        noBody,
		"unknown body":   unknownField,
		"over max frame": make([]byte, MaxFrame+1),
	}
	for name, in := range tests {
		if _, err := Decode(in); err == nil {
			t.Errorf("%s: Decode accepted it", name)
		}
	}
	if _, err := Decode(make([]byte, MaxFrame+1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("oversized: got %v, want ErrFrameTooLarge", err)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	in := &pb.Frame{Id: 42, Body: &pb.Frame_Send{Send: &pb.Send{MessageId: "m1", ListHashes: map[string]string{"+1": "abc"}}}}
	b, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, out) {
		t.Fatalf("round trip changed the frame: %v != %v", in, out)
	}
}

// FuzzDecode checks that no input makes Decode panic, and that whatever it
// accepts re-encodes and decodes to the same frame.
func FuzzDecode(f *testing.F) {
	for _, fr := range []*pb.Frame{
		{Id: 1, Body: &pb.Frame_Hello{Hello: &pb.Hello{}}},
		{Id: 2, Body: &pb.Frame_Send{Send: &pb.Send{MessageId: "x", Envelopes: []*pb.Envelope{{To: &pb.Address{User: "+1", Device: 1}, Ciphertext: []byte{1, 2}}}}}},
		{Body: &pb.Frame_Delivery{Delivery: &pb.Delivery{Seq: 3, Item: &pb.Delivery_Receipt{Receipt: &pb.Receipt{MessageIds: []string{"a"}}}}}},
	} {
		b, _ := proto.Marshal(fr)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Encode(fr)
		if err != nil {
			t.Fatalf("a decoded frame does not encode: %v", err)
		}
		fr2, err := Decode(again)
		if err != nil || !proto.Equal(fr, fr2) {
			t.Fatalf("re-encoded frame does not decode to itself: %v", err)
		}
	})
}
