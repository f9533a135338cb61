package wire

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
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

// A frame under MaxFrame whose map entries leave out their values grows by
// 2 bytes per entry when re-encoded: it must be refused, not accepted and
// then found impossible to forward.
func TestDecodeRefusesAFrameThatGrowsOverTheLimit(t *testing.T) {
	const entry = 17 // bytes of one list_hashes entry without its value
	b := sendOmittingMapValues((MaxFrame - 16) / entry)
	if len(b) > MaxFrame {
		t.Fatalf("test frame is %d bytes, want at most %d", len(b), MaxFrame)
	}
	_, err := Decode(b)
	if !errors.Is(err, ErrFrameTooLarge) || !errors.Is(err, ErrDecode) {
		t.Fatalf("Decode of a %d-byte frame that re-encodes over MaxFrame: %v, want ErrDecode and ErrFrameTooLarge", len(b), err)
	}
	small := sendOmittingMapValues(3)
	fr, err := Decode(small)
	if err != nil {
		t.Fatalf("Decode of a small frame omitting map values: %v", err)
	}
	if got := fr.GetSend().GetListHashes(); len(got) != 3 {
		t.Errorf("decoded %d list hashes, want 3", len(got))
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

// sendOmittingMapValues encodes a Send frame with n list_hashes entries that
// carry a key but leave the empty value out, as the protobuf encoding allows
// (and some encoders do); a Go encoder writes the value, 2 bytes more each.
func sendOmittingMapValues(n int) []byte {
	var send []byte
	for i := range n {
		var entry []byte
		entry = protowire.AppendTag(entry, 1, protowire.BytesType)
		entry = protowire.AppendString(entry, fmt.Sprintf("+1555%07d", i))
		send = protowire.AppendTag(send, 3, protowire.BytesType)
		send = protowire.AppendBytes(send, entry)
	}
	body := (&pb.Frame{}).ProtoReflect().Descriptor().Fields().ByName("send").Number()
	frame := protowire.AppendTag(nil, 1, protowire.VarintType)
	frame = protowire.AppendVarint(frame, 7)
	frame = protowire.AppendTag(frame, body, protowire.BytesType)
	return protowire.AppendBytes(frame, send)
}

// fuzzLimit stands in for MaxFrame in FuzzDecode: the same code with a small
// limit lets short inputs reach frames at the limit.
const fuzzLimit = 40

// FuzzDecode checks that no input makes the decoder panic, and that whatever
// it accepts re-encodes (within the same limit) and decodes to the same frame.
func FuzzDecode(f *testing.F) {
	for _, fr := range []*pb.Frame{
		{Id: 1, Body: &pb.Frame_Hello{Hello: &pb.Hello{}}},
		{Id: 2, Body: &pb.Frame_Send{Send: &pb.Send{MessageId: "x", Envelopes: []*pb.Envelope{{To: &pb.Address{User: "+1", Device: 1}, Ciphertext: []byte{1, 2}}},
			ListHashes: map[string]string{"+15550100": "0123456789abcdef"}}}},
		{Body: &pb.Frame_Delivery{Delivery: &pb.Delivery{Seq: 3, Item: &pb.Delivery_Receipt{Receipt: &pb.Receipt{MessageIds: []string{"a"}}}}}},
	} {
		b, _ := proto.Marshal(fr)
		f.Add(b)
	}
	f.Add(sendOmittingMapValues(1))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decode(b, fuzzLimit)
		if err != nil {
			return
		}
		again, err := encode(fr, fuzzLimit)
		if err != nil {
			t.Fatalf("a decoded frame does not encode: %v", err)
		}
		fr2, err := decode(again, fuzzLimit)
		if err != nil || !proto.Equal(fr, fr2) {
			t.Fatalf("re-encoded frame does not decode to itself: %v", err)
		}
	})
}
