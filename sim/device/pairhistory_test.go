package device

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
)

// A history sealed into the phone's scan is the companion's once Pair
// returns, listed before the device is online, and the phone hears it was
// taken. One altered on the way is refused, and a mirror companion takes
// none: the phone hears it was not taken, and the companion takes it from
// the message the phone then sends.
func TestPairTakesTheHistoryTheScanCarries(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := startRelay(t)
	phone := registerPhone(t, ctx, s, "+15550400", nil)
	const bob = "+15550401"
	history := &pb.HistorySync{
		Contacts: []*pb.Contact{{User: bob, Name: "Bobby"}},
		Chats: []*pb.HistoryChat{{Peer: bob, Messages: []*pb.HistoryMessage{
			{MessageId: "m1", FromUser: bob, Text: "hello", SentUnixMs: 1700000000000, Status: 3},
		}}},
	}
	raw, err := pb.Marshal(history)
	if err != nil {
		t.Fatal(err)
	}
	for dev, tt := range []struct {
		name           string
		altered, taken bool
		cfg            Config
	}{
		{"sealed", false, true, Config{}},
		{"altered", true, false, Config{}},
		{"to a mirror companion", false, false, Config{Mirror: true}},
	} {
		var shown atomic.Int32
		cfg := tt.cfg
		cfg.Events = func(e Event) {
			if e.Kind == HistoryShown {
				shown.Add(1)
			}
		}
		d, linked := scanCompanion(t, ctx, s, phone, uint32(dev+1), cfg, func(scan *pb.PairScan, q e2e.QR) {
			if scan.History, err = e2e.SealHistory(q.IdentityKey, q.AdvSecret, scan.Identity.Details, raw); err != nil {
				t.Fatal(err)
			}
			if tt.altered {
				scan.History[len(scan.History)-1] ^= 1
			}
		})
		got := texts(d.Messages(bob))
		if tt.taken {
			if !linked.GetHistoryTaken() || !slices.Equal(got, []string{"hello"}) || d.Contacts()[bob] != "Bobby" || shown.Load() != 1 {
				t.Fatalf("%s: taken %v, chat %q, contact %q, shown %d times as Pair returned; want taken, [hello], Bobby, once",
					tt.name, linked.GetHistoryTaken(), got, d.Contacts()[bob], shown.Load())
			}
			continue
		}
		if linked.GetHistoryTaken() || len(got) != 0 || shown.Load() != 0 {
			t.Fatalf("%s: taken %v, chat %q, shown %d times; want none of it", tt.name, linked.GetHistoryTaken(), got, shown.Load())
		}
		if err := phone.SendHistory(ctx, d.Self(), history); err != nil {
			t.Fatal(err)
		}
		for !slices.Equal(texts(d.Messages(bob)), []string{"hello"}) {
			select {
			case <-ctx.Done():
				t.Fatalf("%s: the history the phone sent after the link never showed: %q", tt.name, texts(d.Messages(bob)))
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

func texts(ms []Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Text)
	}
	return out
}
