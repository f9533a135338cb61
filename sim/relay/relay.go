// Package relay is linksim's reference relay: the server every device talks
// to over Noise-encrypted WebSocket frames. It keeps accounts, devices and
// prekeys, runs the pairing rendezvous, routes ciphertext through durable
// per-device queues, and keeps encrypted media blobs, as docs/protocol.md
// specifies. It never sees plaintext.
package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/linksim/linksim/sim/cluster"
	"github.com/linksim/linksim/sim/route"
	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire"
	"github.com/linksim/linksim/sim/wire/pb"
)

// Config tunes a Relay. The zero value is valid: every zero field takes the
// default named in its comment (the protocol's defaults, docs/protocol.md §13).
type Config struct {
	// DataDir holds the store (relay.db, and relay-prekeys.db for the
	// one-time prekeys) and the relay's Noise static key (relay.key), so a
	// restarted relay keeps its queues and the key devices pinned. "" uses a new temporary directory, removed on Close.
	DataDir string
	// RefCount is how many pairing refs one PairStart issues. Default 6.
	RefCount int
	// RefFirstTTL is how long the first pairing ref is valid. Default 60s.
	RefFirstTTL time.Duration
	// RefNextTTL is how long each later pairing ref is valid. Default 20s.
	RefNextTTL time.Duration
	// PairTimeout is how long a scan waits for the companion's PairFinish
	// or PairReject before the phone gets PAIR_TIMEOUT. Default 10s.
	PairTimeout time.Duration
	// IdleTimeout closes a connection that sent no frame for this long; it
	// also bounds how long one write may block. Default 60s.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds the Noise handshake. Default 10s.
	HandshakeTimeout time.Duration
	// MaxCompanions is how many companions an account may link. Default 4.
	MaxCompanions int
	// Logger receives structured logs (never keys, ciphertext or
	// plaintext). nil discards them.
	Logger *slog.Logger
	// Web serves every path the relay does not (the web app, at /). It is
	// called once with the relay's public Noise key, which the page must
	// carry for the app to pin. nil serves a placeholder page.
	Web func(relayKey []byte) http.Handler
	// NoSync skips the disk sync on commit: faster, and an acked message no
	// longer survives a machine crash. For throwaway relays in tests only.
	NoSync bool
	// MaxMediaBytes is the largest media blob the relay takes. Default 64 MiB.
	MaxMediaBytes int64
	// MediaTTL is how long a media blob is kept after it was last uploaded
	// or announced again (MediaUpload of the same hash). Default 7 days.
	MediaTTL time.Duration
	// MediaTokenTTL is how long an upload token can start an upload.
	// Default 10 minutes.
	MediaTokenTTL time.Duration
	// Limits bound what one client can make the relay hold or spend.
	Limits Limits

	// breakPush, set only by tests (export_test.go), rewrites each batch
	// of deliveries before it is pushed to device to: a relay that
	// duplicates, reorders or drops on purpose, to prove the ledger
	// catches it.
	breakPush func(to store.Address, batch []*pb.Delivery) []*pb.Delivery
	// Field turns on what real relays do to clients in the field; the
	// zero value turns none on.
	Field FieldConfig

	// NATS, when set, makes this relay one stateless node of a relay
	// cluster (package cluster): accounts, queues, prekeys, media blobs
	// and the relay's Noise key live in JetStream on these NATS servers
	// (nats://host:port, any of one cluster), and devices connected to
	// other nodes are reached over NATS. Several nodes on the same NATS
	// cluster are one relay to devices; DataDir and NoSync are unused
	// (JetStream's replicas are the durability).
	NATS []string
	// Replicas is how many NATS servers keep each stream and bucket the
	// cluster creates (JetStream's replication factor): 3 in a 3-server
	// cluster. Default 1. Ignored without NATS.
	Replicas int
	// WrapStore, if set, wraps the relay's store (bbolt or the cluster's)
	// before the relay uses it, so a test of a client can make chosen
	// operations fail or stall, as a full disk or a NATS stream electing
	// its leader does.
	WrapStore func(store.Store) store.Store
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.RefCount <= 0 {
		c.RefCount = 6
	}
	def(&c.RefFirstTTL, 60*time.Second)
	def(&c.RefNextTTL, 20*time.Second)
	def(&c.PairTimeout, 10*time.Second)
	def(&c.IdleTimeout, 60*time.Second)
	def(&c.HandshakeTimeout, 10*time.Second)
	if c.MaxCompanions <= 0 {
		c.MaxCompanions = 4
	}
	if c.MaxMediaBytes <= 0 {
		c.MaxMediaBytes = 64 << 20
	}
	def(&c.MediaTTL, 7*24*time.Hour)
	def(&c.MediaTokenTTL, 10*time.Minute)
	c.Limits = c.Limits.withDefaults()
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// Relay is one relay instance. Serve it with Handler (or use Serve).
type Relay struct {
	cfg     Config
	log     *slog.Logger
	st      store.Store
	key     wire.KeyPair
	tempDir string // removed on Close; "" when DataDir was given
	router  route.Router
	rv      route.Rendezvous
	pair    *pairings
	acks    *ackers
	m       *metrics
	handler http.Handler
	media   *media

	prekeyRate *tokenBuckets // one-time prekeys taken per device

	// ctx is cancelled by Close; every connection derives from it.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	conns  map[*conn]struct{}
	wg     sync.WaitGroup // one per tracked connection
}

// New opens (or creates) the relay's state in cfg.DataDir.
func New(cfg Config) (*Relay, error) {
	cfg = cfg.withDefaults()
	r := &Relay{cfg: cfg, log: cfg.Logger, conns: map[*conn]struct{}{}}
	var (
		st  store.Store
		bs  blobStore
		err error
	)
	if len(cfg.NATS) > 0 {
		var node *cluster.Node
		if node, r.key, err = joinCluster(cfg); err != nil {
			return nil, fmt.Errorf("relay: %w", err)
		}
		st, r.router, r.rv, bs = node, node, node, clusterBlobs{node}
	} else if st, bs, err = r.openDataDir(); err != nil {
		return nil, err
	}
	if cfg.WrapStore != nil {
		st = cfg.WrapStore(st)
	}
	r.st = st
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.m = newMetrics(st)
	r.pair = newPairings(r)
	r.acks = newAckers(r)
	r.prekeyRate = newTokenBuckets(cfg.Limits.PreKeyFetchBurst, cfg.Limits.PreKeyFetchRate)
	if r.media, err = newMedia(r, bs); err != nil {
		r.cancel()
		st.Close()
		if r.tempDir != "" {
			os.RemoveAll(r.tempDir)
		}
		return nil, fmt.Errorf("relay: %w", err)
	}
	r.handler = r.routes()
	r.log.Info("relay ready", "data_dir", cfg.DataDir, "temp", r.tempDir != "", "nats", cfg.NATS)
	return r, nil
}

// openDataDir opens the single-process relay's state in cfg.DataDir (or a
// new temporary directory): its key, its bbolt store and its media blobs,
// with the in-process router.
func (r *Relay) openDataDir() (store.Store, blobStore, error) {
	cfg := r.cfg
	dir := cfg.DataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "linksim-relay-")
		if err != nil {
			return nil, nil, fmt.Errorf("relay: %w", err)
		}
		dir, r.tempDir = d, d
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("relay: data dir: %w", err)
	}
	fail := func(err error) (store.Store, blobStore, error) {
		if r.tempDir != "" {
			os.RemoveAll(r.tempDir)
		}
		return nil, nil, fmt.Errorf("relay: %w", err)
	}
	key, err := loadOrCreateKey(filepath.Join(dir, "relay.key"))
	if err != nil {
		return fail(err)
	}
	st, err := store.OpenBolt(filepath.Join(dir, "relay.db"), store.Options{
		NoSync: cfg.NoSync, MaxQueuedBytes: cfg.Limits.MaxQueuedBytes,
		DedupWindow: cfg.Limits.DedupWindow, DedupAge: cfg.Limits.DedupAge,
	})
	if err != nil {
		return fail(err)
	}
	bs, err := openBlobs(dir, cfg.NoSync)
	if err != nil {
		st.Close()
		return fail(err)
	}
	local := route.NewLocal()
	r.key, r.router, r.rv = key, local, local
	return st, bs, nil
}

