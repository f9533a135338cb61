// Package cluster runs relay nodes on NATS with JetStream: a Node is the
// relay's store (store.Store) and its router (route.Router and
// route.Rendezvous) for one stateless relay process, all of whose state
// lives in JetStream, so that several nodes on one NATS cluster are one
// relay and any of them may die.
//
// Layout, with u the user name in unpadded URL-safe base64 and d a device id:
//
//	stream LINKSIM_QUEUES   subjects linksim.q.<u>.<d>: each device's queue,
//	                        the stream sequence being the delivery's seq;
//	                        with a cap, each item counts the queue's bytes
//	                        (qbytes.go)
//	kv linksim_accounts     <u> -> JSON account and its device ids
//	kv linksim_devices      <u>.<d> -> JSON device
//	kv linksim_keys         hex Noise key -> JSON address (and removed flag)
//	kv linksim_prekeys      <u>.<d> -> JSON one-time prekeys, by id
//	kv linksim_sent         <u>.<d>.<message id> -> unix ms of the ack
//	kv linksim_refs         pairing ref -> the node hosting it
//	kv linksim_config       shared settings such as the relay's Noise key
//	objects linksim_media   media blobs by hex SHA-256
//	subjects linksim.user.<u> (device events) and linksim.pair.<node> (scans)
package cluster

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/linksim/linksim/sim/store"
)

// Config says which NATS cluster a Node uses and how.
type Config struct {
	// URLs are NATS servers of one cluster, nats://host:port.
	URLs []string
	// Replicas is how many servers keep each stream and bucket. Default 1.
	Replicas int
	// DedupAge is how long a sender's message id is remembered (the
	// store's dedup window). Default 7 days.
	DedupAge time.Duration
	// MaxQueuedBytes caps the bytes waiting in one device's queue: an
	// Enqueue that would pass it fails with store.ErrQueueFull. 0: no cap
	// (and no compare-and-set on each queue's last item). The nodes of a
	// cluster must agree on it.
	MaxQueuedBytes int64
	// Timeout bounds each request to NATS. Default 10s.
	Timeout time.Duration
	// StartTimeout is how long Open waits for NATS to answer and for
	// JetStream to take the streams and buckets: servers starting with the
	// node, a first meta leader election. Default 30s.
	StartTimeout time.Duration
	// Name names the node in NATS and in logs. Default: a random id.
	Name string
	// Logger receives the node's logs; nil discards them.
	Logger *slog.Logger
}

// refTTL is how long a pairing ref's host is remembered: as long as the
// relay remembers a ref (an hour), and a little more.
const refTTL = 65 * time.Minute

// Node is one relay node's view of the cluster. It is safe for concurrent
// use.
type Node struct {
	cfg  Config
	id   string
	log  *slog.Logger
	nc   *nats.Conn
	js   jetstream.JetStream
	q    jetstream.Stream
	kv   buckets
	obs  jetstream.ObjectStore // media blobs
	read readItems

	keyLocks [keyLockCount]sync.Mutex
	written  recent[cachedRev]
	accounts accountCache
	// accountWatch is the watch followAccounts reads (tests end it).
	accountWatch atomic.Pointer[jetstream.KeyWatcher]
	tails        recent[lastAppend] // the node's last append to each queue (qbytes.go)
	subs         *router
	stop         context.CancelFunc // ends the node's watches
}

type buckets struct {
	accounts, devices, keys, prekeys, sent, refs, config jetstream.KeyValue
}

var _ store.Store = (*Node)(nil)

