package e2e

import (
	"go.mau.fi/libsignal/serialize"
	"go.mau.fi/libsignal/state/record"
)

// newSerializer is libsignal's protobuf serializer with the two envelopes
// (whisper.go) and sessions (sessionjson.go) written and read by code for
// their types instead of by reflection, to the same bytes, and session
// states by jsonMarshal and jsonUnmarshal: segmentio/encoding/json instead
// of encoding/json, but for the web app (codec_js.go). A session is decoded
// and encoded again for every message sent and received, and encoding/json's
// reflection was most of the CPU of an encrypt and decrypt after the curve
// arithmetic (docs/performance.md, "Worker CPU per message").
func newSerializer() *serialize.Serializer {
	s := serialize.NewProtoBufSerializer()
	s.SignalMessage = signalMessageCodec{}
	s.PreKeySignalMessage = preKeyMessageCodec{}
	s.Session = sessionCodec{}
	s.State = jsonCodec[record.StateStructure]{}
	return s
}

// jsonCodec reads and writes one of libsignal's record structures.
type jsonCodec[T any] struct{}

func (jsonCodec[T]) Serialize(v *T) []byte { return marshal(v) }

func (jsonCodec[T]) Deserialize(b []byte) (*T, error) {
	v := new(T)
	if err := jsonUnmarshal(b, v); err != nil {
		return nil, err
	}
	return v, nil
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
