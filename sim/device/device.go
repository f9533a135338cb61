// Package device is what every linksim device does, phone or companion: keep a
// connection to the relay (reconnecting with backoff), keep Signal sessions,
// send messages to every device of a recipient and of its own user, receive,
// acknowledge and deduplicate deliveries, send and apply receipts, answer
// retry receipts, keep chats, and send and download encrypted media. Package
// phone and webclient/app build on it.
package device

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/wire"
	"github.com/linksim/linksim/sim/wire/pb"
)

// Config says where the relay is and how the device behaves. Only RelayURL
// and RelayKey are required.
type Config struct {
	// Name labels the device in logs, events and errors, e.g. "alice/web-1".
	Name string
	// RelayURL is the relay's WebSocket URL, ws://host:port/ws.
	RelayURL string
	// RelayKey is the relay's pinned Noise static public key.
	RelayKey []byte
	// State holds everything the device knows; nil keeps it in memory.
	// Reopening a device on the same State resumes it.
	State kv.KV
	// Logger gets connection and protocol events; nil discards them.
	Logger *slog.Logger
	// Events, if set, is called for every observable step (see Event). It is
	// called from the device's goroutines and must not block.
	Events func(Event)
	// Mark, if set, is called as a new device passes each step towards its
	// first pairing ref (keys.noise, keys.identity, relay.dialled,
	// frame.sent, pair.started, pair.ref; Register passes the first four),
	// then from a scan to the history's chats (pair.offer, history.opened
	// if the scan carried the history, pair.finish, pair.linked, online: at
	// every connection, history.decrypted if it came as a message,
	// history.imported), so a page can time its start-up and its pairing.
	// It must not block.
	Mark func(step string)
	// KeepAlive is the ping interval that keeps the link up and finds dead
	// ones; 0 means 20 s.
	KeepAlive time.Duration
	// BackoffBase and BackoffMax bound the delay before a reconnect, a
	// media transfer retry or a request the relay refused with QUEUE_FULL,
	// which doubles per failed attempt, with full jitter; 0 means 250 ms
	// and 10 s.
	BackoffBase, BackoffMax time.Duration
	// CallTimeout bounds one request's round trip; 0 means 10 s.
	CallTimeout time.Duration
	// ResendFor bounds how long a request safe to repeat (a Send, a read)
	// is sent again, with backoff, after the relay answered INTERNAL or
	// nothing within CallTimeout; 0 means 1 minute (see Call).
	ResendFor time.Duration
	// MediaDir is where media being encrypted or decrypted is spooled;
	// "" means the system's temp dir.
	MediaDir string
	// Spool keeps media being uploaded or downloaded (see Spool); nil
	// means DiskSpool{MediaDir}, or MemorySpool{} in a browser.
	Spool Spool
	// Dialer opens the TCP connection to the relay's WebSocket; nil means
	// the default dialer. A load runner sets one per worker process to pick
	// its own loopback source address: one source address reaches one relay
	// port through only ~28,000 ephemeral ports. Media transfers use the
	// shared HTTP client regardless.
	Dialer wire.DialFunc
	// PreKeys is how many one-time prekeys a new device uploads; 0 means
	// 100. The relay asks for more when fewer than 10 are left, so a load
	// fleet can start with a few (each costs key generation and relay
	// storage).
	PreKeys int
	// ClientVersion is the version the device reports in Hello; 0 means
	// ClientVersion, this library's.
	ClientVersion uint32
	// Mirror pairs the device as a mirror companion (docs/protocol.md
	// §19): on no device list, it talks only to its own phone.
	Mirror bool
	// Content, if set, sees every decrypted content from the device's own
	// user first; handled means the device leaves it alone. It runs on the
	// push path: the delivery is acknowledged only after it returns nil, and
	// an error keeps it queued. The mirror channel's two ends are built on it.
	Content func(from e2e.Address, id string, c *pb.Content) (handled bool, err error)
}

// ClientVersion is the client version this library reports to the relay
// (Hello.client_version).
const ClientVersion = 1

