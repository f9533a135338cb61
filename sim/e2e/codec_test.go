package e2e

import (
	"bytes"
	stdjson "encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"go.mau.fi/libsignal/state/record"

	"github.com/linksim/linksim/sim/wire/pb"
)

// TestSessionCodecIsEncodingJSON checks that a session with chains in both
// directions and an archived state is stored as the bytes encoding/json
// makes of it, as libsignal's own serializer stored it, and that those
// bytes read back to the same record.
func TestSessionCodecIsEncodingJSON(t *testing.T) {
	alice, bob := start(t, true)
	send(t, alice, bob, "hi", pb.CipherType_PREKEY_MESSAGE)
	send(t, bob, alice, "hello", pb.CipherType_SIGNAL_MESSAGE)
	send(t, alice, bob, "again", pb.CipherType_SIGNAL_MESSAGE)
	// A second session over the first archives it.
	if err := alice.s.ProcessBundle(t.Context(), bundle(t, bob.s, bob.addr, true)); err != nil {
		t.Fatal(err)
	}
	stored, ok, err := alice.s.sig.kv.Get(prefixSession + bob.addr.signal().String())
	if err != nil || !ok {
		t.Fatalf("alice's session with bob: %v (stored %v)", err, ok)
	}
	r, err := alice.s.sig.LoadSession(t.Context(), bob.addr.signal())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.PreviousSessionStates()) == 0 {
		t.Fatal("the second session archived nothing: the test covers no archived state")
	}
	want, err := stdjson.Marshal(r.Structure())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored, want) {
		t.Errorf("stored session differs from encoding/json's:\n got %s\nwant %s", stored, want)
	}
	s, err := sessionCodec{}.Deserialize(want)
	if err != nil {
		t.Fatalf("encoding/json's bytes do not read back: %v", err)
	}
	if again := (sessionCodec{}).Serialize(s); !bytes.Equal(again, want) {
		t.Errorf("encoding/json's bytes, read and written again, changed:\n got %s\nwant %s", again, want)
	}
}

// TestSessionCodecMatchesEncodingJSON checks sessionCodec against
// encoding/json on random sessions (nil, empty and full byte slices, lists
// and pointers, nil list elements, extreme numbers): the same bytes
// written, the same session read from them, and from an indented form,
// which goes to jsonUnmarshal.
func TestSessionCodecMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 500 {
		var s record.SessionStructure
		fill(rng, reflect.ValueOf(&s).Elem(), 0)
		want, err := stdjson.Marshal(&s)
		if err != nil {
			t.Fatal(err)
		}
		got := sessionCodec{}.Serialize(&s)
		if !bytes.Equal(got, want) {
			t.Fatalf("session %d written as\n%s\nencoding/json writes\n%s", i, got, want)
		}
		indented, err := stdjson.MarshalIndent(&s, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range [][]byte{want, indented} {
			var wantS record.SessionStructure
			if err := stdjson.Unmarshal(b, &wantS); err != nil {
				t.Fatal(err)
			}
			gotS, err := sessionCodec{}.Deserialize(b)
			if err != nil || !reflect.DeepEqual(gotS, &wantS) {
				t.Fatalf("session %d read from\n%s\nas %+v (error %v), encoding/json reads %+v", i, b, gotS, err, &wantS)
			}
		}
	}
}

// FuzzSessionReader checks that whatever jsonReader reads (all of it, with
// no error) encoding/json reads too, to the same session.
func FuzzSessionReader(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 8 {
		var s record.SessionStructure
		fill(rng, reflect.ValueOf(&s).Elem(), 0)
		f.Add(sessionCodec{}.Serialize(&s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got record.SessionStructure
		r := &jsonReader{b: b}
		if walkSession(r, &got); r.bad || len(r.b) > 0 {
			return
		}
		var want record.SessionStructure
		if err := stdjson.Unmarshal(b, &want); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s read as %+v; encoding/json reads %+v (error %v)", b, got, want, err)
		}
	})
}

// fill sets v, and what it points to, to random values: pointers and slices
// nil, empty (slices) or filled, numbers at their extremes or in between.
func fill(rng *rand.Rand, v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.Pointer:
		if rng.IntN(4) > 0 && depth < 12 {
			v.Set(reflect.New(v.Type().Elem()))
			fill(rng, v.Elem(), depth+1)
		}
	case reflect.Slice:
		switch n := rng.IntN(5); {
		case n == 0:
		case depth >= 12:
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		default:
			v.Set(reflect.MakeSlice(v.Type(), n-1, n-1))
			if v.Type().Elem().Kind() == reflect.Uint8 {
				v.Set(reflect.MakeSlice(v.Type(), rng.IntN(70), 70))
			}
			for i := range v.Len() {
				fill(rng, v.Index(i), depth+1)
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			fill(rng, v.Field(i), depth+1)
		}
	case reflect.Bool:
		v.SetBool(rng.IntN(2) == 1)
	case reflect.Uint8, reflect.Uint32:
		v.SetUint([]uint64{0, 1, 255, 300, 1<<32 - 1}[rng.IntN(5)] & (1<<(8*v.Type().Size()) - 1))
	case reflect.Int:
		v.SetInt([]int64{0, 3, -1, 1<<63 - 1, -1 << 63}[rng.IntN(5)])
	default:
		panic("fill: no values for " + v.Type().String())
	}
}
