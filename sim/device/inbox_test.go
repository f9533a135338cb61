package device

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/kv"
)

// failingChats is a State whose writes of chat messages fail while broken.
type failingChats struct {
	kv.KV
	broken   atomic.Bool
	refusals atomic.Int32
}

func (f *failingChats) Put(key string, value []byte) error {
	if f.broken.Load() && strings.HasPrefix(key, prefixMsg) {
		f.refusals.Add(1)
		return errors.New("disk full")
	}
	return f.KV.Put(key, value)
}

// A message whose content cannot be stored must stay queued and be stored
// once the state works again, not be acked and lost: it decrypts only once.
func TestReceivedMessageSurvivesAFailingStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := startRelay(t)
	alice := registerPhone(t, ctx, s, "+15550100", nil)
	st := &failingChats{KV: kv.NewMem()}
	box := &recorder{texts: map[string][]string{}}
	bob, err := Register(ctx, Config{Name: "bob", RelayURL: s.WSURL(), RelayKey: s.Key(), State: st, Events: box.event,
		BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond}, "+15550101", "bob")
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	st.broken.Store(true)
	if _, err := alice.SendText(ctx, bob.Self().User, "kept"); err != nil {
		t.Fatal(err)
	}
	for st.refusals.Load() < 3 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	st.broken.Store(false)
	for len(bob.Messages(alice.Self().User)) == 0 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	msgs := bob.Messages(alice.Self().User)
	if len(msgs) != 1 || msgs[0].Text != "kept" {
		t.Fatalf("bob's chat with alice holds %v, want the one message \"kept\"", msgs)
	}
	if got := box.received(alice.Self().User); len(got) != 1 {
		t.Errorf("bob reported %d receptions (%v), want 1", len(got), got)
	}
	n := 0
	st.Scan(prefixInbox, func(string, []byte) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d plaintexts still kept after their content was stored", n)
	}
}
