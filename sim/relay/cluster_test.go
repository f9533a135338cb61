package relay

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/linksim/linksim/sim/cluster"
	"github.com/linksim/linksim/sim/cluster/natstest"
	"github.com/linksim/linksim/sim/wire/pb"
)

// startNATS runs an embedded NATS server with JetStream for the test. With
// LINKSIM_TEST_NATS set, every relay of the tests that keeps no data dir is
// a cluster node on one of its own: the relay's tests then run against the
// JetStream store and the NATS router.
func startNATS(t testing.TB) *natstest.Server {
	t.Helper()
	ns, err := natstest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close) // registered before the nodes: runs after they closed
	return ns
}

// startNodes runs n relay nodes of one relay on an embedded NATS server.
func startNodes(t testing.TB, n int) []*Server {
	t.Helper()
	return startNodesOn(t, startNATS(t), n)
}

func startNodesOn(t testing.TB, ns *natstest.Server, n int) []*Server {
	t.Helper()
	nodes := make([]*Server, n)
	for i := range nodes {
		nodes[i] = startRelay(t, Config{NATS: []string{ns.URL()}})
	}
	return nodes
}

// A phone on one node links a companion waiting on another, messages flow
// both ways across nodes, and when a node closes its devices reconnect to
// the other and lose nothing: what was queued or pushed but not acked
// comes again.
func TestClusterNodesAreOneRelay(t *testing.T) {
	nodes := startNodes(t, 2)
	a, b := nodes[0], nodes[1]
	if !bytes.Equal(a.Key(), b.Key()) {
		t.Fatal("the nodes have different Noise keys: devices could not move between them")
	}
	alice := phone(t, a, "alice", "+15550100")
	bob := phone(t, b, "bob", "+15550111")
	web := link(t, b, alice, "alice-web") // phone on a, companion on b
	if l := alice.push("devices_changed").GetDevicesChanged().GetList(); len(l.GetDevices()) != 2 {
		t.Fatalf("alice's phone (node a) got device list %v after linking on node b, want 2 devices", l)
	}

	bob.sendText(alice.user, "m1")
	for _, c := range []*client{alice, web} {
		if d := c.delivery(); string(d.GetMessage().GetCiphertext()) != "m1" {
			t.Fatalf("%s got %v, want m1 from bob on the other node", c.name, d)
		} else {
			c.ack(d.GetSeq())
		}
	}
	web.sendText(bob.user, "w1") // companion on b to bob on b and alice's phone on a
	if d := bob.delivery(); string(d.GetMessage().GetCiphertext()) != "w1" {
		t.Fatalf("bob got %v, want w1", d)
	}
	if d := alice.delivery(); string(d.GetMessage().GetCiphertext()) != "w1" {
		t.Fatalf("alice's phone got %v, want w1 (its own companion's message)", d)
	}
	// m2 is pushed to alice's phone but never acked; m3 is sent while the
	// phone is away.
	bob.sendText(alice.user, "m2")
	if d := alice.delivery(); string(d.GetMessage().GetCiphertext()) != "m2" {
		t.Fatalf("alice got %v, want m2", d)
	}

	if err := a.Close(); err != nil {
		t.Fatalf("closing node a: %v", err)
	}
	alice.closed()
	bob.sendText(alice.user, "m3")

	alice.connect(b)
	if w := alice.hello(); w.GetUser() != alice.user || w.GetDevice() != 0 {
		t.Fatalf("alice's phone on node b: welcome %v", w)
	}
	var got []string
	for len(got) < 3 {
		d := alice.delivery()
		got = append(got, string(d.GetMessage().GetCiphertext()))
		alice.ack(d.GetSeq())
	}
	if want := []string{"w1", "m2", "m3"}; !slices.Equal(got, want) {
		t.Fatalf("alice's phone after moving to node b got %v, want %v: the unacked and the new, in order", got, want)
	}
	alice.noPush("delivery")
}

