package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/cluster"
	"github.com/linksim/linksim/sim/route"
	"github.com/linksim/linksim/sim/route/routetest"
	"github.com/linksim/linksim/sim/store"
)

func TestRouterConformance(t *testing.T) {
	url := startNATS(t)
	a, b := openNode(t, url), openNode(t, url)
	if err := routetest.Check(a, b); err != nil {
		t.Fatalf("NATS router, two nodes:\n%v", err)
	}
}

// A scan of a ref whose node is gone finds no host, so the phone hears
// REF_UNKNOWN at once rather than waiting for a reply that never comes.
func TestScanOfARefOnAClosedNode(t *testing.T) {
	url := startNATS(t)
	a := openNode(t, url)
	b, err := cluster.Open(cluster.Config{URLs: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Host("ref-on-b", func(route.Scan, func([]byte)) {}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.Scan(ctx, "ref-on-b", route.Scan{}); !errors.Is(err, route.ErrNoHost) {
		t.Fatalf("scan of a ref hosted by a closed node: %v, want ErrNoHost", err)
	}
}

// Events are at most once: those sent while a node reconnects to NATS are
// lost. So after reconnecting, the node pokes every device attached to it,
// and a message whose poke was lost is still pushed.
func TestReconnectPokesEveryAttachedDevice(t *testing.T) {
	n := openNode(t, startNATS(t))
	events := make(chan route.Event, 4)
	detach, err := n.Attach(store.Address{User: "+15550100"}, func(ev route.Event) { events <- ev })
	if err != nil {
		t.Fatal(err)
	}
	defer detach()
	if err := n.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if ev.Kind != route.Poke {
			t.Fatalf("after the node reconnected, the device got event %d, want a poke", ev.Kind)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no poke within 5s of the node reconnecting to NATS")
	}
}

// An idle attached device costs its node no goroutine: the users'
// subscriptions share one reader (a callback subscription of nats.go
// would run one each), and events still reach every device.
func TestAttachedUsersShareOneEventReader(t *testing.T) {
	n := openNode(t, startNATS(t))
	const users = 300
	before := runtime.NumGoroutine()
	got := make(chan string, users)
	for i := range users {
		a := store.Address{User: fmt.Sprintf("+1555%07d", i)}
		detach, err := n.Attach(a, func(ev route.Event) {
			if ev.Kind == route.Poke {
				got <- a.User
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		defer detach()
	}
	if grown := runtime.NumGoroutine() - before; grown > users/10 {
		t.Errorf("%d users attached grew the node by %d goroutines, want far fewer than one each", users, grown)
	}
	for i := range users {
		if err := n.Send(store.Address{User: fmt.Sprintf("+1555%07d", i)}, route.Event{Kind: route.Poke}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for len(seen) < users {
		select {
		case u := <-got:
			seen[u] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of %d attached users got their poke within 5s", len(seen), users)
		}
	}
}
