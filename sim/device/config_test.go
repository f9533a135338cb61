package device

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/relay"
	"github.com/linksim/linksim/sim/store"
)

// A device dials through Config.Dialer (here from source address
// 127.0.0.2) and uploads Config.PreKeys one-time prekeys, not the default.
func TestDialerAndPreKeyCount(t *testing.T) {
	dir := t.TempDir()
	srv, err := relay.Serve(relay.Config{DataDir: dir, NoSync: true}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	var (
		mu      sync.Mutex
		sources []string
	)
	from := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	dialer := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := from.DialContext(ctx, network, addr)
		if err == nil {
			mu.Lock()
			sources = append(sources, c.LocalAddr().(*net.TCPAddr).IP.String())
			mu.Unlock()
		}
		return c, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const preKeys = 12
	connected := make(chan struct{}, 10)
	events := func(e Event) {
		if e.Kind == Connected {
			connected <- struct{}{}
		}
	}
	cfg := Config{Name: "alice", RelayURL: srv.WSURL(), RelayKey: srv.Key(), Dialer: dialer, PreKeys: preKeys, Events: events, BackoffBase: time.Millisecond}
	d, err := Register(ctx, cfg, "+15550100", "alice")
	if err != nil {
		t.Fatal(err)
	}
	<-connected
	d.Disconnect() // the reconnect must dial through Dialer too
	select {
	case <-connected:
	case <-ctx.Done():
		t.Fatal("no reconnect within 10s")
	}
	self := d.Self()
	d.Close()
	srv.Close()

	mu.Lock()
	defer mu.Unlock()
	if len(sources) < 2 {
		t.Errorf("Dialer opened %d connections, want the registration's and the reconnect's", len(sources))
	}
	for _, s := range sources {
		if s != "127.0.0.2" {
			t.Errorf("connection from %s, want the Dialer's source 127.0.0.2", s)
		}
	}
	st, err := store.OpenBolt(filepath.Join(dir, "relay.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := st.PreKeyCount(store.Address{User: self.User, Device: self.Device})
	if err != nil {
		t.Fatal(err)
	}
	if n != preKeys {
		t.Errorf("relay holds %d one-time prekeys of the device, want Config.PreKeys = %d", n, preKeys)
	}
}
