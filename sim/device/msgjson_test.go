package device

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/wire/pb"
)

// checkMessageJSON fails unless marshalMessage writes m exactly as
// json.Marshal does, and json.Unmarshal reads it back.
func checkMessageJSON(t *testing.T, m Message) {
	t.Helper()
	want, werr := json.Marshal(m)
	got, err := marshalMessage(m)
	if (err != nil) != (werr != nil) {
		t.Fatalf("message %+v: marshalMessage error %v, json.Marshal error %v", m, err, werr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("message %+v:\nmarshalMessage %s\njson.Marshal   %s", m, got, want)
	}
}

// oddRunes are the characters encoding/json writes other than as they are.
var oddRunes = []string{"\x00", "\x01", "\x1f", "\b", "\f", "\n", "\r", "\t", `"`, `\`, "<", ">", "&", "\u2028", "\u2029",
	"\x7f", "\xff", "\xc3", "\xe2\x80", "é", "€", "😀", "\uFFFD", " ", "a", "/"}

func randomText(r *rand.Rand) string {
	var sb strings.Builder
	for range r.IntN(12) {
		if r.IntN(3) == 0 {
			sb.WriteString("plain text ")
		} else {
			sb.WriteString(oddRunes[r.IntN(len(oddRunes))])
		}
	}
	return sb.String()
}

func TestMarshalMessageMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	zones := []*time.Location{time.UTC, time.FixedZone("", 5*3600+30*60), time.FixedZone("", -8*3600), time.Local}
	times := []time.Time{{}, earliestSent, latestSent, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	for i := range 3000 {
		m := Message{
			ID: randomText(r), From: randomText(r), Text: randomText(r),
			Sent:     time.UnixMilli(r.Int64N(1<<45) - 1<<44).Add(time.Duration(r.IntN(1000))).In(zones[r.IntN(len(zones))]),
			Outgoing: r.IntN(2) == 0, Status: Status(r.IntN(5) - 1),
			Placeholder: r.IntN(3) == 0, Notice: r.IntN(3) == 0,
		}
		if i < len(times) {
			m.Sent = times[i] // the zero time, the bounds, one past them (an error)
		}
		if r.IntN(10) == 0 {
			m.Media = &Media{Type: pb.MediaType_IMAGE, DirectPath: "/media/ab", Key: []byte{1, 2}, Size: 3, MimeType: "image/jpeg", Width: 4}
		}
		checkMessageJSON(t, m)
		if m.Sent.Year() > 9999 {
			continue
		}
		raw, _ := marshalMessage(m)
		var back Message
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatalf("message %+v: its JSON %s does not read back: %v", m, raw, err)
		}
	}
}

func FuzzMarshalMessage(f *testing.F) {
	for _, s := range oddRunes {
		f.Add(s, "+15550100", int64(1700000000000), true)
	}
	f.Fuzz(func(t *testing.T, text, from string, ms int64, outgoing bool) {
		checkMessageJSON(t, Message{ID: from + text, From: from, Text: text, Sent: sentTime(ms), Outgoing: outgoing})
	})
}

// marshalMessage names Message's fields one by one, and a field left out
// with omitempty would pass the tests above unset: a field added to
// Message must be added to marshalMessage, then here.
func TestMarshalMessageKnowsEveryField(t *testing.T) {
	var fields []string
	for f := range reflect.TypeFor[Message]().Fields() {
		fields = append(fields, f.Name)
	}
	known := []string{"ID", "From", "Text", "Sent", "Outgoing", "Status", "Media", "Placeholder", "Notice"}
	if !slices.Equal(fields, known) {
		t.Errorf("Message has fields %v; marshalMessage writes %v", fields, known)
	}
}