// Open connects to NATS and creates the streams and buckets the cluster
// needs (or checks those another node created).
func Open(cfg Config) (*Node, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("cluster: no NATS URL")
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.DedupAge <= 0 {
		cfg.DedupAge = 7 * 24 * time.Hour
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	n := &Node{id: nuid.Next(), log: cfg.Logger}
	if cfg.Name == "" {
		cfg.Name = "relay-" + n.id
	}
	n.cfg = cfg
	n.subs = newRouter(n)
	if n.log == nil {
		n.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log := n.log
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","),
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(true), // setup waits, up to StartTimeout

		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("NATS disconnected", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("NATS reconnected", "server", c.ConnectedUrl())
			n.accounts.forgetAll()
			n.subs.pokeAll()
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to %s: %w", strings.Join(cfg.URLs, ","), err)
	}
	n.nc = nc
	if err := n.setup(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	var watching context.Context
	watching, n.stop = context.WithCancel(context.Background())
	if err := n.watchAccounts(watching); err != nil {
		n.stop()
		nc.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if err := n.subs.start(); err != nil {
		n.stop()
		n.subs.close()
		nc.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return n, nil
}

func (n *Node) setup() error {
	js, err := jetstream.New(n.nc)
	if err != nil {
		return err
	}
	n.js = js
	// Anything may fail while the servers start: try until StartTimeout,
	// then report the last error (say, too few servers for the replicas).
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.StartTimeout)
	defer cancel()
	err = retryAll(ctx, func(ctx context.Context) (err error) {
		n.q, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:     "LINKSIM_QUEUES",
			Subjects: []string{"linksim.q.>"},
			Storage:  jetstream.FileStorage,
			Replicas: n.cfg.Replicas,
			// Publishes carry a message id per target, so that a send
			// whose ack was lost, resent within this window, is
			// enqueued once.
			Duplicates: 10 * time.Minute,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("queue stream: %w", err)
	}
	bucket := func(name string, ttl time.Duration) (kv jetstream.KeyValue, err error) {
		err = retryAll(ctx, func(ctx context.Context) error {
			_, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
				Bucket: name, TTL: ttl, Storage: jetstream.FileStorage, Replicas: n.cfg.Replicas,
			})
			if err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
				return err
			}
			if err := readFromLeader(ctx, js, "KV_"+name); err != nil {
				return err
			}
			kv, err = js.KeyValue(ctx, name)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("bucket %s: %w", name, err)
		}
		return kv, nil
	}
	for _, b := range []struct {
		kv   *jetstream.KeyValue
		name string
		ttl  time.Duration
	}{
		{&n.kv.accounts, "linksim_accounts", 0},
		{&n.kv.devices, "linksim_devices", 0},
		{&n.kv.keys, "linksim_keys", 0},
		{&n.kv.prekeys, "linksim_prekeys", 0},
		{&n.kv.sent, "linksim_sent", n.cfg.DedupAge},
		{&n.kv.refs, "linksim_refs", refTTL},
		{&n.kv.config, "linksim_config", 0},
	} {
		if *b.kv, err = bucket(b.name, b.ttl); err != nil {
			return err
		}
	}
	err = retryAll(ctx, func(ctx context.Context) (err error) {
		_, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket: "linksim_media", Storage: jetstream.FileStorage, Replicas: n.cfg.Replicas,
		})
		if err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
			return err
		}
		if err := readFromLeader(ctx, js, "OBJ_linksim_media"); err != nil {
			return err
		}
		n.obs, err = js.ObjectStore(ctx, "linksim_media")
		return err
	})
	if err != nil {
		return fmt.Errorf("media store: %w", err)
	}
	return nil
}

// readFromLeader turns off direct gets on a bucket's stream, which nats.go
// turns on: any replica answers a direct get, a follower possibly before it
// has what the leader just acked, and the relay reads what it just wrote
// (an account right after creating it). Reads then go to the stream's
// leader. A bucket is bound after this, so its reads follow the setting;
// the buckets are only ever created, never updated by a node's start,
// which would turn direct gets on again (so the first node's settings,
// such as the dedup age, stay).
func readFromLeader(ctx context.Context, js jetstream.JetStream, stream string) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	cfg := s.CachedInfo().Config
	if !cfg.AllowDirect {
		return nil
	}
	cfg.AllowDirect = false
	_, err = js.UpdateStream(ctx, cfg)
	return err
}

// Close stops routing to this node and closes its NATS connection; the
// state stays in JetStream.
func (n *Node) Close() error {
	n.stop()
	n.subs.close()
	// The server answers a flush only after the unsubscribes before it, so
	// a scan sent after Close hears "no responders" at once instead of
	// going to a connection the server has not yet seen close.
	n.nc.FlushTimeout(time.Second)
	n.nc.Close()
	return nil
}

// ID is the node's id, unique in the cluster.
func (n *Node) ID() string { return n.id }

func (n *Node) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), n.cfg.Timeout)
}

// enc makes a user name a subject token and key part: NATS forbids dots,
// wildcards and spaces there.
func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func devKey(a store.Address) string {
	return enc(a.User) + "." + strconv.FormatUint(uint64(a.Device), 10)
}

func queueSubject(a store.Address) string { return "linksim.q." + devKey(a) }

// getJSON reads key into v and returns its revision; store.ErrNotFound
// when there is none.
func getJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) (uint64, error) {
	e, err := get(ctx, kv, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, store.ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return 0, fmt.Errorf("corrupt %s %s: %w", kv.Bucket(), key, err)
	}
	return e.Revision(), nil
}

func putJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return put(ctx, kv, key, b)
}

// get reads key, trying again while NATS fails over.
func get(ctx context.Context, kv jetstream.KeyValue, key string) (e jetstream.KeyValueEntry, err error) {
	err = retry(ctx, func(ctx context.Context) error {
		e, err = kv.Get(ctx, key)
		return err
	})
	return e, err
}

// put writes key, trying again while NATS fails over.
func put(ctx context.Context, kv jetstream.KeyValue, key string, value []byte) error {
	return retry(ctx, func(ctx context.Context) error {
		_, err := kv.Put(ctx, key, value)
		return err
	})
}

// purge deletes key, trying again while NATS fails over.
func purge(ctx context.Context, kv jetstream.KeyValue, key string) error {
	return retry(ctx, func(ctx context.Context) error { return kv.Purge(ctx, key) })
}

// keyLock serializes the node's updates of a key: compare-and-set alone
// would have many goroutines updating a hot key retry each other into the
// ground; between nodes, the compare-and-set still decides.
func (n *Node) keyLock(bucket, key string) *sync.Mutex {
	return &n.keyLocks[keyLockIndex(bucket, key)]
}

