// Package harness starts what a scenario needs, a relay, phones and
// companions, wires them to one recorder, and cleans everything up. Tests,
// the CLI and load runs use it alike: it takes a TB, the part of
// testing.TB it needs, never a *testing.T.
package harness

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linksim/linksim/phone"
	"github.com/linksim/linksim/reports"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/relay"
	"github.com/linksim/linksim/webclient/app"
)

// TB is the part of testing.TB the harness uses; GinkgoT() and *testing.T
// satisfy it, and so does the CLI's runner.
type TB interface {
	Helper()
	Cleanup(func())
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	TempDir() string
}

// Config configures an Env. The zero value runs an embedded relay with
// default settings.
type Config struct {
	// Backend picks the relay: "embedded" (in process), "process",
	// "container", or a ws:// URL of somebody's relay. "" means
	// $LINKSIM_RELAY, or embedded.
	Backend string
	// Relay configures the relay the harness starts; DataDir defaults to a
	// temp dir.
	Relay relay.Config
	// Nodes is how many relay nodes a cluster backend runs; 0 means
	// DefaultNodes. Other backends have one relay.
	Nodes int
	// Logger receives relay and device logs; nil discards them.
	Logger *slog.Logger
	// Events receives every device event; nil drops them.
	Events func(device.Event)
	// Recorder receives the run's events; nil makes one per Env. Runs of
	// several flows share one, so one report covers them all; each Env
	// judges its own messages (Check) on a child of it.
	Recorder *reports.Recorder
	// Faults routes every device's link through its own fault proxy
	// (Env.Net), so scenarios can add latency, cut links, and so on.
	Faults bool
	// KeepAlive, if set, overrides devices' ping interval (faster detection
	// of dead links in fault scenarios).
	KeepAlive time.Duration
	// Device, if set, adjusts every device's config before the device
	// starts: a load runner sets its dialer and prekey count there.
	Device func(*device.Config)
	// Topology is how web clients are linked: MultiDevice ("" too) or
	// Mirror (design.md §8).
	Topology string
	// WebClient, if set, opens the Env's web clients instead of Topology's:
	// a team's own client, on state st (which it keeps across Env.Reopen),
	// linked to phone p unless st holds a link (docs/scenarios.md).
	WebClient func(ctx context.Context, e *Env, name string, st kv.KV, p *phone.Phone) (WebClient, error)
	// PhoneTimeout is how long a mirror web client's ping may go
	// unanswered before it shows "Phone not connected"; 0 means 1 s.
	PhoneTimeout time.Duration
	// BrowserLayout lays out this Env's browser web clients in Chromium:
	// driver.LayoutContext (a browser context per page, isolated) or
	// driver.LayoutTabs (one shared context, cheaper; each page keeps its
	// state in its own database). "" means BrowserConfig.Layout, which
	// defaults to LayoutContext.
	BrowserLayout string
}

func (c Config) nodes() int {
	if c.Nodes > 0 {
		return c.Nodes
	}
	return DefaultNodes
}

// Env is one running system under test.
type Env struct {
	t   TB
	cfg Config
	rec *recorder
	// relayLog is everything the relay logged.
	relayLog lockedBuffer

	backend Backend
	net     *faultNet

	mu        sync.Mutex
	users     map[string]string // phone name -> user (phone number)
	artifacts string            // folder for this Env's failure artifacts, once named
	browsers  *envWeb           // browser state, made on first use (browser_web.go)
}

