package e2e

import (
	"go.mau.fi/libsignal/serialize"
	"go.mau.fi/libsignal/state/record"
)

// newSerializer is libsignal's protobuf serializer with sessions read and
// written by jsonMarshal and jsonUnmarshal: segmentio/encoding/json instead
// of encoding/json, but for the web app (codec_js.go). The format
// is the same JSON (a stored session reads back either way): a session is
// decoded and encoded again for every message sent and received, and
// encoding/json's reflection was most of the CPU of an encrypt and decrypt
// after the curve arithmetic (docs/performance.md, "Worker CPU per
// message").
func newSerializer() *serialize.Serializer {
	s := serialize.NewProtoBufSerializer()
	s.Session = sessionCodec{}
	s.State = stateCodec{}
	return s
}

type sessionCodec struct{}

func (sessionCodec) Serialize(s *record.SessionStructure) []byte { return marshal(s) }

func (sessionCodec) Deserialize(b []byte) (*record.SessionStructure, error) {
	var s record.SessionStructure
	if err := jsonUnmarshal(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

type stateCodec struct{}

func (stateCodec) Serialize(s *record.StateStructure) []byte { return marshal(s) }

func (stateCodec) Deserialize(b []byte) (*record.StateStructure, error) {
	var s record.StateStructure
	if err := jsonUnmarshal(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// marshal returns nil when v cannot be encoded, as libsignal's own
// serializers do (structures of byte slices and numbers always can).
func marshal(v any) []byte {
	b, err := jsonMarshal(v)
	if err != nil {
		return nil
	}
	return b
}
