package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/linksim/linksim/reports"
)

// NetLink is one device's network path to the relay, through its own
// in-process Toxiproxy: faults on it touch that device only. Each fault
// returns a function that lifts it; lifted or not, faults are recorded on
// the run's timeline.
type NetLink struct {
	name  string
	proxy *toxiproxy.Proxy
	rec   *reports.Recorder

	mu sync.Mutex
	n  int // names toxics uniquely
}

// faultNet holds the Env's proxies, one per device name.
type faultNet struct {
	server *toxiproxy.ApiServer

	mu    sync.Mutex
	links map[string]*NetLink
}

func newFaultNet() *faultNet {
	return &faultNet{
		server: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop()),
		links:  make(map[string]*NetLink),
	}
}

// Net returns the network path of the device named name, creating it. Only
// devices created while Config.Faults is set use their path.
func (e *Env) Net(name string) *NetLink {
	e.t.Helper()
	n := e.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if l, ok := n.links[name]; ok {
		return l
	}
	upstream := strings.TrimPrefix(e.backend.URL(), "http://")
	p := toxiproxy.NewProxy(n.server, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		e.t.Fatalf("harness: fault proxy for %s: %v", name, err)
	}
	e.t.Cleanup(p.Stop)
	l := &NetLink{name: name, proxy: p, rec: e.rec.rec}
	n.links[name] = l
	return l
}

// URL is the relay's WebSocket URL as seen through this path.
func (l *NetLink) URL() string { return "ws://" + l.proxy.Listen + "/ws" }

// add puts a toxic on both directions and returns the function removing it.
func (l *NetLink) add(fault, typ string, attrs map[string]any) func() {
	l.mu.Lock()
	l.n++
	base := fmt.Sprintf("%s-%d", typ, l.n)
	l.mu.Unlock()
	end := l.rec.Fault(fault + " on " + l.name)
	var names []string
	for _, stream := range []string{"upstream", "downstream"} {
		body, _ := json.Marshal(map[string]any{"name": base + "-" + stream, "type": typ, "stream": stream, "attributes": attrs})
		if _, err := l.proxy.Toxics.AddToxicJson(strings.NewReader(string(body))); err == nil {
			names = append(names, base+"-"+stream)
		}
	}
	return sync.OnceFunc(func() {
		for _, n := range names {
			l.proxy.Toxics.RemoveToxic(context.Background(), n)
		}
		end()
	})
}

// Latency delays every byte by latency, plus or minus jitter, each way.
func (l *NetLink) Latency(latency, jitter time.Duration) (lift func()) {
	return l.add("latency "+latency.String(), "latency", map[string]any{"latency": latency.Milliseconds(), "jitter": jitter.Milliseconds()})
}

// Bandwidth limits the path to kbps kilobytes per second each way.
func (l *NetLink) Bandwidth(kbps int) (lift func()) {
	return l.add(fmt.Sprintf("bandwidth %d KB/s", kbps), "bandwidth", map[string]any{"rate": kbps})
}

// Blackhole drops every byte while keeping connections open: a half-open
// link that only keepalives can find.
func (l *NetLink) Blackhole() (lift func()) {
	return l.add("blackhole", "timeout", map[string]any{"timeout": 0})
}

// Slice cuts the stream into small packets of about size bytes (plus or
// minus variation), each delayed by delay: frames arrive in pieces.
func (l *NetLink) Slice(size, variation int, delay time.Duration) (lift func()) {
	return l.add("slicing", "slicer", map[string]any{"average_size": size, "size_variation": variation, "delay": delay.Microseconds()})
}

// Reset drops every connection on the path at once, as a reset by the
// network would; devices reconnect through it.
func (l *NetLink) Reset() {
	end := l.rec.Fault("reset on " + l.name)
	defer end()
	l.proxy.Stop()
	l.proxy.Start()
}
