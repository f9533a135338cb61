package device

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/wire"
)

// A relay that takes the connection but fails the Hello (its store timed
// out, as cluster nodes' NATS requests did in issue 10's 100,000 run) must
// see the device back off further at each failure, not reconnect at the
// first backoff step for ever: thousands of devices doing that are a
// reconnect storm that keeps the relay overloaded.
func TestFailedHelloBacksOff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := startRelay(t)
	st := kv.NewMem()
	cfg := Config{Name: "alice", RelayURL: s.WSURL(), RelayKey: s.Key(), State: st}
	d, err := Register(ctx, cfg, "+15550100", "alice")
	if err != nil {
		t.Fatal(err)
	}
	d.Close()

	key, err := wire.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	var connects atomic.Int32
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c, err := wire.Accept(r.Context(), ws, key)
		if err != nil {
			return
		}
		connects.Add(1)
		c.ReadFrame(r.Context()) // the Hello, then "internal error" as the relay does
		c.Close("internal error")
	}))
	defer failing.Close()

	cfg.RelayURL, cfg.RelayKey = "ws"+strings.TrimPrefix(failing.URL, "http")+"/ws", key.Public
	cfg.BackoffBase, cfg.BackoffMax = 20*time.Millisecond, 5*time.Second
	d, err = Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	time.Sleep(2 * time.Second)
	// Growing from 20 ms, the delays average 10, 20, 40, ... 640 ms: about
	// 8 connections in 2 s. At a constant first step (0-40 ms) it is ~100.
	n := connects.Load()
	t.Logf("%d connections in 2 s", n)
	if n > 20 {
		t.Errorf("%d connections in 2 s to a relay that fails every Hello; want the backoff to grow (at most 20)", n)
	}
}
