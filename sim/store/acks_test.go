package store

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// queued lists the seqs in a device's queue as the file holds them, acked
// or not.
func queued(t *testing.T, db *bolt.DB, a Address) []uint64 {
	t.Helper()
	var seqs []uint64
	err := db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bQLog).ForEach(func(_, v []byte) error {
			dk, seq, _, _, err := parseLogItem(v)
			if err == nil && bytes.Equal(dk, devKey(a)) {
				seqs = append(seqs, seq)
			}
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

// holdCommitter keeps the store's committer in a transaction until release
// is called, so that nothing commits meanwhile and the writes that come
// wait to commit together.
func holdCommitter(t *testing.T, s *Bolt) (release func()) {
	t.Helper()
	holding, done := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- s.group.write(func(*bolt.Tx) error {
			close(holding)
			<-done
			return nil
		})
	}()
	<-holding
	return func() {
		t.Helper()
		close(done)
		if err := <-held; err != nil {
			t.Fatal(err)
		}
	}
}

func readSeqs(t *testing.T, s *Bolt, a Address) []uint64 {
	t.Helper()
	items, err := s.Read(a, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, it := range items {
		seqs = append(seqs, it.Seq)
	}
	return seqs
}

// An ack is answered before its delete is durable: until the delete
// commits, the file (what a crash leaves) still holds the acked items, so
// a crash brings them back (a redelivery) and loses nothing; Read, Len and
// Depth leave them out at once; the delete commits on its own soon after.
func TestAckDeletesLazily(t *testing.T) {
	s, path := openTemp(t)
	mustAccount(t, s, "+1000000", 1)
	bob := Address{User: "+1000000"}
	for _, id := range []string{"a", "b", "c", "d"} {
		if _, err := s.Enqueue(Batch{Sender: bob, Items: []Item{{To: bob, Delivery: msg(id)}}}); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing commits while the file is copied.
	release := holdCommitter(t, s)
	if n, err := s.Ack(bob, []uint64{1, 3}); n != 2 || err != nil {
		t.Fatalf("ack: %d, %v; want 2", n, err)
	}
	if n, err := s.Ack(bob, []uint64{3}); n != 0 || err != nil {
		t.Fatalf("second ack of 3: %d, %v; want 0 (acked already)", n, err)
	}
	if got := readSeqs(t, s, bob); !slices.Equal(got, []uint64{2, 4}) {
		t.Fatalf("read after ack: %v, want [2 4]", got)
	}
	if n, _ := s.Len(bob); n != 2 || s.Depth() != 2 {
		t.Fatalf("len %d, depth %d after ack; want 2 and 2", n, s.Depth())
	}
	crashed := filepath.Join(t.TempDir(), "crashed.db")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(crashed, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	release()

	after, err := OpenBolt(crashed, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := readSeqs(t, after, bob); !slices.Equal(got, []uint64{1, 2, 3, 4}) {
		t.Fatalf("after a crash before the delete committed: %v, want [1 2 3 4] (acked items again, none lost)", got)
	}
	after.Close()

	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(queued(t, s.db, bob), []uint64{2, 4}) {
		if time.Now().After(deadline) {
			t.Fatalf("file holds %v 5s after the ack, want [2 4]: the delete never committed", queued(t, s.db, bob))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Removing a device with acked items not yet deleted counts each item out
// of the depth once.
func TestRemoveDeviceWithLazyAcks(t *testing.T) {
	s, _ := openTemp(t)
	mustAccount(t, s, "+1000000", 1)
	phone := Address{User: "+1000000"}
	web := device("+1000000", 1, 9)
	if err := s.AddCompanion(web, nil, 4); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if _, err := s.Enqueue(Batch{Sender: phone, Items: []Item{{To: web.Address, Delivery: msg(id)}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Ack(web.Address, []uint64{1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveDevices(web.User, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	if s.Depth() != 0 || s.QueuedBytes() != 0 {
		t.Fatalf("depth %d, %d bytes after removing the only queued device; want 0", s.Depth(), s.QueuedBytes())
	}
}
