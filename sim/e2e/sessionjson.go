package e2e

import (
	"bytes"
	"encoding/base64"
	"strconv"

	"go.mau.fi/libsignal/keys/chain"
	"go.mau.fi/libsignal/keys/message"
	"go.mau.fi/libsignal/state/record"
	"go.mau.fi/libsignal/util/optional"
)

// sessionCodec writes a session as the JSON encoding/json makes of it, byte
// for byte, and reads that JSON back, both with code written for these
// types: encoding/json builds its coders by reflection on first use, and
// in the web app the first session read and written after a scan were
// 6-10% of the page's work up to the chat list (docs/performance.md, "QR
// visible -> chats shown, session 8"). It reads only that exact form (keys
// in order, no spaces); anything else goes to jsonUnmarshal, so a session
// any JSON encoder stored still reads back.
type sessionCodec struct{}

func (sessionCodec) Serialize(s *record.SessionStructure) []byte {
	// A session is 1-2 KB: one allocation instead of a doubling series.
	w := &jsonWriter{b: make([]byte, 0, 2048)}
	walkSession(w, s)
	return w.b
}

func (sessionCodec) Deserialize(b []byte) (*record.SessionStructure, error) {
	s := new(record.SessionStructure)
	r := &jsonReader{b: b}
	if walkSession(r, s); r.bad || len(r.b) > 0 {
		s = new(record.SessionStructure)
		if err := jsonUnmarshal(b, s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// A jsonWalker writes each value it is given (jsonWriter) or reads it
// (jsonReader): one walk of a type's fields serves both directions.
type jsonWalker interface {
	// lit is punctuation and keys, written as is or expected as is.
	lit(s string)
	// null writes null when isNil, or reads a null; it reports which.
	null(isNil bool) bool
	// next is for the elements of a list: whether element i (of n when
	// writing) follows, with its comma.
	next(i, n int) bool
	reading() bool
	bytes(p *[]byte)
	uint32(p *uint32)
	int(p *int)
	bool(p *bool)
}

func walkSession(w jsonWalker, s *record.SessionStructure) {
	w.lit(`{"SessionState":`)
	walkPtr(w, &s.SessionState, walkState)
	w.lit(`,"PreviousStates":`)
	walkList(w, &s.PreviousStates, walkState)
	w.lit(`}`)
}

func walkState(w jsonWalker, s *record.StateStructure) {
	w.lit(`{"LocalIdentityPublic":`)
	w.bytes(&s.LocalIdentityPublic)
	w.lit(`,"LocalRegistrationID":`)
	w.uint32(&s.LocalRegistrationID)
	w.lit(`,"NeedsRefresh":`)
	w.bool(&s.NeedsRefresh)
	w.lit(`,"PendingKeyExchange":`)
	walkPtr(w, &s.PendingKeyExchange, walkKeyExchange)
	w.lit(`,"PendingPreKey":`)
	walkPtr(w, &s.PendingPreKey, walkPendingPreKey)
	w.lit(`,"PreviousCounter":`)
	w.uint32(&s.PreviousCounter)
	w.lit(`,"ReceiverChains":`)
	walkList(w, &s.ReceiverChains, walkChain)
	w.lit(`,"RemoteIdentityPublic":`)
	w.bytes(&s.RemoteIdentityPublic)
	w.lit(`,"RemoteRegistrationID":`)
	w.uint32(&s.RemoteRegistrationID)
	w.lit(`,"RootKey":`)
	w.bytes(&s.RootKey)
	w.lit(`,"SenderBaseKey":`)
	w.bytes(&s.SenderBaseKey)
	w.lit(`,"SenderChain":`)
	walkPtr(w, &s.SenderChain, walkChain)
	w.lit(`,"SessionVersion":`)
	w.int(&s.SessionVersion)
	w.lit(`}`)
}

func walkKeyExchange(w jsonWalker, k *record.PendingKeyExchangeStructure) {
	w.lit(`{"Sequence":`)
	w.uint32(&k.Sequence)
	for _, f := range []struct {
		key string
		p   *[]byte
	}{
		{`,"LocalBaseKeyPublic":`, &k.LocalBaseKeyPublic},
		{`,"LocalBaseKeyPrivate":`, &k.LocalBaseKeyPrivate},
		{`,"LocalRatchetKeyPublic":`, &k.LocalRatchetKeyPublic},
		{`,"LocalRatchetKeyPrivate":`, &k.LocalRatchetKeyPrivate},
		{`,"LocalIdentityKeyPublic":`, &k.LocalIdentityKeyPublic},
		{`,"LocalIdentityKeyPrivate":`, &k.LocalIdentityKeyPrivate},
	} {
		w.lit(f.key)
		w.bytes(f.p)
	}
	w.lit(`}`)
}

func walkPendingPreKey(w jsonWalker, p *record.PendingPreKeyStructure) {
	w.lit(`{"PreKeyID":`)
	walkPtr(w, &p.PreKeyID, func(w jsonWalker, id *optional.Uint32) {
		w.lit(`{"Value":`)
		w.uint32(&id.Value)
		w.lit(`,"IsEmpty":`)
		w.bool(&id.IsEmpty)
		w.lit(`}`)
	})
	w.lit(`,"SignedPreKeyID":`)
	w.uint32(&p.SignedPreKeyID)
	w.lit(`,"BaseKey":`)
	w.bytes(&p.BaseKey)
	w.lit(`}`)
}

func walkChain(w jsonWalker, c *record.ChainStructure) {
	w.lit(`{"SenderRatchetKeyPublic":`)
	w.bytes(&c.SenderRatchetKeyPublic)
	w.lit(`,"SenderRatchetKeyPrivate":`)
	w.bytes(&c.SenderRatchetKeyPrivate)
	w.lit(`,"ChainKey":`)
	walkPtr(w, &c.ChainKey, func(w jsonWalker, k *chain.KeyStructure) {
		w.lit(`{"Key":`)
		w.bytes(&k.Key)
		w.lit(`,"Index":`)
		w.uint32(&k.Index)
		w.lit(`}`)
	})
	w.lit(`,"MessageKeys":`)
	walkList(w, &c.MessageKeys, func(w jsonWalker, k *message.KeysStructure) {
		w.lit(`{"CipherKey":`)
		w.bytes(&k.CipherKey)
		w.lit(`,"MacKey":`)
		w.bytes(&k.MacKey)
		w.lit(`,"IV":`)
		w.bytes(&k.IV)
		w.lit(`,"Index":`)
		w.uint32(&k.Index)
		w.lit(`}`)
	})
	w.lit(`}`)
}

// walkPtr walks a pointer to a struct: null, or the struct (made when
// reading).
func walkPtr[T any](w jsonWalker, p **T, walk func(jsonWalker, *T)) {
	if w.null(*p == nil) {
		return
	}
	if *p == nil {
		*p = new(T)
	}
	walk(w, *p)
}

// walkList walks a slice of pointers to structs: null, or a list (empty
// but not nil when reading [], as encoding/json reads it), whose null
// elements stay nil.
func walkList[T any](w jsonWalker, p *[]*T, walk func(jsonWalker, *T)) {
	if w.null(*p == nil) {
		return
	}
	if w.reading() {
		*p = []*T{}
	}
	w.lit(`[`)
	for i := 0; w.next(i, len(*p)); i++ {
		if w.reading() {
			*p = append(*p, nil)
		}
		walkPtr(w, &(*p)[i], walk)
	}
	w.lit(`]`)
}

type jsonWriter struct{ b []byte }

func (w *jsonWriter) lit(s string) { w.b = append(w.b, s...) }

func (w *jsonWriter) null(isNil bool) bool {
	if isNil {
		w.b = append(w.b, "null"...)
	}
	return isNil
}

func (w *jsonWriter) next(i, n int) bool {
	if i > 0 && i < n {
		w.b = append(w.b, ',')
	}
	return i < n
}

func (w *jsonWriter) reading() bool { return false }

// bytes writes a nil slice as null and any other as a base64 string, as
// encoding/json does.
func (w *jsonWriter) bytes(p *[]byte) {
	if w.null(*p == nil) {
		return
	}
	w.b = append(w.b, '"')
	w.b = base64.StdEncoding.AppendEncode(w.b, *p)
	w.b = append(w.b, '"')
}

func (w *jsonWriter) uint32(p *uint32) { w.b = strconv.AppendUint(w.b, uint64(*p), 10) }
func (w *jsonWriter) int(p *int)       { w.b = strconv.AppendInt(w.b, int64(*p), 10) }
func (w *jsonWriter) bool(p *bool)     { w.b = strconv.AppendBool(w.b, *p) }

// jsonReader reads what jsonWriter writes. At the first byte it does not
// expect it sets bad and reads nothing more.
type jsonReader struct {
	b   []byte
	bad bool
}

func (r *jsonReader) lit(s string) {
	if r.bad || !bytes.HasPrefix(r.b, []byte(s)) {
		r.bad = true
		return
	}
	r.b = r.b[len(s):]
}

func (r *jsonReader) null(bool) bool {
	if r.bad || !bytes.HasPrefix(r.b, []byte("null")) {
		return r.bad
	}
	r.b = r.b[len("null"):]
	return true
}

func (r *jsonReader) next(i, _ int) bool {
	if r.bad || len(r.b) == 0 || r.b[0] == ']' {
		return false
	}
	if i > 0 {
		r.lit(",")
	}
	return !r.bad
}

func (r *jsonReader) reading() bool { return true }

func (r *jsonReader) bytes(p *[]byte) {
	if r.null(false) {
		return
	}
	r.lit(`"`)
	end := bytes.IndexByte(r.b, '"')
	// base64 skips line breaks, which JSON does not allow in a string.
	if r.bad || end < 0 || bytes.ContainsAny(r.b[:end], "\r\n") {
		r.bad = true
		return
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(end))
	n, err := base64.StdEncoding.Decode(b, r.b[:end])
	if err != nil {
		r.bad = true
		return
	}
	*p, r.b = b[:n], r.b[end+1:]
}

func (r *jsonReader) uint32(p *uint32) {
	v, err := strconv.ParseUint(r.number(), 10, 32)
	r.bad = r.bad || err != nil
	*p = uint32(v)
}

func (r *jsonReader) int(p *int) {
	v, err := strconv.ParseInt(r.number(), 10, strconv.IntSize)
	r.bad = r.bad || err != nil
	*p = int(v)
}

func (r *jsonReader) bool(p *bool) {
	switch {
	case bytes.HasPrefix(r.b, []byte("true")):
		*p, r.b = true, r.b[len("true"):]
	case bytes.HasPrefix(r.b, []byte("false")):
		*p, r.b = false, r.b[len("false"):]
	default:
		r.bad = true
	}
}

// number takes the integer in front, as JSON writes it: an optional minus,
// then 0 or digits not starting with 0.
func (r *jsonReader) number() string {
	n := 0
	if n < len(r.b) && r.b[0] == '-' {
		n++
	}
	start := n
	for n < len(r.b) && '0' <= r.b[n] && r.b[n] <= '9' {
		n++
	}
	if r.bad || n == start || (r.b[start] == '0' && n > start+1) {
		r.bad = true
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
