package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"

	"github.com/linksim/linksim/sim/relay"
)

// startClusterContainers runs the cluster as containers of the relay image
// (FROM scratch, the static linksim binary) on a Docker network of their
// own: NATS servers nats-1..3 (linksim nats), relay nodes node-1..N
// (linksim relay --nats). Each member's state is bind-mounted from the
// cluster's data directory, and the ports the harness needs are bound to
// fixed loopback ports, so restarts keep them. No image is pulled.
func startClusterContainers(ctx context.Context, t TB, cfg relay.Config, nodes int) (*cluster, error) {
	if err := dockerHealthy(ctx, tcLogger{t}); err != nil {
		return nil, err
	}
	img, err := imageContext()
	if err != nil {
		return nil, err
	}
	nw, err := tcnetwork.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster network: %w", err)
	}
	docker := &dockerNet{nw: nw}
	c := &cluster{kind: Cluster, dir: cfg.DataDir, net: docker}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	ports, err := freePorts("127.0.0.1", NATSServers+nodes)
	if err != nil {
		return nil, err
	}
	var natsURLs, monitors []string
	for i := range NATSServers {
		name := fmt.Sprintf("nats-%d", i+1)
		var routes []string
		for j := range NATSServers {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://nats-%d:6222", j+1))
			}
		}
		m, err := newBox(t, img, nw, name, 8222, ports[i], filepath.Join(cfg.DataDir, name),
			[]string{"/linksim", "nats"},
			[]string{"--name", name, "--listen", "0.0.0.0:4222", "--store", "/data", "--monitor", "0.0.0.0:8222",
				"--cluster-name", "linksim", "--cluster", "0.0.0.0:6222", "--routes", strings.Join(routes, ",")})
		if err != nil {
			return nil, err
		}
		m.ready = waitNATS
		c.nats = append(c.nats, m)
		natsURLs = append(natsURLs, "nats://"+name+":4222")
		monitors = append(monitors, m.base)
	}
	if err := startMembers(ctx, "NATS server", c.nats); err != nil {
		return nil, err
	}
	c.monitors = monitors
	if err := waitJetStreamCurrent(ctx, monitors); err != nil {
		return nil, err
	}
	for i := range nodes {
		name := nodeName(i)
		m, err := newBox(t, img, nw, name, 8080, ports[NATSServers+i], filepath.Join(cfg.DataDir, name), nil,
			append([]string{"--nats", strings.Join(natsURLs, ","), "--replicas", strconv.Itoa(NATSServers)}, relayFlags(cfg)...))
		if err != nil {
			return nil, err
		}
		m.ready = waitHealthy
		m.serves = true
		c.nodes = append(c.nodes, m)
		docker.boxes = append(docker.boxes, m)
	}
	if err := c.startNodes(ctx); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// box is a member of the container variant: one container of the relay
// image on the cluster's network, known there by its alias, with one port
// (the relay's, or a NATS server's monitoring port) bound to loopback.
type box struct {
	t     TB
	req   testcontainers.ContainerRequest
	alias string
	base  string // http://127.0.0.1:port
	ready func(ctx context.Context, base string) error
	// serves says base is the relay's own (url returns it); a NATS
	// server's is only its monitoring port.
	serves bool

	mu sync.Mutex
	c  testcontainers.Container
}

// newBox makes (not starts) the container alias, its port bound to
// hostPort on loopback and its /data to data.
func newBox(t TB, img relayImage, nw *testcontainers.DockerNetwork, alias string, port, hostPort int, data string, entrypoint, cmd []string) (*box, error) {
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	p := network.MustParsePort(strconv.Itoa(port) + "/tcp")
	b := &box{t: t, alias: alias, base: fmt.Sprintf("http://127.0.0.1:%d", hostPort)}
	b.req = testcontainers.ContainerRequest{
		FromDockerfile: testcontainers.FromDockerfile{Context: img.dir, Repo: "linksim-relay", Tag: img.tag, KeepImage: true},
		Entrypoint:     entrypoint,
		Cmd:            cmd,
		ExposedPorts:   []string{p.String()},
		Networks:       []string{nw.Name},
		NetworkAliases: map[string][]string{nw.Name: {alias}},
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.Binds = []string{data + ":/data"}
			hc.PortBindings = network.PortMap{p: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(hostPort)}}}
		},
	}
	return b, nil
}

