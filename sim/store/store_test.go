package store

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/linksim/linksim/sim/wire/pb"
)

func openTemp(t testing.TB) (*Bolt, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "relay.db")
	s, err := OpenBolt(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func device(user string, id uint32, key byte) Device {
	return Device{
		Address:        Address{User: user, Device: id},
		NoiseKey:       bytes.Repeat([]byte{key}, 32),
		RegistrationID: 7,
		IdentityKey:    append([]byte{5}, bytes.Repeat([]byte{key}, 32)...),
		SignedPreKey:   &pb.SignedPreKey{Id: 1, PublicKey: []byte{5, key}, Signature: []byte{key}},
	}
}

func prekeys(from, n uint32) []*pb.PreKey {
	var out []*pb.PreKey
	for id := from; id < from+n; id++ {
		out = append(out, &pb.PreKey{Id: id, PublicKey: []byte{5, byte(id)}})
	}
	return out
}

func mustAccount(t testing.TB, s *Bolt, user string, key byte) {
	t.Helper()
	if err := s.CreateAccount(Account{User: user}, device(user, 0, key), prekeys(1, 3)); err != nil {
		t.Fatal(err)
	}
}

func msg(id string) *pb.Delivery {
	return &pb.Delivery{ServerUnixMs: 1, From: &pb.Address{User: "+1000000"}, Item: &pb.Delivery_Message{Message: &pb.Message{MessageId: id, Ciphertext: []byte(id)}}}
}

func TestAccountsAndDevices(t *testing.T) {
	s, _ := openTemp(t)
	mustAccount(t, s, "+1000000", 1)
	if err := s.CreateAccount(Account{User: "+1000000"}, device("+1000000", 0, 2), nil); !errors.Is(err, ErrAccountExists) {
		t.Fatalf("second account with the same user: %v, want ErrAccountExists", err)
	}
	if err := s.CreateAccount(Account{User: "+2000000"}, device("+2000000", 0, 1), nil); !errors.Is(err, ErrKeyTaken) {
		t.Fatalf("account with a taken noise key: %v, want ErrKeyTaken", err)
	}
	if err := s.AddCompanion(device("+1000000", 0, 3), nil, 4); !errors.Is(err, ErrDeviceID) {
		t.Fatalf("companion with id 0: %v, want ErrDeviceID", err)
	}
	for id := uint32(1); id <= 4; id++ {
		if err := s.AddCompanion(device("+1000000", id, byte(10+id)), prekeys(1, 2), 4); err != nil {
			t.Fatalf("companion %d: %v", id, err)
		}
	}
	if err := s.AddCompanion(device("+1000000", 5, 20), nil, 4); !errors.Is(err, ErrTooManyDevices) {
		t.Fatalf("5th companion: %v, want ErrTooManyDevices", err)
	}
	ids, err := s.DeviceIDs("+1000000")
	if err != nil || !slices.Equal(ids, []uint32{0, 1, 2, 3, 4}) {
		t.Fatalf("device ids %v (%v), want 0..4", ids, err)
	}
	d, err := s.DeviceByKey(bytes.Repeat([]byte{12}, 32))
	if err != nil || d.Address != (Address{"+1000000", 2}) || d.SignedPreKey.GetId() != 1 {
		t.Fatalf("device by key: %+v, %v", d, err)
	}

	if _, err := s.Enqueue(Batch{Sender: Address{"+1000000", 0}, Items: []Item{{To: Address{"+1000000", 2}, Delivery: msg("a")}}}); err != nil {
		t.Fatal(err)
	}
	removed, err := s.RemoveDevices("+1000000", []uint32{2, 9})
	if err != nil || len(removed) != 1 || removed[0].Device != 2 {
		t.Fatalf("remove: %+v, %v", removed, err)
	}
	if s.Depth() != 0 {
		t.Fatalf("depth %d after removing the only queue with items", s.Depth())
	}
	if d, err := s.DeviceByKey(bytes.Repeat([]byte{12}, 32)); !errors.Is(err, ErrRemoved) || d.Device != 2 {
		t.Fatalf("removed device by key: %+v, %v; want ErrRemoved for device 2", d, err)
	}
	if _, err := s.PreKeyCount(Address{"+1000000", 2}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("prekeys of a removed device: %v", err)
	}
	if _, err := s.Len(Address{"+1000000", 2}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("queue of a removed device: %v", err)
	}
	// The removed id and the removed key are never used again.
	if err := s.AddCompanion(device("+1000000", 4, 30), nil, 4); !errors.Is(err, ErrDeviceID) {
		t.Fatalf("reused device id: %v, want ErrDeviceID", err)
	}
	if err := s.AddCompanion(device("+1000000", 5, 12), nil, 4); !errors.Is(err, ErrKeyTaken) {
		t.Fatalf("removed noise key: %v, want ErrKeyTaken", err)
	}
	if err := s.AddCompanion(device("+1000000", 5, 30), nil, 4); err != nil {
		t.Fatalf("companion 5 after a removal: %v", err)
	}

	name, about := "Alice", "busy"
	if err := s.SetProfile("+1000000", &name, nil, 5); err != nil {
		t.Fatal(err)
	}
	if err := s.SetProfile("+1000000", nil, &about, 6); err != nil {
		t.Fatal(err)
	}
	a, err := s.Account("+1000000")
	if err != nil || a.PushName != "Alice" || a.About != "busy" || a.AboutSetUnixMs != 6 || a.MaxDevice != 5 {
		t.Fatalf("account %+v, %v", a, err)
	}
	if _, err := s.Account("+3000000"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown account: %v", err)
	}
}

func TestPreKeys(t *testing.T) {
	s, _ := openTemp(t)
	mustAccount(t, s, "+1000000", 1)
	phone := Address{"+1000000", 0}
	n, err := s.AddPreKeys(phone, prekeys(2, 10), 8) // ids 2 and 3 are stored already
	if err != nil || n != 8 {
		t.Fatalf("add: %d, %v; want 8 stored (the limit)", n, err)
	}
	// An unknown address consumes nothing.
	if _, _, err := s.TakeBundles([]Address{phone, {"+1000000", 7}}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("take with an unknown device: %v", err)
	}
	for want := 7; want >= 0; want-- {
		b, left, err := s.TakeBundles([]Address{phone})
		if err != nil || left[0] != want || b[0].GetPrekey() == nil || b[0].GetRegistrationId() != 7 {
			t.Fatalf("take: %v left %v (%v), want a prekey and %d left", b, left, err, want)
		}
	}
	b, left, err := s.TakeBundles([]Address{phone})
	if err != nil || left[0] != 0 || b[0].GetPrekey() != nil || b[0].GetSignedPrekey().GetId() != 1 {
		t.Fatalf("take when empty: %v %v %v", b, left, err)
	}
	if err := s.SetSignedPreKey(phone, &pb.SignedPreKey{Id: 2, PublicKey: []byte{5}, Signature: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Device(phone); d.SignedPreKey.GetId() != 2 {
		t.Fatalf("signed prekey %v after rotation", d.SignedPreKey)
	}
}

func TestQueue(t *testing.T) {
	s, _ := openTemp(t)
	mustAccount(t, s, "+1000000", 1)
	mustAccount(t, s, "+2000000", 2)
	alice, bob := Address{"+1000000", 0}, Address{"+2000000", 0}
	send := func(id string) (Result, error) {
		return s.Enqueue(Batch{Sender: alice, MessageID: id, UnixMs: 42,
			Expect: map[string][]uint32{"+2000000": {0}},
			Items:  []Item{{To: bob, Delivery: msg(id)}}})
	}
	for i := range 5 {
		res, err := send(fmt.Sprint("m", i))
		if err != nil || res.Dup || !slices.Equal(res.Seqs, []uint64{uint64(i + 1)}) {
			t.Fatalf("send %d: %+v, %v", i, res, err)
		}
	}
	if res, err := send("m2"); err != nil || !res.Dup || res.UnixMs != 42 {
		t.Fatalf("repeated send: %+v, %v; want Dup", res, err)
	}
	if ms, ok, err := s.Sent(alice, "m3"); !ok || ms != 42 || err != nil {
		t.Fatalf("sent m3: %d %v %v", ms, ok, err)
	}
	_, err := s.Enqueue(Batch{Sender: alice, MessageID: "x", Expect: map[string][]uint32{"+2000000": {0, 1}},
		Items: []Item{{To: bob, Delivery: msg("x")}}})
	if !errors.Is(err, ErrStale) {
		t.Fatalf("send against a stale list: %v", err)
	}
	_, err = s.Enqueue(Batch{Sender: alice, Items: []Item{{To: bob, Delivery: msg("y")}, {To: Address{"+2000000", 3}, Delivery: msg("y")}}})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("send to a missing device: %v", err)
	}
	if n, _ := s.Len(bob); n != 5 || s.Depth() != 5 {
		t.Fatalf("queue %d, depth %d; want 5 (failed sends enqueue nothing)", n, s.Depth())
	}
	items, err := s.Read(bob, 1, 3)
	if err != nil || len(items) != 3 || items[0].Seq != 2 || items[2].Seq != 4 || items[0].GetMessage().GetMessageId() != "m1" {
		t.Fatalf("read after 1: %v, %v", items, err)
	}
	if n, err := s.Ack(bob, []uint64{1, 3, 3, 99}); n != 2 || err != nil {
		t.Fatalf("ack: %d, %v; want 2 deleted", n, err)
	}
	items, _ = s.Read(bob, 0, 10)
	var seqs []uint64
	for _, it := range items {
		seqs = append(seqs, it.Seq)
	}
	if !slices.Equal(seqs, []uint64{2, 4, 5}) || s.Depth() != 3 {
		t.Fatalf("left %v depth %d, want [2 4 5] and 3", seqs, s.Depth())
	}
}

// TestGroupCommit runs many concurrent enqueues: every item gets its own seq
// and nothing is lost; CommitStats counts each write once, in no more
// commits than writes.
func TestGroupCommit(t *testing.T) {
	s, _ := openTemp(t)
	mustAccount(t, s, "+1000000", 1)
	mustAccount(t, s, "+2000000", 2)
	const senders, each = 16, 20
	before := s.CommitStats()
	enqueueConcurrently(t, s, senders, senders*each)
	st := s.CommitStats()
	if writes, commits := st.Writes-before.Writes, st.Commits-before.Commits; writes != senders*each || commits < 1 || commits > writes || st.Pages <= before.Pages {
		t.Fatalf("%d enqueues counted as %d writes in %d commits, %d pages; want as many writes, in no more commits, and some pages",
			senders*each, writes, commits, st.Pages-before.Pages)
	}
	items, _ := s.Read(Address{"+2000000", 0}, 0, senders*each+1)
	if len(items) != senders*each {
		t.Fatalf("%d items, want %d", len(items), senders*each)
	}
	for i, it := range items {
		if it.Seq != uint64(i+1) {
			t.Fatalf("item %d has seq %d", i, it.Seq)
		}
	}
}

func TestReopenKeepsQueues(t *testing.T) {
	s, path := openTemp(t)
	mustAccount(t, s, "+1000000", 1)
	bob := Address{"+1000000", 0}
	for i := range 3 {
		if _, err := s.Enqueue(Batch{Sender: bob, Items: []Item{{To: bob, Delivery: msg(fmt.Sprint(i))}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Ack(bob, []uint64{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enqueue(Batch{Sender: bob, MessageID: "kept", Items: []Item{{To: bob, Delivery: msg("kept")}}}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err := OpenBolt(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Depth() != 1 {
		t.Fatalf("depth %d after reopen, want 1", s.Depth())
	}
	items, err := s.Read(bob, 0, 10)
	if err != nil || len(items) != 1 || items[0].Seq != 4 || items[0].GetMessage().GetMessageId() != "kept" {
		t.Fatalf("after reopen: %v, %v; want the unacked item, seq 4", items, err)
	}
	res, err := s.Enqueue(Batch{Sender: bob, Items: []Item{{To: bob, Delivery: msg("new")}}})
	if err != nil || res.Seqs[0] != 5 {
		t.Fatalf("seq after reopen: %+v, %v; want 5 (seqs are never reused)", res, err)
	}
	if _, ok, _ := s.Sent(bob, "kept"); !ok {
		t.Fatal("sent message id forgotten on reopen")
	}
}

// enqueueConcurrently has writers goroutines enqueue n one-item messages
// from +1000000 to +2000000, failing tb on the first error.
func enqueueConcurrently(tb testing.TB, s *Bolt, writers, n int) {
	tb.Helper()
	err := inParallel(writers, n, func(_, i int) error {
		id := fmt.Sprint(i)
		_, err := s.Enqueue(Batch{Sender: Address{"+1000000", 0}, MessageID: id,
			Items: []Item{{To: Address{"+2000000", 0}, Delivery: msg(id)}}})
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// inParallel runs fn for i from 0 to n on writers goroutines (writer w
// takes i = w, w+writers, ...), each stopping at its first error, and
// returns the errors.
func inParallel(writers, n int, fn func(w, i int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n && errs[w] == nil; i += writers {
				errs[w] = fn(w, i)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
