package store_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/store/storetest"
)

func TestBoltConformance(t *testing.T) {
	s, err := store.OpenBolt(filepath.Join(t.TempDir(), "relay.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := storetest.Check(s); err != nil {
		t.Fatalf("bbolt store:\n%v", err)
	}
}

// forgetful is a store that loses acks and forgets message ids.
type forgetful struct{ *store.Bolt }

func (forgetful) Ack(store.Address, []uint64) (int, error) { return 0, nil }

func (forgetful) Sent(store.Address, string) (int64, bool, error) { return 0, false, nil }

func TestConformanceCatchesABrokenStore(t *testing.T) {
	s, err := store.OpenBolt(filepath.Join(t.TempDir(), "relay.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = storetest.Check(forgetful{s})
	for _, want := range []string{"ack m0, m1", "sent after sending"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("check of a store that loses acks and message ids: %v; want a line about %q", err, want)
		}
	}
}

func TestBoltQueueCap(t *testing.T) {
	s, err := store.OpenBolt(filepath.Join(t.TempDir(), "relay.db"), store.Options{NoSync: true, MaxQueuedBytes: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := storetest.CheckQueueCap(s, 8<<10); err != nil {
		t.Fatalf("bbolt store:\n%v", err)
	}
}