// ErrOutdated means the relay refuses this client's version: it stops for
// good, keeping its state, until the client is updated. The error carries
// the relay's message, which says what version is needed.
var ErrOutdated = errors.New("client outdated")

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = "device"
	}
	if c.Mark == nil {
		c.Mark = func(string) {}
	}
	if c.State == nil {
		c.State = kv.NewMem()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Events == nil {
		c.Events = func(Event) {}
	}
	c.KeepAlive = orDefault(c.KeepAlive, 20*time.Second)
	c.BackoffBase = orDefault(c.BackoffBase, 250*time.Millisecond)
	c.BackoffMax = orDefault(c.BackoffMax, 10*time.Second)
	c.CallTimeout = orDefault(c.CallTimeout, 10*time.Second)
	c.ResendFor = orDefault(c.ResendFor, time.Minute)
	if c.ClientVersion == 0 {
		c.ClientVersion = ClientVersion
	}
	if c.PreKeys <= 0 {
		c.PreKeys = defaultPreKeys
	}
	return c
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// ErrNotLinked means State holds no registered or linked device.
var ErrNotLinked = errors.New("no registered or linked device in this state")

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("device closed")

// Device is one registered or linked device, connected to the relay for as
// long as it is open.
type Device struct {
	cfg   Config
	log   *slog.Logger
	key   wire.KeyPair
	self  e2e.Address
	sig   *e2e.Store
	chats *chats
	state *appState // the user's synced state (appstate.go)

	// sendMu keeps one device's sends in order: a stream from one device
	// reaches the relay, and so every recipient, in the order it was sent.
	sendMu sync.Mutex
	// sentMu orders what keepSent keeps for retry receipts.
	sentMu sync.Mutex
	// cryptoMu makes building a session and encrypting or decrypting with it
	// one step, so the receive and send paths never interleave on a session.
	cryptoMu sync.Mutex
	lists    *lists
	inbox    inbox
	// vouchMu makes the phone's changes of its signed device list one at
	// a time, each read from the last; it also guards scanning.
	vouchMu sync.Mutex
	// scanning holds the companions the phone vouches for whose scan is
	// under way: not devices yet, but not gone either.
	scanning map[uint32]bool
	// syncMu makes flushes of our synced state one at a time, so a write
	// is never sent twice or marked sent before the relay has it.
	syncMu sync.Mutex
	calls  calls

	mu      sync.Mutex
	current *link         // nil while offline
	up      chan struct{} // closed when current becomes non-nil
	lastSeq uint64
	err     error // why the device stopped (ErrClosed, ErrReplaced, *LoggedOutError)

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	// background runs the work started off the push path (prekey refills,
	// answers to retry receipts); stopping waits for it, so nothing writes
	// State after Close or after a logout's wipe.
	background sync.WaitGroup
	refilling  atomic.Bool // a prekey refill is under way
}

// Open resumes the device kept in cfg.State and connects it.
func Open(ctx context.Context, cfg Config) (*Device, error) {
	d, err := load(cfg.withDefaults())
	if err != nil {
		return nil, err
	}
	d.start(nil)
	return d, nil
}

// load reads the device's identity from state without connecting.
func load(cfg Config) (*Device, error) {
	st := cfg.State
	raw, ok, err := st.Get(keySelf)
	if err != nil {
		return nil, fmt.Errorf("%s: open: %w", cfg.Name, err)
	}
	if !ok {
		return nil, fmt.Errorf("%s: open: %w", cfg.Name, ErrNotLinked)
	}
	var self pb.Address
	if err := pb.Unmarshal(raw, &self); err != nil {
		return nil, fmt.Errorf("%s: open: corrupt identity: %w", cfg.Name, err)
	}
	key, err := noiseKey(st)
	if err != nil {
		return nil, fmt.Errorf("%s: open: %w", cfg.Name, err)
	}
	sig, err := e2e.Open(st)
	if err != nil {
		return nil, fmt.Errorf("%s: open: %w", cfg.Name, err)
	}
	d := newDevice(cfg, key, sig, e2e.Address{User: self.User, Device: self.Device})
	if d.lastSeq, err = getUint(st, keyLastSeq); err != nil {
		return nil, fmt.Errorf("%s: open: %w", cfg.Name, err)
	}
	if err := d.chats.load(); err != nil {
		return nil, fmt.Errorf("%s: open: %w", cfg.Name, err)
	}
	if err := d.state.load(); err != nil {
		return nil, fmt.Errorf("%s: open: %w", cfg.Name, err)
	}
	return d, nil
}

func newDevice(cfg Config, key wire.KeyPair, sig *e2e.Store, self e2e.Address) *Device {
	ctx, cancel := context.WithCancel(context.Background())
	return &Device{
		cfg:    cfg,
		log:    cfg.Logger.With("device", cfg.Name),
		key:    key,
		self:   self,
		sig:    sig,
		chats:  newChats(cfg.State, self.User),
		state:  newAppState(cfg.State),
		calls:  calls{by: make(map[string]*Call)},
		lists:  newLists(),
		up:     make(chan struct{}),
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
	}
}

// saveSelf records who this device is, which makes the state openable.
func saveSelf(st kv.KV, self e2e.Address) error {
	raw, err := pb.Marshal(&pb.Address{User: self.User, Device: self.Device})
	if err != nil {
		return err
	}
	return st.Put(keySelf, raw)
}

// start runs the connection loop, beginning with l when registration or
// pairing already opened one.
func (d *Device) start(l *link) {
	go d.run(l)
}

// Self is this device's address.
func (d *Device) Self() e2e.Address { return d.self }

// Signal is the device's Signal store: for signing device identities, and
// for simulating lost state in tests.
func (d *Device) Signal() *e2e.Store { return d.sig }

// State is the device's key-value state (Config.State); packages built on
// device keep their own keys in it under their own prefix.
func (d *Device) State() kv.KV { return d.cfg.State }

// Name is the label from Config.
func (d *Device) Name() string { return d.cfg.Name }

// Primary reports whether this is the account's phone.
func (d *Device) Primary() bool { return d.self.Device == 0 }

// Done is closed when the device stops for good: Close, a logout, or
// another connection of it taking over (see Err).
func (d *Device) Done() <-chan struct{} { return d.done }

// Err says why the device stopped: ErrClosed, ErrReplaced, ErrOutdated, or
// a *LoggedOutError.
func (d *Device) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Online reports whether the device has a live, greeted connection.
func (d *Device) Online() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.current != nil
}

