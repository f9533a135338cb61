package store_test

import (
	"path/filepath"
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
