package relay

import (
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// heldStore holds the commit of one Send (by message id) until released:
// a disk commit that takes as long as a test wants.
type heldStore struct {
	store.Store
	held        string
	committing  chan struct{} // closed once the held Send is in Enqueue
	release     chan struct{}
	releaseOnce sync.Once
}

func (s *heldStore) Enqueue(b store.Batch) (store.Result, error) {
	if b.MessageID == s.held {
		close(s.committing)
		<-s.release
	}
	return s.Store.Enqueue(b)
}

func (s *heldStore) open() { s.releaseOnce.Do(func() { close(s.release) }) }

// servedRelay is a relay served by httptest, for a test that changes the
// relay before it serves anything.
type servedRelay struct {
	url string
	r   *Relay
}

func (s servedRelay) URL() string   { return s.url }
func (s servedRelay) WSURL() string { return "ws" + strings.TrimPrefix(s.url, "http") + "/ws" }
func (s servedRelay) Key() []byte   { return s.r.Key() }

// serveHeld serves a relay whose store holds the Send of message id held.
func serveHeld(t *testing.T, held string) (servedRelay, *heldStore) {
	t.Helper()
	var st *heldStore
	s := serveWrapped(t, Config{NoSync: true}, func(inner store.Store) store.Store {
		st = &heldStore{Store: inner, held: held, committing: make(chan struct{}), release: make(chan struct{})}
		return st
	}, func() { st.open() })
	return s, st
}

// serveWrapped serves a relay of cfg whose store wrap wraps; release, run
// first at cleanup, lets go of whatever the wrapper holds, so the relay can
// close.
func serveWrapped(t *testing.T, cfg Config, wrap func(store.Store) store.Store, release func()) servedRelay {
	t.Helper()
	cfg.WrapStore = wrap
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(func() {
		release()
		r.Close()
		srv.Close()
	})
	return servedRelay{url: srv.URL, r: r}
}

// committing waits until the held Send is being committed.
func (s *heldStore) waitCommitting(t *testing.T) {
	t.Helper()
	select {
	case <-s.committing:
	case <-time.After(waitFor):
		t.Fatalf("the Send %q never reached the store", s.held)
	}
}

// nextAnswer returns the next answer c receives within d, or nil.
func nextAnswer(c *client, d time.Duration) *pb.Frame {
	select {
	case f := <-c.answers:
		return f
	case <-time.After(d):
		return nil
	}
}

// expectAnswer checks that the next answer c receives answers request id
// with a body named want.
func expectAnswer(t *testing.T, c *client, id uint64, want string) {
	t.Helper()
	f := nextAnswer(c, waitFor)
	switch {
	case f == nil:
		t.Fatalf("%s: no answer within %v, want %s to request %d", c.name, waitFor, want, id)
	case f.GetId() != id || bodyName(f) != want:
		t.Fatalf("%s: got %s to request %d, want %s to request %d", c.name, bodyName(f), f.GetId(), want, id)
	}
}

// A device's Ping and Ack do not wait for its own Send's commit (protocol
// "Order of answers"), and the requests after that Send are still answered
// after it, in order.
func TestPingAndAckOvertakeACommit(t *testing.T) {
	s, st := serveHeld(t, "held")
	alice := phone(t, s, "alice", "+15550001")
	bob := phone(t, s, "bob", "+15550002")
	bob.sendText(alice.user, "for-alice")
	seq := alice.delivery().GetSeq()

	send := alice.send(alice.textSend(bob.user, "held"))
	st.waitCommitting(t)
	lists := alice.send(frame(&pb.GetDevices{Users: []string{bob.user}}))
	ping := alice.send(frame(&pb.Ping{}))
	alice.ack(seq)

	// The Send is still held: nothing but the pong can come.
	expectAnswer(t, alice, ping, "pong")
	me := store.Address{User: alice.user}
	for deadline := time.Now().Add(waitFor); ; {
		items, err := s.r.st.Read(me, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's acked item %d still queued after %v while her Send commits", seq, waitFor)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if f := nextAnswer(alice, 0); f != nil {
		t.Fatalf("got %s to request %d while the Send (request %d) was still committing", bodyName(f), f.GetId(), send)
	}

	st.open()
	expectAnswer(t, alice, send, "send_ack")
	expectAnswer(t, alice, lists, "device_lists")
}

// Behind a request being handled, the read loop queues maxWaitingRequests
// more and then stops reading: a Ping read before the bound is answered at
// once, one after it only once the held request is done.
func TestReadingStopsAtTheWaitingBound(t *testing.T) {
	s, st := serveHeld(t, "held")
	alice := phone(t, s, "alice", "+15550001")
	bob := phone(t, s, "bob", "+15550002")

	var ids []uint64
	ids = append(ids, alice.send(alice.textSend(bob.user, "held")))
	st.waitCommitting(t)
	for range maxWaitingRequests {
		ids = append(ids, alice.send(frame(&pb.GetDevices{Users: []string{bob.user}})))
	}
	ping := alice.send(frame(&pb.Ping{}))
	expectAnswer(t, alice, ping, "pong")

	ids = append(ids, alice.send(frame(&pb.GetDevices{Users: []string{bob.user}})))
	late := alice.send(frame(&pb.Ping{}))
	const unread = 300 * time.Millisecond
	if f := nextAnswer(alice, unread); f != nil {
		t.Fatalf("got %s to request %d with %d requests waiting: the read loop read on past its bound", bodyName(f), f.GetId(), maxWaitingRequests+1)
	}

	st.open()
	expectAnswer(t, alice, ids[0], "send_ack")
	// The late Ping is read as soon as there is room, so its pong comes
	// somewhere among the waiting requests' answers, which keep their order.
	pong := false
	for _, id := range ids[1:] {
		f := nextAnswer(alice, waitFor)
		if f != nil && f.GetId() == late {
			pong = true
			f = nextAnswer(alice, waitFor)
		}
		if f == nil {
			t.Fatalf("no answer to request %d within %v", id, waitFor)
		}
		if f.GetId() != id || bodyName(f) != "device_lists" {
			t.Fatalf("got %s to request %d, want device_lists to request %d", bodyName(f), f.GetId(), id)
		}
	}
	if !pong {
		expectAnswer(t, alice, late, "pong")
	}
}

// A connection that ends finishes the request it is handling and drops the
// ones read behind it: nobody is left to answer them, and the device sends
// them again when it reconnects.
func TestRequestsWaitingAtTheEndAreDropped(t *testing.T) {
	s, st := serveHeld(t, "held")
	alice := phone(t, s, "alice", "+15550001")
	bob := phone(t, s, "bob", "+15550002")

	held, behind := alice.textSend(bob.user, "held"), alice.textSend(bob.user, "behind")
	alice.send(held)
	st.waitCommitting(t)
	alice.send(behind)
	ping := alice.send(frame(&pb.Ping{}))
	expectAnswer(t, alice, ping, "pong") // both Sends were read
	c := s.r.connOf(store.Address{User: alice.user})
	alice.hangUp()
	for deadline := time.Now().Add(waitFor); !c.isClosing(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the relay did not see alice hang up within %v", waitFor)
		}
	}
	st.open()

	if got := bob.delivery().GetMessage().GetMessageId(); got != "held" {
		t.Fatalf("bob got %q first, want the held message", got)
	}
	// A message another device sends now comes next,
	// unless "behind" was committed after the connection ended.
	carol := phone(t, s, "carol", "+15550003")
	carol.sendText(bob.user, "later")
	if got := bob.delivery().GetMessage().GetMessageId(); got != "later" {
		t.Fatalf("bob got %q after the held message, want %q: a request read behind it was handled after the connection ended", got, "later")
	}
}