// Key returns the relay's public Noise static key, which devices pin.
func (r *Relay) Key() []byte { return append([]byte(nil), r.key.Public...) }

// Handler serves /ws, /media/, /healthz, /metrics, /relay.json and the web app at /,
// each request within its Limits deadline. The connection caps and header
// and keep-alive timeouts are the listener's and http.Server's: Serve has them.
func (r *Relay) Handler() http.Handler { return r.handler }

// Close closes every connection (telling each peer why), waits for them to
// end, then closes the store and removes a temporary data dir. Connections
// that do not finish their close handshake within a few seconds are dropped.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	conns := make([]*conn, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	r.mu.Unlock()

	for _, c := range conns {
		c.shutdown("relay closing", nil)
	}
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		r.cancel() // aborts reads, writes and close handshakes
		<-done
	}
	r.cancel()
	r.acks.wg.Wait() // acks read before the end still get deleted
	r.media.close()
	err := r.st.Close()
	if r.tempDir != "" {
		err = errors.Join(err, os.RemoveAll(r.tempDir))
	}
	r.log.Info("relay closed")
	return err
}

// track registers a connection being served; it fails once Close began.
func (r *Relay) track(c *conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conns[c] = struct{}{}
	r.wg.Add(1)
	return true
}

func (r *Relay) untrack(c *conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	r.wg.Done()
}

func (r *Relay) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

func nowMs() int64 { return time.Now().UnixMilli() }
