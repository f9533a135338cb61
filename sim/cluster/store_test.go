package cluster_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

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

// The queue cap holds over nodes that append to one queue at once, each
// knowing the queue only from its own appends: the queued bytes read off
// the queue never pass the cap, nor is a send refused while a 1,000-byte
// item still fits. After the device drained the queue through a third
// node, the same number of items fits again through nodes whose picture
// of the queue is stale.
func TestQueueCapOverNodes(t *testing.T) {
	const capBytes = 16 << 10
	url := startNATS(t)
	var nodes []*cluster.Node
	for range 3 {
		n, err := cluster.Open(cluster.Config{URLs: []string{url}, MaxQueuedBytes: capBytes})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nodes = append(nodes, n)
	}
	alice := store.Address{User: "+15550100"}
	bob := store.Address{User: "+15550111"}
	for i, a := range []store.Address{alice, bob} {
		if err := nodes[0].CreateAccount(store.Account{User: a.User}, store.Device{Address: a, NoiseKey: []byte{byte(i + 1)}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// fill sends from the first two nodes at once until each is refused,
	// and returns what bob's queue holds then.
	fill := func(round int) []*pb.Delivery {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for k, n := range nodes[:2] {
			wg.Go(func() {
				for i := 0; ; i++ {
					if i > capBytes/1000 {
						errs <- fmt.Errorf("node %d stored %d items of 1,000 bytes under a cap of %d", k, i, capBytes)
						return
					}
					d := delivery(fmt.Sprintf("r%d-n%d-%d", round, k, i))
					d.GetMessage().Ciphertext = make([]byte, 1000)
					_, err := n.Enqueue(store.Batch{Sender: alice, UnixMs: 1, Items: []store.Item{{To: bob, Delivery: d}}})
					if errors.Is(err, store.ErrQueueFull) {
						return
					}
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		items, err := nodes[2].Read(bob, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		size := 0
		for _, d := range items {
			stored := proto.Clone(d).(*pb.Delivery)
			stored.Seq = 0 // as published
			size += proto.Size(stored)
		}
		if itemSize := size / len(items); size > capBytes || size+itemSize <= capBytes {
			t.Fatalf("round %d: bob's queue holds %d items, %d bytes, when both nodes are refused; want the most that fit under %d", round, len(items), size, capBytes)
		}
		return items
	}
	first := fill(0)
	var seqs []uint64
	for _, d := range first {
		seqs = append(seqs, d.Seq)
	}
	if _, err := nodes[2].Ack(bob, seqs); err != nil {
		t.Fatal(err)
	}
	if again := fill(1); len(again) != len(first) {
		t.Fatalf("%d items fit in bob's drained queue, %d the first time", len(again), len(first))
	}
}