// A device's newer connection on one node replaces its older one on
// another, and a companion removed from a phone on one node is logged out
// on the other.
func TestClusterReplacesAndLogsOutAcrossNodes(t *testing.T) {
	nodes := startNodes(t, 2)
	a, b := nodes[0], nodes[1]
	alice := phone(t, a, "alice", "+15550100")
	web := link(t, b, alice, "alice-web")
	alice.push("devices_changed")

	alice.ok(frame(&pb.RemoveDevices{Devices: []uint32{web.device}}), "ok")
	web.closedWith("logged out")
	if l := alice.push("devices_changed").GetDevicesChanged().GetList(); !slices.Equal(l.GetDevices(), []uint32{0}) {
		t.Fatalf("alice's devices after removing the companion: %v, want [0]", l.GetDevices())
	}

	again := alice.twin()
	again.connect(b)
	again.hello()
	alice.closedWith("replaced")
}

// A blob uploaded through one node downloads from the other; one whose
// bytes do not hash to the announced sum is refused and never stored.
func TestClusterMediaIsShared(t *testing.T) {
	nodes := startNodes(t, 2)
	a, b := nodes[0], nodes[1]
	alice := phone(t, a, "alice", "+15550100")
	data := blob(300_000) // several object store chunks
	tampered := bytes.Clone(data)
	tampered[100] ^= 1
	bad := alice.uploadToken(tampered[:1000])
	if code, _ := put(t, a, bad.Url, bytes.NewReader(data[:1000]), 1000); code != http.StatusBadRequest {
		t.Fatalf("PUT of other bytes than announced: %d, want 400", code)
	}
	if code, _ := get(t, b, bad.DirectPath, ""); code != http.StatusNotFound {
		t.Fatalf("GET of a refused blob on the other node: %d, want 404", code)
	}

	tok := alice.uploadToken(data)
	if code, msg := put(t, a, tok.Url, bytes.NewReader(data), int64(len(data))); code != http.StatusCreated {
		t.Fatalf("PUT on node a: %d %s, want 201", code, msg)
	}
	if code, got := get(t, b, tok.DirectPath, "bytes=250000-"); code != http.StatusPartialContent || !bytes.Equal(got, data[250000:]) {
		t.Fatalf("ranged GET on node b: %d and %d bytes, want 206 and the last 50000", code, len(got))
	}
	bob := phone(t, b, "bob", "+15550111")
	if again := bob.askUpload(data).GetMediaUploadToken(); !again.Exists {
		t.Fatalf("MediaUpload on node b of the blob stored through node a: %v, want exists", again)
	}
}

// On three NATS servers with R3, losing the server a node is connected to
// loses nothing: sends before, during and after arrive, once each, in order,
// each without waiting for the next.
func TestClusterSurvivesLosingANATSServer(t *testing.T) {
	servers, err := natstest.StartCluster(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, ns := range servers {
		t.Cleanup(ns.Close) // before the nodes: runs after they closed
		urls = append(urls, ns.URL())
	}
	a := startRelay(t, Config{NATS: urls, Replicas: 3})
	b := startRelay(t, Config{NATS: urls, Replicas: 3})
	alice := phone(t, a, "alice", "+15550100")
	bob := phone(t, b, "bob", "+15550111")

	// Each message must arrive by itself: one sent while node a reconnects
	// to NATS has its poke lost, and no later send would make up for it.
	exchange := func(id string) {
		t.Helper()
		bob.sendText(alice.user, id)
		d := alice.delivery()
		if got := string(d.GetMessage().GetCiphertext()); got != id {
			t.Fatalf("alice got %q, want %q", got, id)
		}
		alice.ack(d.GetSeq())
	}
	exchange("before")
	connected := a.Relay().st.(*cluster.Node).ConnectedURL()
	for _, ns := range servers {
		if ns.URL() == connected {
			ns.Close()
		}
	}
	for i := range 5 {
		exchange(fmt.Sprint("after", i))
	}
	alice.noPush("delivery")
}
