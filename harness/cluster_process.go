package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/linksim/linksim/sim/relay"
)

// startClusterProcesses runs the cluster as child processes of the
// harness, each on its own loopback address as if on its own host: NATS
// server i on 127.0.0.1i, relay node i on 127.0.0.2i. Every relay node
// reaches each NATS server through a forwarder of the harness, so a
// partition can hold its traffic (heldNet); it needs no Docker and no
// privileges.
func startClusterProcesses(ctx context.Context, cfg relay.Config, nodes int) (*cluster, error) {
	bin, err := binary()
	if err != nil {
		return nil, err
	}
	c := &cluster{kind: ClusterProcess, dir: cfg.DataDir}
	held := &heldNet{}
	c.net = held
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	natsAddrs, monitors, err := natsProcesses(c, bin)
	if err != nil {
		return nil, err
	}
	if err := startMembers(ctx, "NATS server", c.nats); err != nil {
		return nil, err
	}
	c.monitors = monitors
	if err := waitJetStreamCurrent(ctx, monitors); err != nil {
		return nil, err
	}
	for i := range nodes {
		g := newGate()
		held.gates = append(held.gates, g)
		var urls []string
		for j, addr := range natsAddrs {
			f, err := newForwarder("127.0.0.1:0", &target{name: fmt.Sprintf("nats-%d", j+1), addr: func() string { return addr }, gate: g})
			if err != nil {
				return nil, err
			}
			held.links = append(held.links, f)
			urls = append(urls, "nats://"+f.Addr())
		}
		n := &child{bin: bin, served: "linksim relay serving ", ready: waitHealthy,
			addr: fmt.Sprintf("127.0.0.%d:0", 21+i)}
		n.args = func() []string {
			return append([]string{"relay", "--listen", n.listen(), "--data", filepath.Join(cfg.DataDir, nodeName(i)),
				"--log-level", "debug", "--nats", strings.Join(urls, ","), "--replicas", strconv.Itoa(NATSServers)},
				relayFlags(cfg)...)
		}
		c.nodes = append(c.nodes, n)
	}
	if err := c.startNodes(ctx); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// natsProcesses makes the three NATS servers (not started) and returns
// their client addresses and monitoring URLs. Ports are picked free now: each server's routes
// name the others' before any of them runs.
func natsProcesses(c *cluster, bin string) (clients, monitors []string, err error) {
	type addrs struct{ client, route, monitor string }
	var as []addrs
	for i := range NATSServers {
		ip := fmt.Sprintf("127.0.0.%d", 11+i)
		ports, err := freePorts(ip, 3)
		if err != nil {
			return nil, nil, err
		}
		var a [3]string
		for k, port := range ports {
			a[k] = net.JoinHostPort(ip, strconv.Itoa(port))
		}
		as = append(as, addrs{a[0], a[1], a[2]})
	}
	for i, a := range as {
		var routes []string
		for j, o := range as {
			if j != i {
				routes = append(routes, "nats-route://"+o.route)
			}
		}
		args := []string{"nats", "--name", fmt.Sprintf("nats-%d", i+1), "--listen", a.client, "--monitor", a.monitor,
			"--store", filepath.Join(c.dir, fmt.Sprintf("nats-%d", i+1)), "--cluster-name", "linksim",
			"--cluster", a.route, "--routes", strings.Join(routes, ",")}
		monitor := "http://" + a.monitor
		c.nats = append(c.nats, &child{bin: bin, served: "linksim nats serving ", addr: a.client,
			args:  func() []string { return args },
			ready: func(ctx context.Context, _ string) error { return waitNATS(ctx, monitor) }})
		clients = append(clients, a.client)
		monitors = append(monitors, monitor)
	}
	return clients, monitors, nil
}

// waitNATS waits until the NATS server whose monitoring endpoint is at
// monitor reports itself healthy, which includes JetStream knowing its
// cluster's meta leader: before that, a relay node could not create its
// streams.
func waitNATS(ctx context.Context, monitor string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return Await(ctx, "the NATS server at "+monitor+" to be healthy with JetStream", func() error {
		return healthy(ctx, monitor)
	})
}

// freePorts picks n different free ports on ip, holding each until all
// are picked: released one by one, the kernel may hand out one twice.
func freePorts(ip string, n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// child is a member of the process variant: a linksim command run as a
// child process, which says it serves by a line on stdout starting with
// served, followed by its address.
type child struct {
	bin    string
	args   func() []string
	served string
	// ready, if set, waits after the line until the member really serves,
	// given its URL.
	ready func(ctx context.Context, url string) error
	log   lockedBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	addr string // host:port, fixed after the first start
	base string // what it printed after served
}

// listen is the address to listen on: the one of the first start on every
// restart, so fronts and routes keep finding it.
func (p *child) listen() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

func (p *child) start(ctx context.Context) error {
	cmd, served, err := runChild(p.bin, p.args(), p.served, &p.log)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.cmd, p.base = cmd, served
	p.addr = hostPort(served)
	p.mu.Unlock()
	if p.ready != nil {
		if err := p.ready(ctx, served); err != nil {
			p.kill()
			return err
		}
	}
	return nil
}

func (p *child) signal(sig syscall.Signal) error {
	p.mu.Lock()
	cmd := p.cmd
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return errors.New("not running")
	}
	return stopChild(cmd, sig)
}

func (p *child) kill() error { return p.signal(syscall.SIGKILL) }
func (p *child) stop() error { return p.signal(syscall.SIGTERM) }

func (p *child) url() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !strings.HasPrefix(p.base, "http") {
		return ""
	}
	return p.base
}

func (p *child) logs() []byte { return p.log.Bytes() }

func (p *child) close() error {
	p.mu.Lock()
	running := p.cmd != nil
	p.mu.Unlock()
	if !running {
		return nil
	}
	return p.stop()
}

// heldNet is the process variant's network. Devices reach relay node i
// through their fronts and node i reaches each NATS server through a
// forwarder, all sharing node i's gate: partitioning the node shuts it,
// and every byte to or from the node is held (not refused: a partition
// sends no resets) until it heals. The node keeps running and finds out
// the way a partitioned host does, by timeouts.
type heldNet struct {
	gates []*gate
	links []*forwarder
}

func (h *heldNet) partition(_ context.Context, i int) error {
	if !h.gates[i].shut() {
		return errors.New("partitioned already")
	}
	return nil
}

func (h *heldNet) heal(_ context.Context, i int) error {
	h.gates[i].lift()
	return nil
}

func (h *heldNet) isolated(i int) bool { return h.gates[i].isShut() }

func (h *heldNet) close() error {
	var errs []error
	for _, g := range h.gates {
		g.lift()
	}
	for _, f := range h.links {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}
