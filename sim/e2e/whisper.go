package e2e

import (
	"errors"
	"strconv"

	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/util/optional"
	"google.golang.org/protobuf/encoding/protowire"
)

// signalMessageCodec and preKeyMessageCodec write and read the two Signal
// envelopes (docs/protocol.md, section 4) with protowire, to the bytes
// libsignal's protobuf serializers make and read. Theirs go through
// protobuf-go's reflection runtime, which builds each message's codec on
// first use: in the web app that was two fifths of the first decrypt after
// a scan (docs/performance.md, "QR visible -> chats shown, session 8").
// Fields are written in field-number order, as protobuf-go writes them;
// reading keeps the last of a repeated field and skips unknown ones, as it
// does.
type signalMessageCodec struct{}

// The protobuf field numbers of Signal's WhisperTextProtocol.
const (
	smRatchetKey      = 1
	smCounter         = 2
	smPreviousCounter = 3
	smCiphertext      = 4

	pkPreKeyID       = 1
	pkBaseKey        = 2
	pkIdentityKey    = 3
	pkMessage        = 4
	pkRegistrationID = 5
	pkSignedPreKeyID = 6
)

// Serialize writes the version (in decimal, as libsignal does: "3" is the
// byte 0x33) unless it is 0, the protobuf, then the MAC when there is one.
// libsignal serializes without version and MAC to compute the MAC.
func (signalMessageCodec) Serialize(m *protocol.SignalMessageStructure) []byte {
	var b []byte
	if m.Version != 0 {
		b = strconv.AppendInt(b, int64(m.Version), 10)
	}
	b = appendBytes(b, smRatchetKey, m.RatchetKey)
	b = appendUint32(b, smCounter, m.Counter)
	b = appendUint32(b, smPreviousCounter, m.PreviousCounter)
	b = appendBytes(b, smCiphertext, m.CipherText)
	return append(b, m.Mac...)
}

func (signalMessageCodec) Deserialize(b []byte) (*protocol.SignalMessageStructure, error) {
	if len(b) < 1+protocol.MacLength {
		return nil, errors.New("signal message: too short")
	}
	body, mac := b[1:len(b)-protocol.MacLength], b[len(b)-protocol.MacLength:]
	m := &protocol.SignalMessageStructure{Version: int(b[0] >> 4), Mac: clone(mac)}
	err := readFields(body, func(num protowire.Number, v uint64) {
		switch num {
		case smCounter:
			m.Counter = uint32(v)
		case smPreviousCounter:
			m.PreviousCounter = uint32(v)
		}
	}, func(num protowire.Number, v []byte) {
		switch num {
		case smRatchetKey:
			m.RatchetKey = v
		case smCiphertext:
			m.CipherText = v
		}
	})
	if err != nil {
		return nil, errors.New("signal message: " + err.Error())
	}
	return m, nil
}

type preKeyMessageCodec struct{}

func (preKeyMessageCodec) Serialize(m *protocol.PreKeySignalMessageStructure) []byte {
	b := strconv.AppendInt(nil, int64(m.Version), 10)
	if m.PreKeyID != nil && !m.PreKeyID.IsEmpty {
		b = appendUint32(b, pkPreKeyID, m.PreKeyID.Value)
	}
	b = appendBytes(b, pkBaseKey, m.BaseKey)
	b = appendBytes(b, pkIdentityKey, m.IdentityKey)
	b = appendBytes(b, pkMessage, m.Message)
	b = appendUint32(b, pkRegistrationID, m.RegistrationID)
	return appendUint32(b, pkSignedPreKeyID, m.SignedPreKeyID)
}

func (preKeyMessageCodec) Deserialize(b []byte) (*protocol.PreKeySignalMessageStructure, error) {
	if len(b) == 0 {
		return nil, errors.New("prekey signal message: empty")
	}
	m := &protocol.PreKeySignalMessageStructure{Version: int(b[0] >> 4)}
	var preKeyID uint32
	err := readFields(b[1:], func(num protowire.Number, v uint64) {
		switch num {
		case pkPreKeyID:
			preKeyID = uint32(v)
		case pkRegistrationID:
			m.RegistrationID = uint32(v)
		case pkSignedPreKeyID:
			m.SignedPreKeyID = uint32(v)
		}
	}, func(num protowire.Number, v []byte) {
		switch num {
		case pkBaseKey:
			m.BaseKey = v
		case pkIdentityKey:
			m.IdentityKey = v
		case pkMessage:
			m.Message = v
		}
	})
	if err != nil {
		return nil, errors.New("prekey signal message: " + err.Error())
	}
	// libsignal reads a prekey id of 0 as none.
	m.PreKeyID = optional.NewEmptyUint32()
	if preKeyID != 0 {
		m.PreKeyID = optional.NewOptionalUint32(preKeyID)
	}
	return m, nil
}

// appendBytes leaves out a nil field, as protobuf-go does with an unset
// optional bytes field; an empty one is written.
func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if v == nil {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendUint32(b []byte, num protowire.Number, v uint32) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

// readFields calls varint for every varint field of b and bytes for every
// length-delimited one (with a copy, never nil), and skips other wire types:
// the fields of these messages are all one of the two, and protobuf-go
// keeps a field of the wrong type as unknown.
func readFields(b []byte, varint func(protowire.Number, uint64), bytes func(protowire.Number, []byte)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		if !num.IsValid() {
			return errors.New("invalid field number")
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			varint(num, v)
			b = b[n:]
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			bytes(num, clone(v))
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	return nil
}

// clone copies b, empty but not nil when b is empty: protobuf-go's reading
// copies too, so nothing aliases the caller's buffer.
func clone(b []byte) []byte {
	return append([]byte{}, b...)
}
