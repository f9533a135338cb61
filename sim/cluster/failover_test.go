package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/linksim/linksim/sim/cluster"
	"github.com/linksim/linksim/sim/store"
)

// natsChildEnv, when set, makes the test binary a NATS server (the JSON
// natsChild in it) instead of running tests: a test can then kill a server
// with SIGKILL, as a crash, which an embedded server's Shutdown is not
// (that one hands its leaderships over first).
const natsChildEnv = "CLUSTER_TEST_NATS_CHILD"

type natsChild struct {
	Name, Dir         string
	Port, ClusterPort int
	Routes            []string
	cmd               *exec.Cmd
	alive             io.WriteCloser // its stdin: closed when this process ends
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(natsChildEnv); cfg != "" {
		var c natsChild
		if err := json.Unmarshal([]byte(cfg), &c); err != nil {
			panic(err)
		}
		s, err := server.NewServer(&server.Options{
			ServerName: c.Name, Host: "127.0.0.1", Port: c.Port, NoLog: true, NoSigs: true,
			JetStream: true, StoreDir: c.Dir,
			Cluster: server.ClusterOpts{Name: "linksim", Host: "127.0.0.1", Port: c.ClusterPort},
			Routes:  server.RoutesFromStr(strings.Join(c.Routes, ",")),
		})
		if err != nil {
			panic(err)
		}
		go func() { // the test process ended, even killed itself
			io.Copy(io.Discard, os.Stdin)
			os.Exit(0)
		}()
		s.Start()
		s.WaitForShutdown() // until killed
		return
	}
	os.Exit(m.Run())
}

// A send through a node never fails because a NATS server was killed:
// while a device messages another, servers are killed with SIGKILL six
// times (the one the node is connected to, then five times the leader of
// the queue stream, whose every item is a compare-and-set on its queue's
// last item under the cap) and restarted. Every send is stored, within a
// bound, and every item is read and acked. A compare-and-set write that
// gets no answer while a stream elects its leader must be tried again, not
// fail the send; a kill meets such a write only when other requests of the
// send pass meanwhile (their buckets led elsewhere), hence the repeats.
func TestSendsSurviveNATSServerKills(t *testing.T) {
	servers := startNATSChildren(t, 3)
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.url())
	}
	// Three servers electing their JetStream leader on a machine busy with
	// other packages' tests took over Open's default 30 s once in CI.
	n, err := cluster.Open(cluster.Config{URLs: urls, Replicas: 3, MaxQueuedBytes: 1 << 20, Timeout: 20 * time.Second,
		StartTimeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	alice := store.Address{User: "+15550100"}
	bob := store.Address{User: "+15550111"}
	for i, a := range []store.Address{alice, bob} {
		if err := n.CreateAccount(store.Account{User: a.User}, store.Device{Address: a, NoiseKey: []byte{byte(i + 1)}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// A stream's leader is missed after 4-9 s (NATS's election timeout),
	// a new one elected after: a send may wait that long, on a loaded
	// machine longer, but never fails. Under the race detector in CI one
	// send took 15.7 s (most take 6-8.5 s there, in 2 s tries); the bound
	// is for a send that never completes, and a device resends for a
	// minute anyway (device.Config.ResendFor).
	const bound = 30 * time.Second
	sent, acked := 0, uint64(0)
	send := func() {
		t.Helper()
		id := fmt.Sprint("m", sent)
		start := time.Now()
		_, err := n.Enqueue(store.Batch{Sender: alice, MessageID: id, UnixMs: 1,
			Expect: map[string][]uint32{bob.User: {0}, alice.User: {0}},
			Items:  []store.Item{{To: bob, Delivery: delivery(id)}}})
		if took := time.Since(start); err != nil || took > bound {
			t.Fatalf("send %s around a NATS server kill: %v after %s, want it stored within %s", id, err, took.Round(time.Millisecond), bound)
		}
		if took := time.Since(start); took > time.Second {
			t.Logf("send %s stored after %s (a failover)", id, took.Round(time.Millisecond))
		}
		sent++
		items, err := n.Read(bob, acked, 10)
		if err != nil || len(items) != 1 || items[0].GetMessage().GetMessageId() != id {
			t.Fatalf("bob's queue after send %s: %v (%v), want that message alone", id, items, err)
		}
		acked = items[0].Seq
		if _, err := n.Ack(bob, []uint64{acked}); err != nil {
			t.Fatalf("ack of %s: %v", id, err)
		}
	}
	for round := range 6 {
		// The server the node is connected to, then the bucket's leader.
		k := 0
		for i, s := range servers {
			if s.url() == n.ConnectedURL() {
				k = i
			}
		}
		if round > 0 {
			k = leaderOf(t, urls, servers, "LINKSIM_QUEUES")
		}
		for range 5 {
			send()
		}
		servers[k].kill()
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
			send()
		}
		servers[k].start(t)
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
			send()
		}
	}
}

// leaderOf is the index of the server leading stream, asked through a
// connection of the test's own.
func leaderOf(t *testing.T, urls []string, servers []*natsChild, stream string) int {
	t.Helper()
	nc, err := nats.Connect(strings.Join(urls, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for {
		s, err := js.Stream(ctx, stream)
		if err == nil && s.CachedInfo().Cluster != nil && s.CachedInfo().Cluster.Leader != "" {
			for i, srv := range servers {
				if srv.Name == s.CachedInfo().Cluster.Leader {
					return i
				}
			}
			t.Fatalf("stream %s led by %s, none of the servers", stream, s.CachedInfo().Cluster.Leader)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no leader of stream %s: %v", stream, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startNATSChildren runs n NATS servers as one cluster, each a child
// process, and returns once JetStream answers on all of them.
func startNATSChildren(t *testing.T, n int) []*natsChild {
	dir := t.TempDir()
	var servers []*natsChild
	var routes []string
	for i := range n {
		c := &natsChild{Name: fmt.Sprintf("n%d", i+1), Dir: filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
			Port: freePort(t), ClusterPort: freePort(t)}
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", c.ClusterPort))
		servers = append(servers, c)
	}
	for _, c := range servers {
		c.Routes = routes
		c.start(t)
		t.Cleanup(c.kill) // before the node: runs after it closed
	}
	return servers
}

func (c *natsChild) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", c.Port) }

// start runs the server, on its ports and store, and waits until it takes
// clients.
func (c *natsChild) start(t *testing.T) {
	t.Helper()
	cfg, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(), natsChildEnv+"="+string(cfg))
	if c.alive, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", c.Port)); err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("NATS server %s not taking clients 20s after its start", c.Name)
		}
	}
}

// kill ends the server with SIGKILL.
func (c *natsChild) kill() {
	if c.cmd != nil {
		c.cmd.Process.Kill()
		c.cmd.Wait()
		c.cmd = nil
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
