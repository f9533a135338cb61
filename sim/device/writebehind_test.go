package device

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/kv"
)

// behindKV writes behind, as the browser app's IndexedDB store does: reads
// see every write at once, but a write is durable only once a Sync has run
// after it. crashed is what a page reopened after a crash would find.
type behindKV struct {
	*kv.Mem // what reads see
	mu      sync.Mutex
	durable *kv.Mem
	log     []func(kv.KV) error // writes not yet durable, in order
}

func newBehindKV() *behindKV { return &behindKV{Mem: kv.NewMem(), durable: kv.NewMem()} }

func (b *behindKV) Put(key string, value []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	v := slices.Clone(value)
	b.log = append(b.log, func(d kv.KV) error { return d.Put(key, v) })
	return b.Mem.Put(key, v)
}

func (b *behindKV) Delete(key string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.log = append(b.log, func(d kv.KV) error { return d.Delete(key) })
	return b.Mem.Delete(key)
}

func (b *behindKV) DeletePrefix(prefix string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.log = append(b.log, func(d kv.KV) error { return d.DeletePrefix(prefix) })
	return b.Mem.DeletePrefix(prefix)
}

func (b *behindKV) Sync() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, w := range b.log {
		if err := w(b.durable); err != nil {
			return err
		}
	}
	b.log = nil
	return nil
}

func (b *behindKV) crashed() *behindKV {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := newBehindKV()
	b.durable.Scan("", func(k string, v []byte) error {
		out.durable.Put(k, v)
		return out.Mem.Put(k, v)
	})
	return out
}

// A device whose state is written behind (the browser app's) that crashes
// mid-conversation, losing every write not yet synced, and is reopened on
// what was durable: nothing it acknowledged is lost, nothing it sent is
// sent again with a used key, in both directions. Without the sync before
// each frame, the reopened device lacks acked messages and ratchet steps.
func TestCrashWithStateWrittenBehind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := startRelay(t)
	alice := &recorder{texts: map[string][]string{}}
	bobGot := &recorder{texts: map[string][]string{}}
	a := registerPhone(t, ctx, s, "+15550101", alice.event)
	st := newBehindKV()
	cfg := Config{Name: "bob", RelayURL: s.WSURL(), RelayKey: s.Key(), State: st, Events: bobGot.event}
	b, err := Register(ctx, cfg, "+15550102", "bob")
	if err != nil {
		t.Fatal(err)
	}
	var toBob, toAlice []string
	round := func(b *Device, r int) {
		for i := range 5 {
			text := fmt.Sprintf("alice to bob %d.%d", r, i)
			if _, err := a.SendText(ctx, "+15550102", text); err != nil {
				t.Fatal(err)
			}
			toBob = append(toBob, text)
			text = fmt.Sprintf("bob to alice %d.%d", r, i)
			if _, err := b.SendText(ctx, "+15550101", text); err != nil {
				t.Fatal(err)
			}
			toAlice = append(toAlice, text)
		}
		waitMessages(t, ctx, b, "+15550101", len(toBob)+len(toAlice))
	}
	for r := range 3 {
		round(b, r)
		b.Close() // a crash: what was not synced is gone
		st = st.crashed()
		cfg.State = st
		if b, err = Open(ctx, cfg); err != nil {
			t.Fatalf("reopen after crash %d: %v", r+1, err)
		}
		defer b.Close()
	}
	round(b, 3)
	waitFor(t, ctx, "alice to get bob's messages", func() bool { return len(alice.received("+15550102")) >= len(toAlice) })
	time.Sleep(100 * time.Millisecond) // room for a duplicate to show
	if got := alice.received("+15550102"); !slices.Equal(got, toAlice) || alice.undecryptableCount() > 0 {
		t.Errorf("alice got %q (%d undecryptable), want %q", got, alice.undecryptableCount(), toAlice)
	}
	var got []string
	for _, m := range b.Messages("+15550101") {
		if !m.Outgoing {
			got = append(got, m.Text)
		}
	}
	if !slices.Equal(got, toBob) {
		t.Errorf("bob's chat holds %q from alice, want %q", got, toBob)
	}
}
