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

// serveSlowLink serves a relay of cfg whose store holds the links of user's
// companions until released.
func serveSlowLink(t *testing.T, cfg Config, user string) (servedRelay, *slowLinkStore) {
	t.Helper()
	var st *slowLinkStore
	s := serveWrapped(t, cfg, func(inner store.Store) store.Store {
		st = &slowLinkStore{Store: inner, user: user, adding: make(chan struct{}), release: make(chan struct{})}
		return st
	}, func() { st.open() })
	return s, st
}

// waitAdding waits until the held link is being stored.
func (s *slowLinkStore) waitAdding(t *testing.T) {
	t.Helper()
	select {
	case <-s.adding:
	case <-time.After(waitFor):
		t.Fatal("the held companion's link never reached the store")
	}
}

// startSlowLink serves a relay of cfg whose store holds alice's link, and
// has her phone scan her companion's ref and the companion finish, both
// waiting on the held link: the ids of the scan and of the finish.
func startSlowLink(t *testing.T, cfg Config) (s servedRelay, st *slowLinkStore, alice, comp *client, scan, finish uint64) {
	t.Helper()
	s, st = serveSlowLink(t, cfg, "+15550001")
	alice = phone(t, s, "alice", "+15550001")
	comp, ref := startPairing(t, s, "alice-web")
	adv := advSecret()
	scan = alice.scan(comp, ref.GetRef(), adv, alice.nextK)
	finish = comp.send(comp.finishFrame(adv))
	st.waitAdding(t)
	return s, st, alice, comp, scan, finish
}

// While one companion's link is being stored, the node's other pairings go
// on: a new companion gets its ref, another phone's scan reaches its
// companion, and that companion links.
func TestASlowLinkHoldsUpNoOtherPairing(t *testing.T) {
	s, st, alice, slow, scan, finish := startSlowLink(t, Config{NoSync: true})

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

// A link being stored when the offer's PairTimeout passes still ends as
// linked for both sides: the timer must not answer the phone PAIR_TIMEOUT
// (and show the companion a new ref) while the companion becomes a device.
func TestALinkStoredPastThePairTimeoutIsLinked(t *testing.T) {
	const pairTimeout = 300 * time.Millisecond
	_, st, alice, comp, scan, finish := startSlowLink(t, Config{NoSync: true, PairTimeout: pairTimeout})
	time.Sleep(3 * pairTimeout)
	st.open()
	if l := comp.wait(finish).GetLinked(); l.GetDevice() != alice.nextK {
		t.Fatalf("companion: finish answered %v, want Linked", l)
	}
	if ans := alice.wait(scan); ans.GetLinked().GetDevice() != alice.nextK {
		t.Fatalf("alice: scan answered %v, want Linked device %d", ans, alice.nextK)
	}
}
