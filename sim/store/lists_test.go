package store

import (
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// A store written before device lists were packed and message ids flat
// (no lists bucket, a nested sent bucket per sender) opens with both built
// from what it held: the same lists, mirror companions left out of the
// listed ones, the same ids remembered, and the sender's order of sends
// carried on.
func TestOldLayoutMovedOnOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.db")
	s, err := OpenBolt(path, Options{DedupWindow: 3})
	if err != nil {
		t.Fatal(err)
	}
	mustAccount(t, s, "+1000000", 1)
	mustAccount(t, s, "+2000000", 2)
	mirror := device("+1000000", 1, 3)
	mirror.Mirror = true
	for _, d := range []Device{mirror, device("+1000000", 2, 4)} {
		if err := s.AddCompanion(d, nil, 4); err != nil {
			t.Fatal(err)
		}
	}
	from, to := Address{User: "+1000000"}, Address{User: "+2000000"}
	s.Close()
	// Rewrite it as the older layout kept it: no lists, ids "a" (sent
	// first) and "b" in a nested bucket whose sequence is 2, with a 16-byte
	// meta record.
	old, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = old.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bLists, bSentIDs, bSentMeta} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		meta, err := tx.CreateBucket(bSentMeta)
		if err != nil {
			return err
		}
		sent, err := tx.CreateBucket(bSentOld)
		if err != nil {
			return err
		}
		b, err := sent.CreateBucket(devKey(from))
		if err != nil {
			return err
		}
		for i, id := range []string{"a", "b"} {
			if err := b.Put([]byte(id), sentRecord(100+int64(i), uint64(i+1))); err != nil {
				return err
			}
		}
		if err := b.SetSequence(2); err != nil {
			return err
		}
		return meta.Put(devKey(from), sentRecord(100, 1))
	})
	old.Close()
	if err != nil {
		t.Fatal(err)
	}

	s, err = OpenBolt(path, Options{DedupWindow: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ids, err := s.DeviceIDs(from.User); err != nil || !slices.Equal(ids, []uint32{0, 1, 2}) {
		t.Errorf("device ids after the move: %v, %v; want 0 1 2", ids, err)
	}
	if ids, err := s.ListedIDs(from.User); err != nil || !slices.Equal(ids, []uint32{0, 2}) {
		t.Errorf("listed ids after the move: %v, %v; want 0 2 (1 is a mirror companion)", ids, err)
	}
	if ms, ok, err := s.Sent(from, "b"); err != nil || !ok || ms != 101 {
		t.Errorf("id b after the move: %d, %v, %v; want sent at 101", ms, ok, err)
	}
	// Seqs go on from 2: two more ids pass the window of 3, and the
	// oldest, a, is forgotten, b is not.
	for _, id := range []string{"c", "d"} {
		if _, err := s.Enqueue(Batch{Sender: from, MessageID: id, UnixMs: 200, Items: []Item{{To: to, Delivery: msg(id)}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, _ := s.Sent(from, "a"); ok {
		t.Error("id a still remembered past the window: seqs started over after the move")
	}
	if _, ok, _ := s.Sent(from, "b"); !ok {
		t.Error("id b forgotten too early")
	}
	s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bSentOld) != nil {
			t.Error("the nested sent buckets are still there after the move")
		}
		return nil
	})
}

// Device lists follow links and removals.
func TestListsFollowDevices(t *testing.T) {
	s, _ := openTemp(t)
	mustAccount(t, s, "+1000000", 1)
	mirror := device("+1000000", 1, 3)
	mirror.Mirror = true
	for _, d := range []Device{mirror, device("+1000000", 2, 4), device("+1000000", 3, 5)} {
		if err := s.AddCompanion(d, nil, 4); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.RemoveDevices("+1000000", []uint32{2}); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.DeviceIDs("+1000000"); !slices.Equal(ids, []uint32{0, 1, 3}) {
		t.Errorf("device ids %v, want 0 1 3", ids)
	}
	if ids, _ := s.ListedIDs("+1000000"); !slices.Equal(ids, []uint32{0, 3}) {
		t.Errorf("listed ids %v, want 0 3", ids)
	}
	if _, err := s.RemoveDevices("+1000000", []uint32{0, 1, 3}); err != nil {
		t.Fatal(err)
	}
	if ids, err := s.DeviceIDs("+1000000"); len(ids) != 0 || err != nil {
		t.Errorf("device ids with every device removed: %v, %v; want none", ids, err)
	}
}