// Close disconnects and stops the device; its state stays in Config.State.
func (d *Device) Close() error {
	d.stop(ErrClosed)
	<-d.done
	return nil
}

func (d *Device) stop(err error) {
	d.mu.Lock()
	if d.err == nil {
		d.err = err
	}
	l := d.current
	d.mu.Unlock()
	d.cancel()
	if l != nil {
		l.close()
	}
}

// Disconnect drops the current connection as a network fault would; the
// device reconnects by itself.
func (d *Device) Disconnect() {
	d.mu.Lock()
	l := d.current
	d.mu.Unlock()
	if l != nil {
		l.fail(errors.New("disconnected on request"))
	}
}

// run keeps the device connected until it is closed or logged out.
func (d *Device) run(l *link) {
	defer close(d.done)
	defer d.background.Wait()
	failures := 0
	for d.ctx.Err() == nil {
		if l == nil {
			var err error
			l, err = d.dial()
			if err != nil {
				d.log.Debug("connect failed", "err", err, "attempt", failures+1)
				failures++
				d.sleep(d.backoff(failures))
				continue
			}
		}
		online, err := d.serve(l)
		l.close()
		d.setLink(nil)
		var lo *LoggedOutError
		if errors.As(err, &lo) {
			d.log.Info("logged out", "reason", lo.Reason)
			d.emit(Event{Kind: LoggedOut, Err: err})
			d.stop(err)
			d.background.Wait() // before the wipe: nothing may write after it
			d.wipe()
			return
		}
		if errors.Is(err, ErrReplaced) || errors.Is(err, ErrOutdated) {
			d.log.Info("stopped by the relay", "err", err)
			kind := Replaced
			if errors.Is(err, ErrOutdated) {
				kind = Outdated
			}
			d.emit(Event{Kind: kind, Err: err})
			d.stop(err)
			return
		}
		l = nil
		if errors.Is(err, errRestartRequired) {
			failures = 0
			continue
		}
		// A link that ended before Welcome is one more failure in a row: a
		// relay failing every Hello (its store overloaded) must see its
		// devices back off, not all come back within the first step.
		if online {
			failures = 1
		} else {
			failures++
		}
		d.sleep(d.backoff(failures))
	}
}

func (d *Device) dial() (*link, error) {
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.CallTimeout)
	defer cancel()
	return dial(ctx, d.cfg, d.key)
}

// backoff is a full-jitter delay: uniform in [0, min(max, base*2^n)).
func (d *Device) backoff(failures int) time.Duration {
	ceiling := d.cfg.BackoffBase << min(failures, 20)
	if ceiling <= 0 || ceiling > d.cfg.BackoffMax {
		ceiling = d.cfg.BackoffMax
	}
	n, err := rand.Int(rand.Reader, big.NewInt(int64(ceiling)))
	if err != nil {
		return ceiling
	}
	return time.Duration(n.Int64())
}

func (d *Device) sleep(t time.Duration) {
	select {
	case <-time.After(t):
	case <-d.ctx.Done():
	}
}

