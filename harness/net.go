package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
// returns a function that lifts it; lifted or not, a fault applied is
// recorded on the run's timeline. A fault that could not be applied is an
// error and is not recorded: a flow must not pass believing it ran through
// a fault that never happened.
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
	// Toxiproxy's toxics log through zerolog's global logger, not the
	// server's ("BandwidthToxic was interrupted" on every lifted fault), and
	// the run's console is no place for them.
	zerolog.SetGlobalLevel(zerolog.Disabled)
	return &faultNet{
		server: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop()),
		links:  make(map[string]*NetLink),
	}
}

// ErrNoFaults means a flow asked for a device's fault path in an Env
// started without Config.Faults, where devices talk to the relay directly
// and a fault would change nothing.
var ErrNoFaults = errors.New("faults are off in this Env: set Config.Faults (a flow's Configure) so devices connect through their fault paths")

// Net returns the network path of the device named name, creating it. Only
// an Env started with Config.Faults has them (ErrNoFaults otherwise), and
// only devices created afterwards use theirs.
func (e *Env) Net(name string) (*NetLink, error) {
	if !e.cfg.Faults {
		return nil, fmt.Errorf("harness: fault path of %s: %w", name, ErrNoFaults)
	}
	n := e.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if l, ok := n.links[name]; ok {
		return l, nil
	}
	upstream := strings.TrimPrefix(e.backend.URL(), "http://")
	p := toxiproxy.NewProxy(n.server, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("harness: fault proxy for %s: %w", name, err)
	}
	e.t.Cleanup(p.Stop)
	l := &NetLink{name: name, proxy: p, rec: e.rec.rec}
	n.links[name] = l
	return l, nil
}

// URL is the relay's WebSocket URL as seen through this path.
func (l *NetLink) URL() string { return "ws://" + l.proxy.Listen + "/ws" }

// add puts a toxic on both directions, records the fault and returns the
// function removing it. When either direction fails, neither stays.
func (l *NetLink) add(fault, typ string, attrs map[string]any) (lift func(), err error) {
	l.mu.Lock()
	l.n++
	base := fmt.Sprintf("%s-%d", typ, l.n)
	l.mu.Unlock()
	var names []string
	remove := func() {
		for _, n := range names {
			l.proxy.Toxics.RemoveToxic(context.Background(), n)
		}
	}
	for _, stream := range []string{"upstream", "downstream"} {
		body, err := json.Marshal(map[string]any{"name": base + "-" + stream, "type": typ, "stream": stream, "attributes": attrs})
		if err == nil {
			_, err = l.proxy.Toxics.AddToxicJson(bytes.NewReader(body))
		}
		if err != nil {
			remove()
			return nil, fmt.Errorf("harness: %s on %s (%s): %w", fault, l.name, stream, err)
		}
		names = append(names, base+"-"+stream)
	}
	end := l.rec.Fault(fault + " on " + l.name)
	return sync.OnceFunc(func() {
		remove()
		end()
	}), nil
}

// Latency delays every byte by latency, plus or minus jitter, each way.
func (l *NetLink) Latency(latency, jitter time.Duration) (lift func(), err error) {
	return l.add("latency "+latency.String(), "latency", map[string]any{"latency": latency.Milliseconds(), "jitter": jitter.Milliseconds()})
}

// Bandwidth limits the path to kbps kilobytes per second each way.
func (l *NetLink) Bandwidth(kbps int) (lift func(), err error) {
	return l.add(fmt.Sprintf("bandwidth %d KB/s", kbps), "bandwidth", map[string]any{"rate": kbps})
}

// Blackhole drops every byte while keeping connections open: a half-open
// link that only keepalives can find.
func (l *NetLink) Blackhole() (lift func(), err error) {
	return l.add("blackhole", "timeout", map[string]any{"timeout": 0})
}

// Slice cuts the stream into small packets of about size bytes (plus or
// minus variation), each delayed by delay: frames arrive in pieces.
func (l *NetLink) Slice(size, variation int, delay time.Duration) (lift func(), err error) {
	return l.add("slicing", "slicer", map[string]any{"average_size": size, "size_variation": variation, "delay": delay.Microseconds()})
}

// Reset drops every connection on the path at once, as a reset by the
// network would; devices reconnect through it. An error means the path
// could not listen again: its device is cut off for good.
func (l *NetLink) Reset() error {
	end := l.rec.Fault("reset on " + l.name)
	defer end()
	l.proxy.Stop()
	if err := l.proxy.Start(); err != nil {
		return fmt.Errorf("harness: reset on %s: listen again: %w", l.name, err)
	}
	return nil
}

// Offline takes the device off the network, as airplane mode would: its
// connections drop and new ones are refused until back is called. back
// fails only when the path cannot listen again.
func (l *NetLink) Offline() (back func() error) {
	end := l.rec.Fault("offline " + l.name)
	l.proxy.Stop()
	return sync.OnceValue(func() error {
		defer end()
		if err := l.proxy.Start(); err != nil {
			return fmt.Errorf("harness: %s back online: listen again: %w", l.name, err)
		}
		return nil
	})
}
