package relay_test

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/reports"
	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/relay"
	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// breaker breaks the relay's pushes of one sender's messages to one
// device, once, in one way: "duplicate" pushes a delivery twice,
// "reorder" holds one back until the next has been pushed, "drop" never
// pushes it. "" breaks nothing.
type breaker struct {
	mode string

	mu       sync.Mutex
	from, to store.Address // zero until armed
	held     *pb.Delivery
	done     bool
}

func (b *breaker) arm(from, to e2e.Address) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.from, b.to = store.Address(from), store.Address(to)
}

func (b *breaker) push(to store.Address, batch []*pb.Delivery) []*pb.Delivery {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mode == "" || b.done || to != b.to {
		return batch
	}
	out := make([]*pb.Delivery, 0, len(batch)+1)
	for _, d := range batch {
		from := store.Address{User: d.GetFrom().GetUser(), Device: d.GetFrom().GetDevice()}
		if b.done || d.GetMessage() == nil || from != b.from {
			out = append(out, d)
			continue
		}
		switch b.mode {
		case "duplicate":
			out, b.done = append(out, d, d), true
		case "drop":
			b.done = true
		case "reorder":
			if b.held == nil {
				b.held = d
				continue
			}
			out, b.held, b.done = append(out, d, b.held), nil, true
		}
	}
	return out
}

// TestLedgerCatchesABrokenRelay runs real devices (alice's phone sending
// to bob's phone and his linked native web client) against a relay that
// mishandles one delivery to bob/web-1, and checks that the ledger fails
// the way the relay broke, even where the device hides it (it drops a
// repeated or overtaken queue item by its seq).
func TestLedgerCatchesABrokenRelay(t *testing.T) {
	for _, tc := range []struct {
		mode string
		kind reports.ProblemKind
		line string // a piece of the problem line
		// lost is how many deliveries bob/web-1 misses: the dropped one,
		// or the overtaken one (the device takes it for a repeat).
		lost int
	}{
		{mode: ""},
		{mode: "duplicate", kind: reports.Duplicated, line: "from the relay 2 times"},
		{mode: "reorder", kind: reports.Reordered, line: "from the relay out of order", lost: 1},
		{mode: "drop", kind: reports.Lost, line: "bob/web-1 never received msg", lost: 1},
	} {
		t.Run(cmp.Or(tc.mode, "intact"), func(t *testing.T) {
			b := &breaker{mode: tc.mode}
			env := harness.Start(t, harness.Config{Relay: relay.BreakPushes(relay.Config{NoSync: true}, b.push)})
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			alice, err := env.NewUser(ctx, "alice", 0)
			if err != nil {
				t.Fatal(err)
			}
			bob, err := env.NewUser(ctx, "bob", 1)
			if err != nil {
				t.Fatal(err)
			}
			b.arm(alice.Phone.Self(), bob.Device(0).Self())
			const n = 3
			for i := range n {
				if _, err := alice.Phone.SendText(ctx, bob.Phone.Self().User, fmt.Sprintf("m%d", i+1)); err != nil {
					t.Fatal(err)
				}
			}
			// Settled: every delivery that will happen happened (in-order
			// delivery: bob/web-1 got what was sent after a dropped one).
			verdict := func() error {
				l := env.Ledger()
				if want := 2*n - tc.lost; l.Totals.Delivered != want {
					return fmt.Errorf("%d of %d delivered so far", l.Totals.Delivered, want)
				}
				if tc.mode == "" {
					return env.Check()
				}
				if l.Totals.Count(tc.kind) == 0 {
					return fmt.Errorf("no %s problem yet", tc.kind)
				}
				return nil
			}
			if err := harness.Await(ctx, "the ledger's verdict", verdict); err != nil {
				t.Fatal(err)
			}
			if tc.mode == "" {
				if w := env.Ledger().Totals.Wire; w != 2*n {
					t.Errorf("the ledger saw %d of %d deliveries on the wire", w, 2*n)
				}
				return
			}
			err = env.Check()
			if err == nil || env.Ledger().Totals.Count(tc.kind) != 1 || !strings.Contains(err.Error(), tc.line) {
				t.Fatalf("a relay that breaks a delivery (%s): want one %s problem saying %q, got %v", tc.mode, tc.kind, tc.line, err)
			}
			t.Logf("ledger: %v", err)
			if tc.mode == "duplicate" {
				if got := len(bob.Web(0).Messages(alice.Phone.Self().User)); got != n {
					t.Errorf("bob/web-1 shows %d messages, want %d: the device should hide the copy", got, n)
				}
			}
		})
	}
}
