package device

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/relay"
	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// flakyStore is the relay's store with the commits of one message going
// the way a cluster's go while a NATS stream elects its leader: before
// runs ahead of each commit of message id (try 1 is the first) and may
// stall it, or fail it, which the relay answers INTERNAL.
type flakyStore struct {
	store.Store
	id     string
	before func(try int) error
	tries  atomic.Int32
}

func (s *flakyStore) Enqueue(b store.Batch) (store.Result, error) {
	if len(b.Items) > 0 && b.Items[0].Delivery.GetMessage().GetMessageId() == s.id {
		if err := s.before(int(s.tries.Add(1))); err != nil {
			return store.Result{}, err
		}
	}
	return s.Store.Enqueue(b)
}

// startFlakyRelay serves a relay whose store runs before ahead of each
// commit of message id.
func startFlakyRelay(t *testing.T, id string, before func(try int) error) (*relay.Server, *flakyStore) {
	t.Helper()
	flaky := &flakyStore{id: id, before: before}
	s := startRelayWith(t, relay.Config{WrapStore: func(st store.Store) store.Store {
		flaky.Store = st
		return flaky
	}})
	return s, flaky
}

var errNoLeader = errors.New("nats: no response from stream")

// eventTally counts events by device, kind and message id.
type eventTally struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *eventTally) event(e Event) {
	if e.MessageID == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[fmt.Sprint(e.Device, e.Kind, e.MessageID)]++
}

func (c *eventTally) count(device string, k EventKind, id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[fmt.Sprint(device, k, id)]
}

// resendUsers registers alice (her phone with cfg) and bob, each with a
// phone and a companion, all counted by the returned tally. It returns
// alice's phone and the devices her messages to bob reach: her companion,
// bob's phone and his companion.
func resendUsers(t *testing.T, ctx context.Context, s *relay.Server, cfg Config) (*Device, []*Device, *eventTally) {
	t.Helper()
	tally := &eventTally{n: map[string]int{}}
	cfg.Name, cfg.RelayURL, cfg.RelayKey, cfg.Events = "+15550140", s.WSURL(), s.Key(), tally.event
	alice, err := Register(ctx, cfg, cfg.Name, "alice")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alice.Close() })
	aliceWeb := linkCompanion(t, ctx, s, alice, 1, tally.event)
	bob := registerPhone(t, ctx, s, "+15550141", tally.event)
	bobWeb := linkCompanion(t, ctx, s, bob, 1, tally.event)
	return alice, []*Device{aliceWeb, bob, bobWeb}, tally
}

// expectOnce checks that alice counted message id sent and acked once and
// that the relay pushed it once to each target. A message sent after it
// reaches every target first: each queue is in order, so a second copy of
// id would have come before it.
func expectOnce(t *testing.T, ctx context.Context, alice *Device, targets []*Device, tally *eventTally, id string) {
	t.Helper()
	after, err := alice.SendText(ctx, targets[1].Self().User, "after")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range targets {
		waitFor(t, ctx, d.Name()+" to get the message sent after", func() bool { return tally.count(d.Name(), Pushed, after) > 0 })
		if n := tally.count(d.Name(), Pushed, id); n != 1 {
			t.Errorf("%s got the message %d times, want once", d.Name(), n)
		}
	}
	for _, k := range []EventKind{Sent, Acked} {
		if n := tally.count(alice.Name(), k, id); n != 1 {
			t.Errorf("alice has %d %s events for the message, want 1", n, k)
		}
	}
}

// A send the relay answers INTERNAL (a NATS stream without a leader for a
// moment) is sent again under its id and taken: the caller sees no error,
// every target device gets the message once, and the sender counts it
// once.
func TestSendFailedOnceIsSentAgain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := NewMessageID()
	s, st := startFlakyRelay(t, id, func(try int) error {
		if try == 1 {
			return errNoLeader
		}
		return nil
	})
	alice, targets, tally := resendUsers(t, ctx, s, Config{})
	if err := alice.SendTextID(ctx, id, targets[1].Self().User, "through an election"); err != nil {
		t.Fatalf("send the relay failed once: %v", err)
	}
	if n := st.tries.Load(); n != 2 {
		t.Errorf("the relay committed the message %d times, want twice (failed, then taken)", n)
	}
	expectOnce(t, ctx, alice, targets, tally, id)
}