// start creates and starts the container the first time, and starts the
// same container again afterwards (its state and port stay).
func (b *box) start(ctx context.Context) error {
	b.mu.Lock()
	c := b.c
	b.mu.Unlock()
	if c == nil {
		var err error
		c, err = testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: b.req, Started: true, Logger: tcLogger{b.t}})
		if c != nil {
			b.mu.Lock()
			b.c = c
			b.mu.Unlock()
		}
		if err != nil {
			return fmt.Errorf("start container %s: %w", b.alias, err)
		}
	} else if err := c.Start(ctx); err != nil {
		return fmt.Errorf("start container %s again: %w", b.alias, err)
	}
	if err := b.ready(ctx, b.base); err != nil {
		return fmt.Errorf("%s: %w; its log:\n%s", b.alias, err, b.logs())
	}
	return nil
}

func (b *box) container() (testcontainers.Container, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c == nil {
		return nil, errors.New("never started")
	}
	return b.c, nil
}

func (b *box) halt(grace time.Duration) error {
	c, err := b.container()
	if err != nil {
		return err
	}
	return c.Stop(context.Background(), &grace)
}

// kill stops the container with no grace period: docker sends SIGKILL.
func (b *box) kill() error { return b.halt(0) }
func (b *box) stop() error { return b.halt(10 * time.Second) }

func (b *box) url() string {
	if !b.serves {
		return ""
	}
	return b.base
}

func (b *box) logs() []byte {
	c, err := b.container()
	if err != nil {
		return nil
	}
	rc, err := c.Logs(context.Background())
	if err != nil {
		return []byte(fmt.Sprintf("container logs: %v", err))
	}
	defer rc.Close()
	out, _ := io.ReadAll(rc)
	return out
}

func (b *box) close() error {
	c, err := b.container()
	if err != nil {
		return nil
	}
	return c.Terminate(context.Background())
}

// dockerNet is the container variant's network: partitioning a relay node
// disconnects its container from the cluster's Docker network, which
// takes away its route to the NATS servers and its port binding alike.
type dockerNet struct {
	nw    *testcontainers.DockerNetwork
	boxes []*box
}

// onNetwork runs op with a Docker client and the container id of relay
// node i.
func (d *dockerNet) onNetwork(ctx context.Context, i int, op func(cli *testcontainers.DockerClient, id string) error) error {
	c, err := d.boxes[i].container()
	if err != nil {
		return err
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	return op(cli, c.GetContainerID())
}

func (d *dockerNet) partition(ctx context.Context, i int) error {
	return d.onNetwork(ctx, i, func(cli *testcontainers.DockerClient, id string) error {
		_, err := cli.NetworkDisconnect(ctx, d.nw.ID, client.NetworkDisconnectOptions{Container: id, Force: true})
		return err
	})
}

// heal connects the node to the network again, under its alias.
func (d *dockerNet) heal(ctx context.Context, i int) error {
	return d.onNetwork(ctx, i, func(cli *testcontainers.DockerClient, id string) error {
		_, err := cli.NetworkConnect(ctx, d.nw.ID, client.NetworkConnectOptions{Container: id,
			EndpointConfig: &network.EndpointSettings{Aliases: []string{d.boxes[i].alias}}})
		return err
	})
}

// isolated is false: Docker cuts the node off for real, health checks
// included.
func (d *dockerNet) isolated(int) bool { return false }

func (d *dockerNet) close() error { return d.nw.Remove(context.Background()) }
