package device

import (
	"maps"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/wire/pb"
)

// FuzzHistoryBundle feeds arbitrary bytes to a companion as the history
// bundle its phone sent: nothing may panic, a bundle that decodes must be
// imported whole, and a device reopened on the same state must show the same
// chats and contacts (what was imported was stored, not only shown).
func FuzzHistoryBundle(f *testing.F) {
	for _, h := range []*pb.HistorySync{
		{},
		{Contacts: []*pb.Contact{{User: "+15550101", Name: "bob"}},
			Chats: []*pb.HistoryChat{{Peer: "+15550101", Messages: []*pb.HistoryMessage{
				{MessageId: "m1", FromUser: "+15550101", Text: "hi", SentUnixMs: 1_700_000_000_000, Status: 0},
				{MessageId: "m2", FromUser: "+15550100", Text: "hello", SentUnixMs: 1_700_000_001_000, Status: 3},
				{MessageId: "m2", FromUser: "+15550100", Text: "a duplicate id"},
			}}}},
		{Chats: []*pb.HistoryChat{{Peer: "+15550103", Messages: []*pb.HistoryMessage{
			{MessageId: "m4", FromUser: "+15550103", Text: "from year 146 million", SentUnixMs: 1 << 62},
		}}}},
		{Chats: []*pb.HistoryChat{{Peer: "+15550102", Messages: []*pb.HistoryMessage{
			{MessageId: "m3", FromUser: "+15550102", Text: "a picture", Media: &pb.Media{Type: pb.MediaType_IMAGE, MediaKey: make([]byte, 32)}},
		}}}},
	} {
		raw, err := proto.Marshal(h)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		h, err := decodeHistory(raw)
		if err != nil {
			return
		}
		st := kv.NewMem()
		self := e2e.Address{User: "+15550100", Device: 1}
		d := &Device{chats: newChats(st, self.User), state: newAppState(st), self: self, cfg: Config{}.withDefaults()}
		d.log = d.cfg.Logger
		if err := d.importHistory(e2e.Address{User: self.User}, h); err != nil {
			t.Fatalf("a bundle that decodes fails to import: %v", err)
		}
		reopened := newChats(st, self.User)
		if err := reopened.load(); err != nil {
			t.Fatalf("a device reopened after importing history fails to load: %v", err)
		}
		if !maps.Equal(reopened.contacts(), d.Contacts()) {
			t.Fatalf("contacts after reopening: %v, want %v", reopened.contacts(), d.Contacts())
		}
		for _, c := range d.Chats() {
			if got, want := inUTC(reopened.messages(c.Peer)), inUTC(d.Messages(c.Peer)); !reflect.DeepEqual(got, want) {
				t.Fatalf("chat %q after reopening: %+v, want %+v", c.Peer, got, want)
			}
		}
	})
}

// inUTC puts the messages' times in one zone, so that DeepEqual compares
// instants: a reloaded time keeps the offset but not the *Location.
func inUTC(ms []Message) []Message {
	for i := range ms {
		ms[i].Sent = ms[i].Sent.UTC()
	}
	return ms
}
