package pb_test

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/linksim/linksim/sim/wire/pb"
)

// samples returns every message of linksim.proto with every field set (a
// oneof: one sample per alternative; a map: one entry, so that the encoding
// has one order) and each string field set to str.
func samples(t *testing.T, str string) []proto.Message {
	t.Helper()
	var out []proto.Message
	msgs := pb.File_linksim_proto.Messages()
	for i := range msgs.Len() {
		md := msgs.Get(i)
		mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
		if err != nil {
			t.Fatal(err)
		}
		alternatives := []protoreflect.FieldDescriptor{nil}
		if oneofs := md.Oneofs(); oneofs.Len() > 0 && !oneofs.Get(0).IsSynthetic() {
			alternatives = alternatives[:0]
			for j := range oneofs.Get(0).Fields().Len() {
				alternatives = append(alternatives, oneofs.Get(0).Fields().Get(j))
			}
		}
		for _, alt := range alternatives {
			m := mt.New()
			fill(m, alt, str)
			out = append(out, m.Interface())
		}
	}
	if len(out) < 100 {
		t.Fatalf("only %d samples: the schema was not walked", len(out))
	}
	return out
}

// fill sets every field of m; in a oneof only alt (or, when alt is not one of
// its fields, the first alternative).
func fill(m protoreflect.Message, alt protoreflect.FieldDescriptor, str string) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if o := fd.ContainingOneof(); o != nil && !o.IsSynthetic() {
			chosen := o.Fields().Get(0)
			if alt != nil && alt.ContainingOneof() == o {
				chosen = alt
			}
			if fd != chosen {
				continue
			}
		}
		switch {
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			key := value(fd.MapKey(), str).MapKey()
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v := mp.NewValue()
				fill(v.Message(), nil, str)
				mp.Set(key, v)
			} else {
				mp.Set(key, value(fd.MapValue(), str))
			}
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range 2 {
				if fd.Kind() == protoreflect.MessageKind {
					v := l.NewElement()
					fill(v.Message(), nil, str)
					l.Append(v)
				} else {
					l.Append(value(fd, str))
				}
			}
		case fd.Kind() == protoreflect.MessageKind:
			fill(m.Mutable(fd).Message(), nil, str)
		default:
			m.Set(fd, value(fd, str))
		}
	}
}

// value is a non-zero value of fd's kind, with large and negative numbers
// so that varints take all their bytes.
func value(fd protoreflect.FieldDescriptor, str string) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true)
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		return protoreflect.ValueOfEnum(vals.Get(vals.Len() - 1).Number())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(-7)
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(-1 << 40)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(1<<32 - 1)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(1<<64 - 1)
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(1.5)
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(-2.25)
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(str)
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte{0, 1, 0xFE, 0xFF})
	}
	panic("no sample value for " + fd.Kind().String())
}

// nilAlternatives are oneofs holding a message alternative that is nil,
// which protobuf-go encodes as an empty message.
var nilAlternatives = []proto.Message{
	&pb.Frame{Id: 3, Body: &pb.Frame_PairStart{}},
	&pb.Frame{Body: &pb.Frame_Send{}},
	&pb.Delivery{Seq: 1, Item: &pb.Delivery_Receipt{}},
	&pb.Content{Kind: &pb.Content_Chat{}},
	&pb.Mirror{Kind: &pb.Mirror_SetProfile{}},
}

// unknown is two fields no message of the schema has: a varint and bytes.
var unknown = protowire.AppendBytes(protowire.AppendTag(
	protowire.AppendVarint(protowire.AppendTag(nil, 1000, protowire.VarintType), 5),
	1001, protowire.BytesType), []byte("later"))

func TestMarshalWritesProtobufGosBytes(t *testing.T) {
	for _, m := range append(samples(t, "héllo ✓"), nilAlternatives...) {
		name := string(m.ProtoReflect().Descriptor().Name())
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatalf("%s: proto.Marshal: %v", name, err)
		}
		got, err := pb.Marshal(m.(pb.WireMessage))
		if err != nil {
			t.Fatalf("%s: pb.Marshal: %v", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: pb.Marshal wrote\n%x\nproto.Marshal\n%x", name, got, want)
		}
		if got, want := pb.Size(m.(pb.WireMessage)), proto.Size(m); got != want {
			t.Errorf("%s: pb.Size %d, proto.Size %d", name, got, want)
		}
	}
}

func TestUnmarshalReadsWhatProtobufGoReads(t *testing.T) {
	for _, m := range append(samples(t, "héllo ✓"), nilAlternatives...) {
		name := string(m.ProtoReflect().Descriptor().Name())
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		// Unknown fields are kept and written back after the known ones.
		b = append(b, unknown...)
		want := m.ProtoReflect().New().Interface()
		if err := proto.Unmarshal(b, want); err != nil {
			t.Fatalf("%s: proto.Unmarshal: %v", name, err)
		}
		got := m.ProtoReflect().New().Interface()
		if err := pb.Unmarshal(b, got.(pb.WireMessage)); err != nil {
			t.Fatalf("%s: pb.Unmarshal: %v", name, err)
		}
		if !proto.Equal(got, want) {
			t.Errorf("%s: pb.Unmarshal read %v, proto.Unmarshal %v", name, got, want)
		}
		again, err := pb.Marshal(got.(pb.WireMessage))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b) {
			t.Errorf("%s: decoded and encoded again:\n%x\nwant\n%x", name, again, b)
		}
	}
}

// A map of several entries is written in no particular order, by both.
func TestMapOfSeveralEntriesRoundTrips(t *testing.T) {
	in := &pb.Frame{Id: 1, Body: &pb.Frame_Send{Send: &pb.Send{MessageId: "m",
		ListHashes: map[string]string{"+1": "a", "+2": "", "": "c", "+4": "d"}}}}
	b, err := pb.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var viaProto, viaPB pb.Frame
	if err := proto.Unmarshal(b, &viaProto); err != nil || !proto.Equal(&viaProto, in) {
		t.Errorf("proto.Unmarshal of pb.Marshal's bytes: %v, %v", &viaProto, err)
	}
	b, err = proto.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.Unmarshal(b, &viaPB); err != nil || !proto.Equal(&viaPB, in) {
		t.Errorf("pb.Unmarshal of proto.Marshal's bytes: %v, %v", &viaPB, err)
	}
}

// proto3 strings must be UTF-8: protobuf-go refuses anything else both
// ways, and so must Marshal and Unmarshal, for every message that can hold
// a string somewhere inside.
func TestInvalidUTF8IsRefusedLikeProtobufGo(t *testing.T) {
	refused := 0
	for _, m := range samples(t, "ok\xff") {
		name := string(m.ProtoReflect().Descriptor().Name())
		_, protoErr := proto.Marshal(m)
		_, err := pb.Marshal(m.(pb.WireMessage))
		if (err == nil) != (protoErr == nil) {
			t.Errorf("%s: pb.Marshal: %v; proto.Marshal: %v", name, err, protoErr)
		}
		b, err := m.(pb.WireMessage).MarshalVT() // writes it anyway
		if err != nil {
			t.Fatal(err)
		}
		protoErr = proto.Unmarshal(b, m.ProtoReflect().New().Interface())
		err = pb.Unmarshal(b, m.ProtoReflect().New().Interface().(pb.WireMessage))
		if (err == nil) != (protoErr == nil) {
			t.Errorf("%s: pb.Unmarshal: %v; proto.Unmarshal: %v", name, err, protoErr)
		}
		if err != nil {
			refused++
		}
	}
	if refused < 50 {
		t.Errorf("only %d samples held a string", refused)
	}
}
