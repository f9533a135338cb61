package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// NATSServers is how many NATS servers a cluster backend runs: three, so
// JetStream keeps three replicas and survives losing any one server.
const NATSServers = 3

// DefaultNodes is how many relay nodes a cluster backend runs when
// Config.Nodes is 0.
const DefaultNodes = 2

// member is one server of a cluster backend: a NATS server or a relay
// node, as a child process or a container.
type member interface {
	// start starts it (again, on the same state and address) and waits
	// until it serves.
	start(ctx context.Context) error
	// kill ends it at once: SIGKILL, nothing flushed.
	kill() error
	// stop ends it gracefully (SIGTERM, or docker stop with a grace).
	stop() error
	// url is where a relay node serves HTTP and WebSocket, from this
	// machine: http://host:port ("" for a NATS server).
	url() string
	logs() []byte
	close() error
}

// partitioner cuts a relay node off the network and heals it, as the
// variant can: the process variant holds the node's traffic in the
// harness's forwarders, the container variant disconnects it from its
// Docker network.
type partitioner interface {
	partition(ctx context.Context, node int) error
	heal(ctx context.Context, node int) error
	// isolated reports whether the harness itself holds node's traffic,
	// so its health checks, which do not go through the forwarders, must
	// fail too.
	isolated(node int) bool
	close() error
}

// cluster is the relay as several stateless relay nodes on a cluster of
// three NATS servers with JetStream. Devices do not talk to the nodes
// directly: each device gets a front of its own (a forwarder on loopback)
// that sends its connections to its home node while that node passes its
// health checks, and to the next node that does otherwise. That is what a
// deployment's load balancer does, and it needs no change to devices,
// which know one relay URL, as the protocol has it: a device on a killed
// node reconnects through its front and lands on another node.
type cluster struct {
	kind     string
	dir      string
	nats     []member
	monitors []string // the NATS servers' monitoring URLs
	nodes    []member
	net      partitioner

	key    []byte
	health []atomic.Bool // per node: passes its health checks
	quit   chan struct{} // stops the health checks
	wg     sync.WaitGroup

	mu     sync.Mutex // serialises faults; guards fronts
	fronts map[string]*forwarder
	homes  int // fronts made, for spreading homes over nodes
	// What faults hold now, so one that cannot be applied (a node killed
	// twice) is refused before it is recorded.
	down, cut, natsDown []bool
}

