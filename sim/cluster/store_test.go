package cluster_test

import (
	"testing"
	"time"

	"github.com/linksim/linksim/sim/cluster"
	"github.com/linksim/linksim/sim/cluster/natstest"
	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/store/storetest"
	"github.com/linksim/linksim/sim/wire/pb"
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

// On three NATS servers with every stream and bucket on all three, the store
// passes the contract, and keeps working and losing nothing when the server
// its node is connected to stops.
func TestStoreOnThreeReplicas(t *testing.T) {
	servers, err := natstest.StartCluster(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		t.Cleanup(s.Close)
	}
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.URL())
	}
	n, err := cluster.Open(cluster.Config{URLs: urls, Replicas: 3, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := storetest.Check(n); err != nil {
		t.Fatalf("JetStream store, R3:\n%v", err)
	}

	alice := store.Address{User: "+15550100"}
	bob := store.Address{User: "+15550111"}
	for i, a := range []store.Address{alice, bob} {
		key := []byte{byte(i + 1)}
		if err := n.CreateAccount(store.Account{User: a.User}, store.Device{Address: a, NoiseKey: key}, nil); err != nil {
			t.Fatal(err)
		}
	}
	send := func(id string) {
		t.Helper()
		_, err := n.Enqueue(store.Batch{Sender: alice, MessageID: id, UnixMs: 1, Items: []store.Item{{To: bob,
			Delivery: &pb.Delivery{Item: &pb.Delivery_Message{Message: &pb.Message{MessageId: id, Ciphertext: []byte(id)}}}}}})
		if err != nil {
			t.Fatalf("enqueue %s: %v", id, err)
		}
	}
	send("before")
	servers[connectedTo(t, n, servers)].Close()
	send("after")
	items, err := n.Read(bob, 0, 10)
	if err != nil || len(items) != 2 || items[0].GetMessage().GetMessageId() != "before" || items[1].GetMessage().GetMessageId() != "after" {
		t.Fatalf("bob's queue after a NATS server stopped: %v (%v), want before and after", items, err)
	}
}

// connectedTo is the index of the server n's connection uses.
func connectedTo(t *testing.T, n *cluster.Node, servers []*natstest.Server) int {
	for i, s := range servers {
		if s.URL() == n.ConnectedURL() {
			return i
		}
	}
	t.Fatalf("node connected to %s, none of the servers", n.ConnectedURL())
	return -1
}

func TestStoreQueueCap(t *testing.T) {
	n, err := cluster.Open(cluster.Config{URLs: []string{startNATS(t)}, MaxQueuedBytes: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := storetest.CheckQueueCap(n, 8<<10); err != nil {
		t.Fatalf("JetStream store:\n%v", err)
	}
}
