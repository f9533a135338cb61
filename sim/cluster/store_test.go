package cluster_test

import (
	"testing"

	"github.com/linksim/linksim/sim/cluster"
	"github.com/linksim/linksim/sim/store/storetest"
)

func openNode(t testing.TB, url string) *cluster.Node {
	t.Helper()
	n, err := cluster.Open(cluster.Config{URLs: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestStoreConformance(t *testing.T) {
	n := openNode(t, startNATS(t))
	if err := storetest.Check(n); err != nil {
		t.Fatalf("JetStream store:\n%v", err)
	}
}
