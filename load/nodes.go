package load

import (
	"fmt"
	"hash/fnv"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/linksim/linksim/harness"
)

// A run's devices may sit on several relay nodes of one relay (a cluster on
// NATS, docs/cluster.md): nodes given as a list of their URLs, or started
// by the coordinator with cluster:N. Each node holds at most
// maxDevicesPerProcess devices, as each worker does.

// clusterPrefix names a cluster the coordinator starts: cluster:N is N
// relay nodes on three NATS servers, as processes (harness backend
// cluster-process).
const clusterPrefix = "cluster:"

// maxClusterNodes bounds cluster:N: each node is a process with its own
// loopback address, and a typo should not start a thousand.
const maxClusterNodes = 50

// relayPlan is what a definition's relay names.
type relayPlan struct {
	// backend is the harness backend to start or dial: for a list of
	// nodes, the first (the others share its key).
	backend string
	// nodes is how many relay processes hold the devices.
	nodes int
	// urls are the nodes' ws:// URLs when the definition lists them.
	urls []string
	// cluster: the harness starts the nodes (cluster, cluster-process,
	// cluster:N), so devices run in workers that dial the nodes directly,
	// never through the harness's per-device fronts.
	cluster bool
	// local: every relay process runs on this machine, so the file limit
	// bounds its devices.
	local bool
	// started: the harness starts the relays, so the run's relay
	// settings (relay_idle_timeout) reach them; relays named by URL run
	// with whatever they were started with.
	started bool
}

// parseRelay reads a definition's relay field.
func parseRelay(s string) (relayPlan, error) {
	if n, ok := strings.CutPrefix(s, clusterPrefix); ok {
		nodes, err := strconv.Atoi(n)
		if err != nil || nodes < 1 || nodes > maxClusterNodes {
			return relayPlan{}, fmt.Errorf("relay: %q; want cluster:N with N relay nodes, 1 to %d", s, maxClusterNodes)
		}
		return relayPlan{backend: harness.ClusterProcess, nodes: nodes, cluster: true, local: true, started: true}, nil
	}
	if strings.Contains(s, ",") {
		p := relayPlan{local: true}
		for u := range strings.SplitSeq(s, ",") {
			u = strings.TrimSpace(u)
			parsed, err := url.Parse(u)
			if err != nil || (parsed.Scheme != "ws" && parsed.Scheme != "wss") || parsed.Host == "" {
				return relayPlan{}, fmt.Errorf("relay: %q in the list is not a ws:// or wss:// URL of a relay node", u)
			}
			p.urls = append(p.urls, u)
			p.local = p.local && loopback(parsed.Hostname())
		}
		p.backend, p.nodes = p.urls[0], len(p.urls)
		return p, nil
	}
	switch s {
	case harness.Process, harness.Embedded, harness.Container:
		return relayPlan{backend: s, nodes: 1, local: true, started: true}, nil
	case harness.Cluster, harness.ClusterProcess:
		return relayPlan{backend: s, nodes: harness.DefaultNodes, cluster: true, local: true, started: true}, nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || !slices.Contains([]string{"ws", "wss", "http", "https"}, u.Scheme) {
		return relayPlan{}, fmt.Errorf("relay: %q; want process, embedded, container, cluster, cluster-process, cluster:N, a ws:// URL, or the ws:// URLs of relay nodes separated by commas", s)
	}
	return relayPlan{backend: s, nodes: 1, local: loopback(u.Hostname())}, nil
}

func loopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// checkCapacity says how the plan fails the file limit, if it does: every
// relay process on this machine holds at most maxDevicesPerProcess devices.
func (p relayPlan) checkCapacity(devices int, bad func(string, ...any)) {
	if !p.local {
		return
	}
	need := (devices + maxDevicesPerProcess - 1) / maxDevicesPerProcess
	if need <= p.nodes {
		return
	}
	if p.nodes == 1 {
		bad("relay: %d devices on one relay process; one process holds at most %d (the 20,000-file limit): use --relay cluster:%d, or the URLs of %d or more relay nodes separated by commas",
			devices, maxDevicesPerProcess, need, need)
		return
	}
	bad("relay: %d devices over %d relay nodes is %d per node, over %d (the 20,000-file limit); use %d or more nodes (cluster:%d)",
		devices, p.nodes, (devices+p.nodes-1)/p.nodes, maxDevicesPerProcess, need, need)
}

// nodeOf picks the node, of n, of the device named name (u000123/phone,
// u000123/web-1): user u's phone on node u mod n and its j-th web client
// on (u+j) mod n, so the nodes hold equal shares and, with two nodes or
// more, a user's devices sit on different nodes: every message and link
// crosses nodes, the path a cluster must get right. Another name hashes.
func nodeOf(name string, n int) int {
	user, dev, _ := strings.Cut(name, "/")
	u, err := strconv.Atoi(strings.TrimPrefix(user, "u"))
	if err != nil {
		h := fnv.New32a()
		h.Write([]byte(name))
		return int(h.Sum32() % uint32(n))
	}
	j, _ := strconv.Atoi(strings.TrimPrefix(dev, "web-")) // the phone: 0
	return (u + j) % n
}

// nodeBases are the base URLs (http://host:port) of the relay nodes the
// run's devices use: those listed, else every node of the backend env
// started or dialed.
func (p relayPlan) nodeBases(env *harness.Env) []string {
	if len(p.urls) == 0 {
		return harness.NodeURLs(env.Relay())
	}
	bases := make([]string, len(p.urls))
	for i, u := range p.urls {
		b := strings.TrimSuffix(strings.TrimSuffix(u, "/"), "/ws")
		bases[i] = "http" + strings.TrimPrefix(b, "ws")
	}
	return bases
}

// wsURL is the protocol's URL on the node at base.
func wsURL(base string) string { return "ws" + strings.TrimPrefix(base, "http") + "/ws" }
