package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

// A group commit of sends to many devices writes a few pages of the log,
// not a page per queue: 300 sends to distinct devices out of 3,000, all in
// one transaction, write at most 32 pages (16 measured; a nested bucket
// per device wrote 108).
func TestCommitPagesDoNotGrowWithQueues(t *testing.T) {
	s, err := OpenBolt(filepath.Join(t.TempDir(), "relay.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const devices, sends = 3000, 300
	for i := range devices {
		d := device(benchUser(i), 0, 0)
		d.NoiseKey = fmt.Appendf(nil, "key %d", i)
		if err := s.CreateAccount(Account{User: d.User}, d, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Every send waits for the held transaction, to commit in the next.
	release := holdCommitter(t, s)
	before, commits := s.db.Stats(), s.CommitStats().Commits
	sent := make(chan error, 1)
	go func() {
		sent <- inParallel(sends, sends, func(_, i int) error {
			to := Address{User: benchUser(i * devices / sends)}
			_, err := s.Enqueue(Batch{Sender: to, Items: []Item{{To: to, Delivery: msg(fmt.Sprint(i))}}})
			return err
		})
	}()
	releaseWhenWaiting(t, s, sends, release)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	after := s.db.Stats()
	// The held transaction committed too, writing its meta page alone.
	n, pages := s.CommitStats().Commits-commits, after.TxStats.GetWrite()-before.TxStats.GetWrite()
	if n > 2 || pages > 32 {
		t.Errorf("%d sends to distinct devices of %d wrote %d pages in %d commits; want at most 32 in 1 (besides the held one)", sends, devices, pages, n)
	}
}

// A store from before the log keeps its queued items and their seqs, and
// new items get seqs above every seq any device had, even one whose queue
// was empty.
func TestOldQueuesMovedOnOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.db")
	s, err := OpenBolt(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustAccount(t, s, "+1000000", 1)
	mustAccount(t, s, "+2000000", 2)
	bob, carol := Address{User: "+1000000"}, Address{User: "+2000000"}
	s.Close()
	// The older layout: a nested bucket per device, 8-byte seq -> Delivery
	// with its seq; the bucket's sequence is the device's last seq.
	old, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = old.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bQLog); err != nil {
			return err
		}
		queues, err := tx.CreateBucket(bQueuesOld)
		if err != nil {
			return err
		}
		qb, err := queues.CreateBucket(devKey(bob))
		if err != nil {
			return err
		}
		for _, seq := range []uint64{5, 7} {
			d := msg(fmt.Sprint("old", seq))
			d.Seq = seq
			v, err := proto.Marshal(d)
			if err != nil {
				return err
			}
			if err := qb.Put(logKey(seq), v); err != nil {
				return err
			}
		}
		qc, err := queues.CreateBucket(devKey(carol))
		if err != nil {
			return err
		}
		if err := errors.Join(qb.SetSequence(7), qc.SetSequence(40)); err != nil {
			return err
		}
		_, err = tx.CreateBucket(bQBytesOld)
		return err
	})
	old.Close()
	if err != nil {
		t.Fatal(err)
	}

	s, err = OpenBolt(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	items, err := s.Read(bob, 0, 10)
	if err != nil || len(items) != 2 || items[0].Seq != 5 || items[1].Seq != 7 || items[1].GetMessage().GetMessageId() != "old7" {
		t.Fatalf("bob's queue after the move: %v, %v; want old5 and old7 with seqs 5 and 7", items, err)
	}
	if s.Depth() != 2 || s.QueuedBytes() <= 0 {
		t.Errorf("depth %d, %d bytes after the move; want 2 items and their bytes", s.Depth(), s.QueuedBytes())
	}
	for _, to := range []Address{carol, bob} {
		res, err := s.Enqueue(Batch{Sender: bob, Items: []Item{{To: to, Delivery: msg("new")}}})
		if err != nil || res.Seqs[0] <= 40 {
			t.Errorf("new item for %s: %+v, %v; want a seq above 40, carol's last", to, res, err)
		}
	}
	if n, err := s.Ack(bob, []uint64{5}); n != 1 || err != nil {
		t.Errorf("ack of moved item 5: %d, %v; want 1", n, err)
	}
	if got := readSeqs(t, s, bob); len(got) != 2 || got[0] != 7 || got[1] <= 40 {
		t.Errorf("bob's queue after the ack: %v; want 7, then the new item", got)
	}
	s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bQueuesOld) != nil || tx.Bucket(bQBytesOld) != nil {
			t.Error("the per-device buckets are still there after the move")
		}
		return nil
	})
}

