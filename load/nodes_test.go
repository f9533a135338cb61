package load

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/cluster/natstest"
	"github.com/linksim/linksim/sim/relay"
)

// A plan that would put more devices in one relay process than the file
// limit allows is refused, naming how many nodes it needs.
func TestRelayPlanFitsTheFileLimit(t *testing.T) {
	for _, c := range []struct {
		def  Definition
		want string // "" fits
	}{
		{Definition{Users: 9000, Relay: "process", Workers: 1}, ""},
		{Definition{Users: 50000, Relay: "process", Workers: 6}, "100000 devices on one relay process; one process holds at most 19000 (the 20,000-file limit): use --relay cluster:6"},
		{Definition{Users: 50000, Relay: "cluster:5", Workers: 6}, "100000 devices over 5 relay nodes is 20000 per node, over 19000 (the 20,000-file limit); use 6 or more nodes (cluster:6)"},
		{Definition{Users: 50000, Relay: "cluster:6", Workers: 5}, "workers: 20000 devices per process is over 19000 (one process may open at most 20,000 files); use workers >= 6"},
		{Definition{Users: 50000, Relay: "cluster:6", Workers: 6}, ""},
		{Definition{Users: 20000, Relay: "ws://127.0.0.1:1/ws,ws://127.0.0.1:2/ws", Workers: 3}, "40000 devices over 2 relay nodes is 20000 per node"},
		{Definition{Users: 20000, Relay: "ws://10.0.0.5:8080/ws", Workers: 3}, ""}, // another machine's relay: not ours to count
		{Definition{Users: 10, Relay: "ws://127.0.0.1:1/ws,http://x"}, `"http://x" in the list is not a ws:// or wss:// URL`},
		{Definition{Users: 10, Relay: "cluster:0"}, `want cluster:N with N relay nodes, 1 to 50`},
		{Definition{Users: 10, Relay: "clusters"}, `relay: "clusters"; want process`},
	} {
		c.def.Messages.Rate = 1
		err := c.def.Defaults().Check()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("relay %s, %d users, %d workers: refused: %v", c.def.Relay, c.def.Users, c.def.Workers, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("relay %s, %d users, %d workers: error %v; want it to say %q", c.def.Relay, c.def.Users, c.def.Workers, err, c.want)
		}
	}
}

// Devices spread evenly over the nodes, and a user's phone and web client
// sit on different nodes.
func TestNodeOfSpreadsUsersOverNodes(t *testing.T) {
	count := make([]int, 3)
	for u := range 300 {
		name := fmt.Sprintf("u%06d", u)
		phone, web := nodeOf(name+"/phone", 3), nodeOf(name+"/web-1", 3)
		if phone == web {
			t.Fatalf("%s: phone and web client both on node %d", name, phone)
		}
		count[phone]++
		count[web]++
	}
	for i, n := range count {
		if n != 200 {
			t.Errorf("node %d holds %d of 600 devices, want 200", i, n)
		}
	}
}

// A run over two relay nodes on one NATS server links every user across
// the nodes (phone on one, web client on the other) and delivers every
// message across them.
func TestLoadOverTwoRelayNodes(t *testing.T) {
	srv, err := natstest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	var urls []string
	var nodes []*relay.Server
	for range 2 {
		node, err := relay.Serve(relay.Config{NATS: []string{srv.URL()}}, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { node.Close() })
		urls = append(urls, wsURL(node.URL()))
		nodes = append(nodes, node)
	}
	def := Definition{
		Users: 20, Relay: strings.Join(urls, ","),
		Messages: Arrival{Rate: 20}, Duration: Duration(3 * time.Second),
		Mix: map[string]float64{ActText: 1},
	}
	rep, err := Coordinate(context.Background(), def, Options{}, func(Snapshot) {})
	if err != nil {
		t.Fatal(err)
	}
	tot := rep.Ledger.Totals
	if !rep.Passed() || tot.Problems() != 0 || tot.Messages < 20 || tot.Delivered != tot.Expected {
		t.Errorf("report passed=%v, ledger %+v", rep.Passed(), tot)
	}
	if rep.Meta["devices"] != "40" {
		t.Errorf("meta %v, want 40 devices", rep.Meta)
	}
	for i, node := range nodes {
		if n := deliveries(t, node.URL()); n == 0 {
			t.Errorf("relay node %d pushed no delivery: its devices went elsewhere", i+1)
		}
	}
}

// deliveries is what the relay node at base counts in
// linksim_relay_deliveries_total.
func deliveries(t *testing.T, base string) float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, "linksim_relay_deliveries_total "); ok {
			n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return n
		}
	}
	return 0
}
