package relay

import (
	"sync"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// slowLinkStore holds the AddCompanion of one user's companions until
// released: a link whose store write takes as long as a test wants, as a
// cluster's replicated writes do under load.
type slowLinkStore struct {
	store.Store
	user        string
	adding      chan struct{} // closed once the held AddCompanion began
	release     chan struct{}
	releaseOnce sync.Once
}

func (s *slowLinkStore) AddCompanion(d store.Device, prekeys []*pb.PreKey, max int) error {
	if d.User == s.user {
		close(s.adding)
		<-s.release
	}
	return s.Store.AddCompanion(d, prekeys, max)
}

func (s *slowLinkStore) open() { s.releaseOnce.Do(func() { close(s.release) }) }

// While one companion's link is being stored, the node's other pairings go
// on: a new companion gets its ref, another phone's scan reaches its
// companion, and that companion links.
func TestASlowLinkHoldsUpNoOtherPairing(t *testing.T) {
	var st *slowLinkStore
	s := serveWrapped(t, func(inner store.Store) store.Store {
		st = &slowLinkStore{Store: inner, user: "+15550001", adding: make(chan struct{}), release: make(chan struct{})}
		return st
	}, func() { st.open() })

	alice := phone(t, s, "alice", "+15550001")
	slow, ref := startPairing(t, s, "alice-web")
	adv := advSecret()
	scan := alice.scan(slow, ref.GetRef(), adv, alice.nextK)
	finish := slow.send(slow.finishFrame(adv))
	select {
	case <-st.adding:
	case <-time.After(waitFor):
		t.Fatal("alice's companion's link never reached the store")
	}

	bob := phone(t, s, "bob", "+15550002")
	link(t, s, bob, "bob-web") // its PairStart, scan and finish all wait on the old lock

	st.open()
	if l := slow.wait(finish).GetLinked(); l.GetDevice() != alice.nextK {
		t.Fatalf("alice's companion: finish answered %v, want Linked", l)
	}
	if l := alice.wait(scan).GetLinked(); l.GetDevice() != alice.nextK {
		t.Fatalf("alice: scan answered %v, want Linked", l)
	}
}
