package harness

import (
	"context"
	"strings"
	"sync"

	"github.com/linksim/linksim/sim/relay"
)

// embedded is a relay in this process: the fastest backend, and the default.
type embedded struct {
	cfg relay.Config

	mu  sync.Mutex
	srv *relay.Server
}

func startEmbedded(cfg relay.Config) (*embedded, error) {
	srv, err := relay.Serve(cfg, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return &embedded{cfg: cfg, srv: srv}, nil
}

func (b *embedded) server() *relay.Server {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.srv
}

func (b *embedded) Kind() string    { return Embedded }
func (b *embedded) URL() string     { return b.server().URL() }
func (b *embedded) Key() []byte     { return b.server().Key() }
func (b *embedded) DataDir() string { return b.cfg.DataDir }
func (b *embedded) Logs() []byte    { return nil } // the Env captures the logger
func (b *embedded) Close() error    { return b.server().Close() }

// Restart closes the relay and serves again on the same address and data.
func (b *embedded) Restart(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	addr := strings.TrimPrefix(b.srv.URL(), "http://")
	if err := b.srv.Close(); err != nil {
		return err
	}
	srv, err := relay.Serve(b.cfg, addr)
	if err != nil {
		return err
	}
	b.srv = srv
	return nil
}

// Crash is a restart here: an in-process relay cannot be killed without
// killing the harness. Every commit is synced before its ack, so what a
// crash would keep, a close keeps too; the process and container backends
// crash for real.
func (b *embedded) Crash(ctx context.Context) error { return b.Restart(ctx) }
