package store

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A device's queue holds at most MaxQueuedBytes; acks free room, and the
// count survives a reopen.
func TestQueueByteCap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.db")
	s, err := OpenBolt(path, Options{MaxQueuedBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	mustAccount(t, s, "+1000000", 1)
	mustAccount(t, s, "+2000000", 2)
	to := Address{User: "+2000000"}
	enqueue := func(id string) error {
		_, err := s.Enqueue(Batch{Sender: Address{User: "+1000000"}, Items: []Item{{To: to, Delivery: msg(id)}}})
		return err
	}
	var seqs []uint64
	for i := 0; ; i++ {
		err := enqueue(fmt.Sprintf("m%02d", i))
		if err != nil {
			var qf *QueueFullError
			if !errors.Is(err, ErrQueueFull) || !errors.As(err, &qf) || qf.To != to {
				t.Fatalf("enqueue past the cap: %v, want ErrQueueFull for %s", err, to)
			}
			break
		}
		seqs = append(seqs, uint64(i+1))
		if i > 100 {
			t.Fatal("the queue takes more than 100 bytes")
		}
	}
	full := s.QueuedBytes()
	if full <= 0 || full > 100 || len(seqs) == 0 {
		t.Fatalf("%d bytes in %d items queued, want 1 to 100", full, len(seqs))
	}
	s.Close()
	if s, err = OpenBolt(path, Options{MaxQueuedBytes: 100}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.QueuedBytes(); got != full {
		t.Fatalf("%d bytes queued after reopening, want %d", got, full)
	}
	if err := enqueue("again"); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("enqueue to a full queue after reopening: %v", err)
	}
	if _, err := s.Ack(to, seqs[:1]); err != nil {
		t.Fatal(err)
	}
	if err := enqueue("fits"); err != nil {
		t.Fatalf("enqueue after an ack freed room: %v", err)
	}
}

// dedupStore opens a store with opt and two accounts, the sender's and the
// recipient's.
func dedupStore(t *testing.T, opt Options) (s *Bolt, from, to Address) {
	t.Helper()
	s, err := OpenBolt(filepath.Join(t.TempDir(), "relay.db"), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	mustAccount(t, s, "+1000000", 1)
	mustAccount(t, s, "+2000000", 2)
	return s, Address{User: "+1000000"}, Address{User: "+2000000"}
}

// keptIDs counts the message ids the store remembers for sender.
func keptIDs(s *Bolt, sender Address) (n int) {
	s.db.View(func(tx *bolt.Tx) error {
		k := devKey(sender)
		c := tx.Bucket(bSentIDs).Cursor()
		for id, _ := c.Seek(k); id != nil && bytes.HasPrefix(id, k); id, _ = c.Next() {
			n++
		}
		return nil
	})
	return n
}

// The relay remembers message ids per sender for DedupWindow ids and
// DedupAge, forgetting the oldest first.
func TestDedupWindow(t *testing.T) {
	s, from, to := dedupStore(t, Options{DedupWindow: 3, DedupAge: time.Hour})
	send := func(id string, ms int64) Result {
		t.Helper()
		res, err := s.Enqueue(Batch{Sender: from, MessageID: id, UnixMs: ms, Items: []Item{{To: to, Delivery: msg(id)}}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	remembered := func(id string) bool {
		t.Helper()
		_, ok, err := s.Sent(from, id)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	const h = int64(time.Hour / time.Millisecond)
	for i, id := range []string{"a", "b", "c", "d"} {
		send(id, 1000+int64(i))
	}
	if remembered("a") || !remembered("b") || !remembered("d") {
		t.Fatal("after 4 ids with a window of 3: want a forgotten, b..d remembered")
	}
	if res := send("d", 2000); !res.Dup {
		t.Fatal("a resend within the window was not a duplicate")
	}
	send("e", 1004+h) // over an hour after b, c and d
	if remembered("b") || remembered("c") || remembered("d") || !remembered("e") {
		t.Fatal("ids older than an hour are still remembered")
	}
	for i := range 50 {
		send(fmt.Sprintf("x%d", i), 2*h)
	}
	if kept := keptIDs(s, from); kept != 3 {
		t.Fatalf("%d ids kept after 50 sends, want the window's 3", kept)
	}
}

// Past the dedup window, the oldest ids are forgotten in bulk, down to
// 15/16 of it, and not again until the window is passed again.
func TestDedupWindowPrunedInBulk(t *testing.T) {
	s, from, to := dedupStore(t, Options{DedupWindow: 32})
	for i := range 35 {
		if _, err := s.Enqueue(Batch{Sender: from, MessageID: fmt.Sprint(i), Items: []Item{{To: to, Delivery: msg("x")}}}); err != nil {
			t.Fatal(err)
		}
		want := i + 1
		if i >= 32 { // the 33rd went past 32: down to 30, then 31, 32
			want = 30 + i - 32
		}
		if ids := keptIDs(s, from); ids != want {
			t.Fatalf("after %d sends: %d ids kept, want %d", i+1, ids, want)
		}
	}
	if _, ok, _ := s.Sent(from, "2"); ok {
		t.Fatal("id 2 still remembered after the bulk prune")
	}
	if _, ok, _ := s.Sent(from, "3"); !ok {
		t.Fatal("id 3 forgotten: the prune went below 15/16 of the window")
	}
}