// serve greets the relay on l, then processes pushes until l ends; online
// reports whether the relay welcomed the device.
func (d *Device) serve(l *link) (online bool, err error) {
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.CallTimeout)
	ans, err := l.call(ctx, &pb.Frame{Body: &pb.Frame_Hello{Hello: &pb.Hello{ClientVersion: d.cfg.ClientVersion}}})
	cancel()
	if Code(err) == pb.ErrorCode_CLIENT_OUTDATED {
		return false, fmt.Errorf("%w: %w", ErrOutdated, err)
	}
	if err != nil {
		if lerr := l.Err(); lerr != nil {
			return false, lerr
		}
		return false, fmt.Errorf("hello: %w", err)
	}
	w := ans.GetWelcome()
	if w == nil {
		return false, fmt.Errorf("hello: relay answered %T", ans.Body)
	}
	d.log.Debug("online", "queued", w.Queued, "prekeys_left", w.PrekeysLeft)
	d.cfg.Mark("online")
	d.setLink(l)
	d.emit(Event{Kind: Connected})
	defer d.emit(Event{Kind: Disconnected})
	if w.PrekeysLeft < lowPreKeys {
		d.background.Go(func() { d.refillPreKeys(l) })
	}
	go l.keepAlive(d.ctx, d.cfg.KeepAlive)
	d.background.Go(d.flushSyncNow) // what changed while we were offline
	return true, d.consume(l)
}

func (d *Device) setLink(l *link) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if l == nil {
		d.dropLink(d.current)
		return
	}
	d.current = l
	close(d.up)
}

// dropLink marks the device offline if l is its link. d.mu must be held.
func (d *Device) dropLink(l *link) {
	if d.current != l {
		return
	}
	d.current = nil
	if isClosed(d.up) {
		d.up = make(chan struct{})
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// link waits until the device is online and returns the live link.
func (d *Device) link(ctx context.Context) (*link, error) {
	for {
		d.mu.Lock()
		l, err := d.current, d.err
		if l != nil && l.Err() != nil {
			// Ended, and the run loop has not dropped it yet: wait for
			// the next one. A caller handed the ended link would retry at
			// once, without blocking, and under WebAssembly nothing would
			// preempt it to let the run loop go on.
			d.dropLink(l)
			l = nil
		}
		up := d.up
		d.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.cfg.Name, err)
		}
		if l != nil {
			return l, nil
		}
		select {
		case <-up:
		case <-d.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: waiting to be online: %w", d.cfg.Name, ctx.Err())
		}
	}
}

// WaitOnline blocks until the device has a live connection.
func (d *Device) WaitOnline(ctx context.Context) error {
	_, err := d.link(ctx)
	return err
}

// errNoAnswer is a request the relay did not answer within CallTimeout
// while the link stayed up.
var errNoAnswer = errors.New("no answer from the relay")

// errNotSent is a request that never left: the link had ended, or the
// state it rests on could not be saved.
var errNotSent = errors.New("not sent")

// ErrUnanswered is a request the relay may or may not have carried out:
// the link ended after it was sent and before the answer, and it is not
// one to send again blindly (see repeatable).
var ErrUnanswered = errors.New("the link ended before the relay answered")

// callLinked sends one request and returns the relay's answer, waiting for
// the device to be online. When the link drops before the answer, the
// request goes again on the next connection if it never left or is
// repeatable; otherwise the caller gets ErrUnanswered and finds out.
func (d *Device) callLinked(ctx context.Context, f *pb.Frame) (*pb.Frame, error) {
	for {
		l, err := d.link(ctx)
		if err != nil {
			return nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
		ans, err := l.call(cctx, f)
		cancel()
		if err == nil || Code(err) != pb.ErrorCode_ERROR_UNSPECIFIED || ctx.Err() != nil {
			return ans, err
		}
		if l.Err() == nil {
			return nil, fmt.Errorf("%w within %v: %w", errNoAnswer, d.cfg.CallTimeout, err)
		}
		if !errors.Is(err, errNotSent) && !repeatable(f) {
			return nil, fmt.Errorf("%T: %w: %w", f.GetBody(), ErrUnanswered, err)
		}
		d.log.Debug("call interrupted, retrying on the next connection", "err", err)
	}
}

// wipe forgets everything: keys, sessions, chats. A removed device must not
// be usable again.
func (d *Device) wipe() {
	if err := d.cfg.State.DeletePrefix(""); err != nil {
		d.log.Error("wipe state", "err", err)
	}
}