// A send the relay does not answer within the call timeout, on a link that
// stays up (its commit stalls), is sent again under its id: the relay
// answers the repeat after the first commit, as a duplicate, and the
// message reaches every target once.
func TestSendUnansweredInTimeIsSentAgain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const timeout = time.Second
	id := NewMessageID()
	s, st := startFlakyRelay(t, id, func(try int) error {
		if try == 1 {
			time.Sleep(5 * timeout / 2)
		}
		return nil
	})
	alice, targets, tally := resendUsers(t, ctx, s, Config{CallTimeout: timeout})
	if err := alice.SendTextID(ctx, id, targets[1].Self().User, "through a stall"); err != nil {
		t.Fatalf("send the relay answered late: %v", err)
	}
	if n := st.tries.Load(); n < 2 {
		t.Errorf("the relay committed the message %d times: it was not sent again", n)
	}
	expectOnce(t, ctx, alice, targets, tally, id)
}

// A send the relay keeps failing is sent again, backing off, only for
// ResendFor, each repeat a RequestRepeated event; then it fails with the
// relay's code.
func TestSendGivesUpAfterResendFor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const resendFor = 500 * time.Millisecond
	id := NewMessageID()
	s, st := startFlakyRelay(t, id, func(int) error { return errNoLeader })
	alice, targets, tally := resendUsers(t, ctx, s, Config{ResendFor: resendFor, BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
	start := time.Now()
	err := alice.SendTextID(ctx, id, targets[1].Self().User, "never taken")
	took := time.Since(start)
	if Code(err) != pb.ErrorCode_INTERNAL || !strings.Contains(err.Error(), "gave up") {
		t.Fatalf("send the relay always fails: %v, want INTERNAL after giving up", err)
	}
	if took < resendFor/2 || took > 5*resendFor {
		t.Errorf("the send gave up after %v, want about %v", took, resendFor)
	}
	tries := int(st.tries.Load())
	if tries < 3 {
		t.Errorf("the send was tried %d times in %v, backing off at most 50ms", tries, took)
	}
	if n := tally.count(alice.Name(), RequestRepeated, id); n != tries-1 {
		t.Errorf("%d request-repeated events for %d tries, want one per repeat", n, tries)
	}
}

// A final refusal is returned at once, the request not sent again: a
// direct send whose target the relay finds removed as it commits
// (UNKNOWN_DEVICE), and a message to a user who does not exist
// (UNKNOWN_USER, to the device lists it needs).
func TestFinalRefusalIsNotSentAgain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := NewMessageID()
	s, st := startFlakyRelay(t, id, func(int) error { return store.ErrNotFound })
	// Short, so a device that took these for failures of the moment
	// fails this test soon, naming its tries.
	alice, targets, _ := resendUsers(t, ctx, s, Config{ResendFor: 300 * time.Millisecond})
	chat := &pb.Content{Kind: &pb.Content_Chat{Chat: &pb.Chat{Text: "to a device removed meanwhile"}}}
	if err := alice.SendDirect(ctx, id, targets[1].Self(), chat); Code(err) != pb.ErrorCode_UNKNOWN_DEVICE {
		t.Fatalf("direct send to a device removed as it commits: %v, want UNKNOWN_DEVICE", err)
	}
	if n := st.tries.Load(); n != 1 {
		t.Errorf("the refused direct send was committed %d times, want once", n)
	}

	lists := `linksim_relay_frames_total{dir="in",type="get_devices"}`
	before := relayMetric(t, s, lists)
	if _, err := alice.SendText(ctx, "+15550149", "to nobody"); Code(err) != pb.ErrorCode_UNKNOWN_USER {
		t.Fatalf("send to a user who does not exist: %v, want UNKNOWN_USER", err)
	}
	if n := relayMetric(t, s, lists) - before; n != 1 {
		t.Errorf("the device lists of a user who does not exist were asked for %v times, want once", n)
	}
}