// Items of a device that no longer exists (removed while its items' delete
// had not committed, then a crash) are deleted on open and not counted.
func TestOrphanItemsDeletedOnOpen(t *testing.T) {
	s, path := openTemp(t)
	mustAccount(t, s, "+1000000", 1)
	bob := Address{User: "+1000000"}
	if _, err := s.Enqueue(Batch{Sender: bob, Items: []Item{{To: bob, Delivery: msg("kept")}}}); err != nil {
		t.Fatal(err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bQLog).Put(logKey(99), logItem(devKey(Address{User: "+9000000"}), 99, nil))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = OpenBolt(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Depth() != 1 {
		t.Errorf("depth %d after reopening with an orphan item, want 1", s.Depth())
	}
	s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bQLog).Get(logKey(99)) != nil {
			t.Error("the orphan item is still in the log")
		}
		return nil
	})
	if got := readSeqs(t, s, bob); !slices.Equal(got, []uint64{1}) {
		t.Errorf("bob's queue: %v, want [1]", got)
	}
}

// Sends to one device that commit together cannot pass its byte cap
// together: each counts those being enqueued with it.
func TestQueueCapHoldsWithinOneCommit(t *testing.T) {
	s, err := OpenBolt(filepath.Join(t.TempDir(), "relay.db"), Options{MaxQueuedBytes: 2500})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustAccount(t, s, "+1000000", 1)
	bob := Address{User: "+1000000"}
	release := holdCommitter(t, s)
	const sends = 3 // of ~1,000 bytes each: two fit
	results := make(chan error, sends)
	for i := range sends {
		go func() {
			d := msg(fmt.Sprint(i))
			d.GetMessage().Ciphertext = make([]byte, 1000)
			_, err := s.Enqueue(Batch{Sender: bob, Items: []Item{{To: bob, Delivery: d}}})
			results <- err
		}()
	}
	releaseWhenWaiting(t, s, sends, release)
	var full int
	for range sends {
		err := <-results
		if errors.Is(err, ErrQueueFull) {
			full++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := s.Len(bob); full != 1 || n != 2 || s.QueuedBytes() > 2500 {
		t.Errorf("%d sends of ~1,000 bytes under a cap of 2,500 in one commit: %d refused, %d queued (%d bytes); want 1 refused, 2 queued", sends, full, n, s.QueuedBytes())
	}
}

// releaseWhenWaiting calls release (of holdCommitter) once n writes wait
// for the committer, so that they commit in one transaction.
func releaseWhenWaiting(t *testing.T, s *Bolt, n int, release func()) {
	t.Helper()
	defer release()
	for deadline := time.Now().Add(10 * time.Second); len(s.group.reqs) < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d writes waiting for the committer after 10s", len(s.group.reqs), n)
		}
	}
}

// A reservation of 0 bytes holds nothing, so its queue may be dropped
// before the reservation is given back; giving it back must not crash.
func TestEmptyReservationOutlivesItsQueue(t *testing.T) {
	x := newQueueIndex()
	held := []reservation{{dk: "a", bytes: 0}}
	if full := x.reserve(held, 0); full != -1 {
		t.Fatalf("reserve = %d, want -1", full)
	}
	x.drop("a")
	x.release(held, -1)
	// Within one reserve: the same queue reserved with 0 bytes, then
	// overflowing, gives back what it held.
	if full := x.reserve([]reservation{{dk: "b", bytes: 0}, {dk: "b", bytes: 10}}, 5); full != 1 {
		t.Fatalf("reserve over the cap = %d, want 1", full)
	}
	if n := len(x.queues); n != 0 {
		t.Errorf("%d queues left after every reservation was given back, want 0", n)
	}
}
