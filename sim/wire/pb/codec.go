package pb

import (
	"errors"

	"google.golang.org/protobuf/proto"
)

// WireMessage is any message of this package. Marshal, Unmarshal and Size
// encode it with generated code (linksim_vtproto.pb.go, linksim_check.pb.go),
// without protobuf-go's reflection, which builds a message's codec on its
// first use: in the browser app that cost tens of milliseconds on the way to
// the first QR code (docs/performance.md).
type WireMessage interface {
	proto.Message
	MarshalVT() ([]byte, error)
	UnmarshalVT([]byte) error
	SizeVT() int
	check() findings
}

// findings are what a message's generated check method found in it.
type findings uint8

const (
	invalidUTF8     findings = 1 << iota // a string field that is not UTF-8
	nilOneofMessage                      // a oneof set to a nil message alternative
)

// ErrInvalidUTF8 is the error for a string field that is not UTF-8, which
// proto3 forbids (docs/protocol.md, "Encoding").
var ErrInvalidUTF8 = errors.New("proto: a string field holds invalid UTF-8")

// Marshal is proto.Marshal for this package's messages, with the same bytes:
// fields in number order, a oneof last, unknown fields after it, the entries
// of a map in no particular order.
func Marshal(m WireMessage) ([]byte, error) {
	switch found := m.check(); {
	case found&invalidUTF8 != 0:
		return nil, ErrInvalidUTF8
	case found&nilOneofMessage != 0:
		// protobuf-go writes the nil alternative as an empty message,
		// the generated code not at all. Rare: rather the slow way than
		// other bytes.
		return proto.Marshal(m)
	}
	return m.MarshalVT()
}

// Size is proto.Size for this package's messages.
func Size(m WireMessage) int {
	if m.check()&nilOneofMessage != 0 {
		return proto.Size(m)
	}
	return m.SizeVT()
}

// Unmarshal is proto.Unmarshal for this package's messages, into m, which
// must be new (the generated code merges into what m holds). Unknown fields
// are kept. It differs from proto.Unmarshal only on input no encoder writes:
// a known field sent with another wire type than its own is an error (not an
// unknown field), and inside a map entry field number 0 and the wire types of
// key and value are not checked.
func Unmarshal(b []byte, m WireMessage) error {
	if err := m.UnmarshalVT(b); err != nil {
		return err
	}
	if m.check()&invalidUTF8 != 0 {
		return ErrInvalidUTF8
	}
	return nil
}