const keyLockCount = 256

func keyLockIndex(bucket, key string) int {
	h := fnv.New32a()
	h.Write([]byte(bucket))
	h.Write([]byte(key))
	return int(h.Sum32() % keyLockCount)
}

// update changes the JSON value under key with fn, compare-and-set: it
// reads, applies fn and writes only if nobody wrote meanwhile, else tries
// again. A missing key is store.ErrNotFound unless create is set, when fn
// gets a zero value to fill. fn's error aborts the update.
func update[T any](ctx context.Context, n *Node, kv jetstream.KeyValue, key string, create bool, fn func(*T) error) error {
	mu := n.keyLock(kv.Bucket(), key)
	mu.Lock()
	defer mu.Unlock()
	ck := kv.Bucket() + "\x00" + key
	lastWritten := &n.written
	for {
		var v T
		var rev uint64
		var err error
		if c, ok := lastWritten.get(ck); ok {
			rev, err = c.rev, json.Unmarshal(c.raw, &v)
		} else {
			rev, err = getJSON(ctx, kv, key, &v)
		}
		if err != nil && !(create && errors.Is(err, store.ErrNotFound)) {
			return err
		}
		if err := fn(&v); err != nil {
			return err
		}
		b, err := json.Marshal(&v)
		if err != nil {
			return err
		}
		newRev, err := write(ctx, kv, key, b, rev)
		lastWritten.forget(ck)
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		if err == nil {
			lastWritten.put(ck, cachedRev{b, newRev})
		}
		return err
	}
}

// write stores b under key if the key is still at revision rev (0: has
// no value), trying again while NATS fails over, and returns the new
// revision. A try that got no answer may have written all the same (its
// server died after storing it): before the next try, write reads the key
// and takes b there at another revision for its own write; a key still at
// rev was not written, and anything else is someone else's write
// (jetstream.ErrKeyRevisionMismatch). The read cannot tell every case
// apart: another node writing the very same bytes from rev meanwhile would
// pass for this write, and this write landing and then being overwritten
// by another node reads as someone else's write, so update applies its
// change again. Counts are then off by one item, as when a node dies
// between its count and its publish.
func write(ctx context.Context, kv jetstream.KeyValue, key string, b []byte, rev uint64) (newRev uint64, err error) {
	tried := false
	err = retry(ctx, func(ctx context.Context) (err error) {
		if tried {
			e, err := kv.Get(ctx, key)
			switch {
			case err == nil && e.Revision() != rev && bytes.Equal(e.Value(), b):
				newRev = e.Revision()
				return nil
			case err == nil && e.Revision() != rev, errors.Is(err, jetstream.ErrKeyNotFound) && rev != 0:
				return jetstream.ErrKeyRevisionMismatch
			case err != nil && !errors.Is(err, jetstream.ErrKeyNotFound):
				return err
			}
		}
		tried = true
		if rev == 0 {
			newRev, err = kv.Create(ctx, key, b)
		} else {
			newRev, err = kv.Update(ctx, key, b, rev)
		}
		return err
	})
	return newRev, err
}

// Node.written remembers the value and revision a node last wrote with
// update, so that its next update of the key writes without reading first.
// It never makes an update wrong: a value someone else changed since has
// another revision in the same bucket, the write fails, and update reads
// afresh. (Revisions of another cluster's bucket mean nothing here, which
// is why the cache is the node's.)
const maxCachedRevs = 100_000

type cachedRev struct {
	raw []byte
	rev uint64
}

// recent is a map behind a mutex that a node keeps of what it wrote or
// read lately; past maxCachedRevs keys it starts afresh, so it stays
// bounded without bookkeeping: a key it lost costs one read.
type recent[V any] struct {
	mu sync.Mutex
	m  map[string]V
}

func (c *recent[V]) get(k string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *recent[V]) put(k string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedRevs {
		c.m = map[string]V{}
	}
	c.m[k] = v
}

func (c *recent[V]) forget(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
}

// Shared returns the cluster-wide value called name, which the first node
// to ask makes with gen: every node of a relay gets the same one.
func (n *Node) Shared(name string, gen func() ([]byte, error)) ([]byte, error) {
	ctx, cancel := n.ctx()
	defer cancel()
	e, err := get(ctx, n.kv.config, name)
	if err == nil {
		return e.Value(), nil
	}
	if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("cluster: shared %s: %w", name, err)
	}
	v, err := gen()
	if err != nil {
		return nil, fmt.Errorf("cluster: shared %s: %w", name, err)
	}
	if _, err = n.kv.config.Create(ctx, name, v); errors.Is(err, jetstream.ErrKeyExists) {
		return n.Shared(name, gen) // another node made it first
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: shared %s: %w", name, err)
	}
	return v, nil
}

// ConnectedURL is the NATS server the node is connected to now.
func (n *Node) ConnectedURL() string { return n.nc.ConnectedUrl() }