// Start starts the relay backend cfg names (embedded by default) and returns
// the Env; everything it starts is stopped by t's cleanup. A backend that
// cannot run here (no Docker) fails t in CI and skips it loudly elsewhere.
func Start(t TB, cfg Config) *Env {
	t.Helper()
	if cfg.Relay.DataDir == "" {
		cfg.Relay.DataDir = t.TempDir()
	}
	if cfg.Recorder == nil {
		cfg.Recorder = reports.NewRecorder()
	}
	// The Env records into its own child of the run's recorder, so Check
	// judges this scenario's messages only.
	e := &Env{t: t, cfg: cfg, users: make(map[string]string), rec: newRecorder(cfg.Recorder.Child()), net: newFaultNet()}
	// The relay logs at debug level into RelayLog, so scenarios can check
	// what it wrote, and also to cfg.Logger.
	relayLog := slog.Handler(slog.NewJSONHandler(&e.relayLog, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.Relay.Logger != nil {
		relayLog = slog.NewMultiHandler(relayLog, cfg.Relay.Logger.Handler())
	} else if cfg.Logger != nil {
		relayLog = slog.NewMultiHandler(relayLog, cfg.Logger.Handler())
	}
	e.cfg.Relay.Logger = slog.New(relayLog)
	if e.cfg.Relay.Web == nil {
		e.cfg.Relay.Web = webApp // the browser web client, built on first use (browser.go)
	}
	// A TB with a context (testing.T, GinkgoT, a Session of an
	// interruptible run) stops the relay's start when it ends.
	base := context.Background()
	if c, ok := t.(interface{ Context() context.Context }); ok {
		base = c.Context()
	}
	// What the backend needs built (the linksim binary, the image's
	// context) is made before the start's 3 minutes begin: on a busy
	// machine the build alone outlasted them, and the relay then met an
	// expired context ("relay info: 1 tries in 0s", TestChaos in this
	// session's own tests).
	var b Backend
	err := Prepare(cmp.Or(e.cfg.Backend, BackendFromEnv()))
	if err == nil {
		ctx, cancel := context.WithTimeout(base, 3*time.Minute)
		defer cancel()
		b, err = startBackend(ctx, t, e.cfg, &e.relayLog)
	}
	switch {
	case errors.Is(err, ErrNoDocker) && os.Getenv("CI") != "true":
		t.Skipf("NOT RUN: the %s relay backend needs Docker: %v (start the Docker engine to run this)", e.cfg.Backend, err)
	case errors.Is(err, ErrNoDocker):
		t.Fatalf("harness: the container relay backend needs Docker, which is not running here: %v; start it (service docker start)", err)
	case err != nil:
		t.Fatalf("harness: start relay: %v", err)
	}
	if x, ok := b.(*external); ok && tuned(e.cfg.Relay) {
		t.Skipf("NOT RUN: the scenario needs relay settings (pairing timers, timeouts) the harness cannot apply to the relay at %s", x.URL())
	}
	e.backend = b
	t.Cleanup(func() { b.Close() })
	// Runs before the relay closes: a container's log must still be there.
	t.Cleanup(e.keepRunArtifacts)
	return e
}

// Relay is the running relay backend.
func (e *Env) Relay() Backend { return e.backend }

// RestartRelay stops the relay and starts it again on the same data
// directory and address, as an operator's restart would: devices see their
// links drop and reconnect.
func (e *Env) RestartRelay(ctx context.Context) error {
	e.RequireControl("restart the relay")
	end := e.rec.rec.Fault("relay restart")
	defer end()
	return e.backend.Restart(ctx)
}

// CrashRelay kills the relay (kill -9 for the process and container
// backends) and starts it again.
func (e *Env) CrashRelay(ctx context.Context) error {
	e.RequireControl("crash the relay")
	end := e.rec.rec.Fault("relay crash")
	defer end()
	return e.backend.Crash(ctx)
}

// RequireControl skips the scenario on a relay the harness does not run.
// Scenarios call it first, before they leave messages in flight.
func (e *Env) RequireControl(what string) {
	e.t.Helper()
	if e.backend.DataDir() == "" {
		e.t.Skipf("NOT RUN: cannot %s: the relay at %s is not run by the harness", what, e.backend.URL())
	}
}

// RelayLog returns everything the relay has logged so far.
func (e *Env) RelayLog() []byte {
	if logs := e.backend.Logs(); logs != nil {
		return logs
	}
	return e.relayLog.Bytes()
}

// DataDir is the relay's data directory on this machine; scenarios that
// inspect it skip on a relay the harness does not run.
func (e *Env) DataDir() string {
	e.RequireControl("inspect the relay's store")
	return e.backend.DataDir()
}

// lockedBuffer is a bytes.Buffer safe for the relay's concurrent logging.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// phoneNumbers hands out account numbers. It starts at a random point so
// runs against one long-lived external relay do not collide.
var phoneNumbers = func() *atomic.Int64 {
	var n atomic.Int64
	n.Store(rand.Int64N(9e9) + 5e8)
	return &n
}()

// User returns the phone number of the phone named name, allocating one.
func (e *Env) User(name string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if u, ok := e.users[name]; ok {
		return u
	}
	u := fmt.Sprintf("+1%010d", phoneNumbers.Add(1))
	e.users[name] = u
	return u
}

// DeviceConfig is the configuration a device named name gets in this Env,
// with state in st (nil: in memory).
func (e *Env) DeviceConfig(name string, st kv.KV) device.Config {
	url := "ws" + strings.TrimPrefix(e.backend.URL(), "http") + "/ws"
	if _, ok := e.backend.(*cluster); ok {
		url = "ws://" + e.relayAddr(name) + "/ws"
	}
	if e.cfg.Faults {
		l, err := e.Net(name)
		if err != nil {
			e.t.Fatalf("%v", err)
		}
		url = l.URL()
	}
	cfg := device.Config{
		Name:      name,
		RelayURL:  url,
		RelayKey:  e.backend.Key(),
		State:     st,
		Logger:    e.cfg.Logger,
		Events:    e.events,
		KeepAlive: e.cfg.KeepAlive,
		// Tests reconnect fast: a relay restart should not cost seconds.
		BackoffBase: 20 * time.Millisecond,
		BackoffMax:  500 * time.Millisecond,
	}
	if e.cfg.Device != nil {
		e.cfg.Device(&cfg)
	}
	return cfg
}

// relayAddr is where the device named name reaches the relay, host:port:
// on a cluster, its own front (cluster.go).
func (e *Env) relayAddr(name string) string {
	c, ok := e.backend.(*cluster)
	if !ok {
		return strings.TrimPrefix(e.backend.URL(), "http://")
	}
	f, err := c.front(name)
	if err != nil {
		e.t.Fatalf("%v", err)
	}
	return f.Addr()
}

func (e *Env) events(ev device.Event) {
	e.rec.record(ev)
	if e.cfg.Events != nil {
		e.cfg.Events(ev)
	}
}

// NewPhone registers the user named name with a phone whose state is st
// (nil: in memory) and closes it at cleanup.
func (e *Env) NewPhone(ctx context.Context, name string, st kv.KV) (*phone.Phone, error) {
	p, err := phone.Register(ctx, e.DeviceConfig(name+"/phone", st), e.User(name), name)
	if err != nil {
		return nil, err
	}
	e.rec.learn(p.Self(), p.Name())
	e.t.Cleanup(func() { p.Close() })
	return p, nil
}

// NewCompanion starts a native web client named name (state st, nil: in
// memory) on its QR screen; it is closed at cleanup.
func (e *Env) NewCompanion(name string, st kv.KV) (*app.Client, error) {
	c := app.New(app.Config{Device: e.DeviceConfig(name, st)})
	if err := c.Start(); err != nil {
		return nil, err
	}
	e.t.Cleanup(c.Close)
	return c, nil
}