// startMembers starts ms at once (a NATS cluster forms only when its
// servers find each other) and waits for all of them.
func startMembers(ctx context.Context, what string, ms []member) error {
	errs := make([]error, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() {
			if err := m.start(ctx); err != nil {
				errs[i] = fmt.Errorf("%s %d: %w", what, i+1, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitJetStreamCurrent waits until the JetStream meta leader sees every
// other NATS server as a current peer, and every stream's leader sees all
// of the stream's other replicas current. Before the first, a relay node's
// streams of three replicas find "no suitable peers for placement"; before
// the second, a server just restarted may still be catching a stream up,
// and killing another server then leaves that stream without a quorum
// until the killed one returns (seen in TestClusterKills: a NATS server
// killed 0.4 s after another's restart, and no send committed for a
// minute). monitors are the monitoring URLs of servers nats-1, nats-2, ...
func waitJetStreamCurrent(ctx context.Context, monitors []string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return Await(ctx, "every NATS server to be a current JetStream peer, in the meta group and in every stream", func() error {
		metaLeaders := 0
		for i, m := range monitors {
			var jsz jetStreamState
			if err := getJSON(ctx, m+"/jsz?accounts=true&streams=true&config=true", &jsz); err != nil {
				return err
			}
			name := fmt.Sprintf("nats-%d", i+1)
			if jsz.Meta.Leader == name {
				metaLeaders++
				if n := currentReplicas(jsz.Meta.Replicas); n < len(monitors)-1 {
					return fmt.Errorf("the meta leader %s sees %d of %d peers current", name, n, len(monitors)-1)
				}
			}
			for _, a := range jsz.Accounts {
				for _, st := range a.Streams {
					switch {
					case st.Cluster.Leader == "":
						return fmt.Errorf("stream %s has no leader (seen from %s)", st.Name, name)
					case st.Cluster.Leader != name:
						continue // only the stream's leader knows whether its replicas are current
					}
					if n := currentReplicas(st.Cluster.Replicas); n < len(st.Cluster.Replicas) || n < st.Config.Replicas-1 {
						return fmt.Errorf("stream %s: its leader %s sees %d of %d replicas current", st.Name, name, n, st.Config.Replicas-1)
					}
				}
			}
		}
		if metaLeaders == 0 {
			return errors.New("no NATS server is the JetStream meta leader yet")
		}
		return nil
	})
}

// jetStreamState is what waitJetStreamCurrent reads of a server's /jsz.
type jetStreamState struct {
	Meta struct {
		Leader   string         `json:"leader"`
		Replicas []replicaState `json:"replicas"`
	} `json:"meta_cluster"`
	Accounts []struct {
		Streams []struct {
			Name    string `json:"name"`
			Cluster struct {
				Leader   string         `json:"leader"`
				Replicas []replicaState `json:"replicas"`
			} `json:"cluster"`
			Config struct {
				Replicas int `json:"num_replicas"`
			} `json:"config"`
		} `json:"stream_detail"`
	} `json:"account_details"`
}

type replicaState struct {
	Current bool `json:"current"`
	Offline bool `json:"offline"`
}

func currentReplicas(rs []replicaState) int {
	n := 0
	for _, r := range rs {
		if r.Current && !r.Offline {
			n++
		}
	}
	return n
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// startNodes starts the relay nodes one after the other, checks they
// agree on one Noise key (devices pin it and must keep it on any node) and
// starts the health checks the fronts follow. One after the other: on a
// fresh JetStream cluster, nodes starting at once each try to create the
// relay's streams and buckets, and those concurrent creations time out
// (seen with nats-server v2.15.2, streams of three replicas).
func (c *cluster) startNodes(ctx context.Context) error {
	for i, n := range c.nodes {
		if err := n.start(ctx); err != nil {
			return fmt.Errorf("relay node %d: %w", i+1, err)
		}
	}
	for i, n := range c.nodes {
		key, err := relayInfo(ctx, n.url())
		if err != nil {
			return fmt.Errorf("relay node %d: %w", i+1, err)
		}
		if c.key == nil {
			c.key = key
		} else if !bytes.Equal(key, c.key) {
			return fmt.Errorf("relay node %d advertises another Noise key than node 1: devices could not fail over between them", i+1)
		}
	}
	c.health = make([]atomic.Bool, len(c.nodes))
	c.down, c.cut = make([]bool, len(c.nodes)), make([]bool, len(c.nodes))
	c.natsDown = make([]bool, len(c.nats))
	c.quit = make(chan struct{})
	c.fronts = make(map[string]*forwarder)
	for i := range c.nodes {
		c.health[i].Store(true)
		c.wg.Go(func() { c.check(i) })
	}
	return nil
}

// healthEvery is how often the fronts' health checks ask each node, and
// how long one check may take: a node that stops answering is out of the
// fronts' rotation in under half a second.
const healthEvery = 200 * time.Millisecond

// check asks node i's /healthz every healthEvery until the cluster closes.
func (c *cluster) check(i int) {
	client := &http.Client{Timeout: healthEvery}
	tick := time.NewTicker(healthEvery)
	defer tick.Stop()
	for {
		select {
		case <-c.quit:
			return
		case <-tick.C:
		}
		ok := false
		if c.net.isolated(i) {
			c.health[i].Store(false)
			continue
		}
		if resp, err := client.Get(c.nodes[i].url() + "/healthz"); err == nil {
			resp.Body.Close()
			ok = resp.StatusCode == http.StatusOK
		}
		c.health[i].Store(ok)
	}
}

func (c *cluster) Kind() string    { return c.kind }
func (c *cluster) URL() string     { return c.nodes[0].url() }
func (c *cluster) Key() []byte     { return c.key }
func (c *cluster) DataDir() string { return c.dir }

// front returns the front of the device named name, making it: its home
// is the next node in turn, so devices spread evenly over the nodes in the
// order they are made.
func (c *cluster) front(name string) (*forwarder, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.fronts[name]; ok {
		return f, nil
	}
	home := c.homes % len(c.nodes)
	c.homes++
	return c.frontAt(name, home)
}

// frontHome makes the front of the device named name with its home on
// node (0-based); a device that has a front keeps it.
func (c *cluster) frontHome(name string, node int) (*forwarder, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.fronts[name]; ok {
		return f, nil
	}
	return c.frontAt(name, node)
}

func (c *cluster) frontAt(name string, home int) (*forwarder, error) {
	targets := make([]*target, len(c.nodes))
	for k := range c.nodes {
		i := (home + k) % len(c.nodes)
		targets[k] = c.nodeTarget(i)
	}
	f, err := newForwarder("127.0.0.1:0", targets...)
	if err != nil {
		return nil, fmt.Errorf("harness: front for %s: %w", name, err)
	}
	c.fronts[name] = f
	return f, nil
}

// nodeTarget is relay node i as a front's target.
func (c *cluster) nodeTarget(i int) *target {
	n := c.nodes[i]
	t := &target{
		name: nodeName(i),
		addr: func() string { return hostPort(n.url()) },
		up:   c.health[i].Load,
	}
	if h, ok := c.net.(*heldNet); ok {
		t.gate = h.gates[i]
	}
	return t
}

func nodeName(i int) string { return fmt.Sprintf("node-%d", i+1) }

// hostPort is the host:port of an http:// URL.
func hostPort(url string) string {
	_, hp, _ := strings.Cut(url, "://")
	return hp
}

// Logs returns every member's log, each under a header naming it.
func (c *cluster) Logs() []byte {
	var b bytes.Buffer
	for i, m := range c.nats {
		fmt.Fprintf(&b, "=== NATS server %d ===\n%s\n", i+1, m.logs())
	}
	for i, m := range c.nodes {
		fmt.Fprintf(&b, "=== relay node %d ===\n%s\n", i+1, m.logs())
	}
	return b.Bytes()
}

// Restart restarts every relay node gracefully, one after the other, each
// back and healthy before the next goes: a rolling restart. Devices
// reconnect through their fronts to the nodes still up.
func (c *cluster) Restart(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.nodes {
		if c.down[i] {
			continue
		}
		if err := n.stop(); err != nil {
			return fmt.Errorf("rolling restart: stop relay node %d: %w", i+1, err)
		}
		if err := c.restartNode(ctx, i); err != nil {
			return fmt.Errorf("rolling restart: %w", err)
		}
	}
	return nil
}

// Crash kills every relay node with SIGKILL at once and starts them again:
// what the nodes had not written to JetStream is gone, and nothing the
// relay acknowledged may be.
func (c *cluster) Crash(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.nodes {
		if !c.down[i] {
			if err := n.kill(); err != nil {
				return fmt.Errorf("crash: relay node %d: %w", i+1, err)
			}
		}
	}
	for i := range c.nodes {
		if err := c.restartNode(ctx, i); err != nil {
			return fmt.Errorf("crash: %w", err)
		}
	}
	return nil
}

// restartNode starts relay node i again and waits until its health checks
// pass, so fronts use it again.
func (c *cluster) restartNode(ctx context.Context, i int) error {
	if err := c.nodes[i].start(ctx); err != nil {
		return fmt.Errorf("start relay node %d again: %w", i+1, err)
	}
	c.down[i] = false
	return c.awaitHealth(ctx, i, true)
}

// awaitHealth waits until the fronts see node i as up (or down).
func (c *cluster) awaitHealth(ctx context.Context, i int, up bool) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	state := map[bool]string{true: "up", false: "down"}[up]
	return Await(ctx, fmt.Sprintf("the fronts to see relay node %d %s", i+1, state), func() error {
		if c.health[i].Load() != up {
			return fmt.Errorf("relay node %d is not %s", i+1, state)
		}
		return nil
	})
}

// canKillNode, canKillNATS and canPartition refuse a fault that cannot be
// applied now, before it is recorded.
func (c *cluster) canKillNode(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down[i] {
		return fmt.Errorf("relay node %d is down already", i+1)
	}
	return nil
}

func (c *cluster) canKillNATS(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.natsDown[i] {
		return fmt.Errorf("NATS server %d is down already", i+1)
	}
	return nil
}

func (c *cluster) canPartition(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.down[i]:
		return fmt.Errorf("relay node %d is down", i+1)
	case c.cut[i]:
		return fmt.Errorf("relay node %d is partitioned already", i+1)
	}
	return nil
}

// killNode kills relay node i with SIGKILL and waits until the fronts
// have taken it out of their rotation.
func (c *cluster) killNode(ctx context.Context, i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.nodes[i].kill(); err != nil {
		return fmt.Errorf("kill relay node %d: %w", i+1, err)
	}
	c.down[i] = true
	return c.awaitHealth(ctx, i, false)
}

func (c *cluster) startNode(ctx context.Context, i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.restartNode(ctx, i)
}

func (c *cluster) killNATS(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.nats[i].kill(); err != nil {
		return fmt.Errorf("kill NATS server %d: %w", i+1, err)
	}
	c.natsDown[i] = true
	return nil
}

func (c *cluster) startNATS(ctx context.Context, i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.nats[i].start(ctx); err != nil {
		return fmt.Errorf("start NATS server %d again: %w", i+1, err)
	}
	c.natsDown[i] = false
	// The fault ends once the server has caught up: only then can another
	// server be lost without a stream losing its quorum.
	if err := waitJetStreamCurrent(ctx, c.monitors); err != nil {
		return fmt.Errorf("NATS server %d started again: %w", i+1, err)
	}
	return nil
}

func (c *cluster) partition(ctx context.Context, i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.net.partition(ctx, i); err != nil {
		return fmt.Errorf("partition relay node %d: %w", i+1, err)
	}
	c.cut[i] = true
	return c.awaitHealth(ctx, i, false)
}

func (c *cluster) heal(ctx context.Context, i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.net.heal(ctx, i); err != nil {
		return fmt.Errorf("heal relay node %d: %w", i+1, err)
	}
	c.cut[i] = false
	return c.awaitHealth(ctx, i, true)
}

// on names the node the device named name is connected to now, "" if none.
func (c *cluster) on(name string) string {
	c.mu.Lock()
	f := c.fronts[name]
	c.mu.Unlock()
	if f == nil {
		return ""
	}
	return f.On()
}

// Close stops the fronts, the relay nodes, then the NATS servers.
func (c *cluster) Close() error {
	var errs []error
	if c.quit != nil {
		close(c.quit)
		c.wg.Wait()
	}
	c.mu.Lock()
	for _, f := range c.fronts {
		errs = append(errs, f.Close())
	}
	c.mu.Unlock()
	for _, n := range c.nodes {
		errs = append(errs, n.close())
	}
	for _, n := range c.nats {
		errs = append(errs, n.close())
	}
	if c.net != nil {
		errs = append(errs, c.net.close())
	}
	return errors.Join(errs...)
}

// NodeURLs are the base URLs (http://host:port) of a backend's relay
// nodes: every node of a cluster backend, else the one relay's. A load
// runner spreads devices over them itself, without the fronts.
func NodeURLs(b Backend) []string {
	c, ok := b.(*cluster)
	if !ok {
		return []string{b.URL()}
	}
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = n.url()
	}
	return urls
}
