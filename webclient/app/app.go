// Package app is the web client's core, shared by the browser app (compiled
// to WebAssembly) and the native companion that load tests run by the
// thousand: it shows pairing refs until the phone links it, then is a linked
// device, and after a logout or removal it wipes itself and pairs afresh.
package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/linksim/linksim/sim/device"
)

// Screen is what the client shows.
type Screen int

const (
	ScreenStarting Screen = iota // deciding, or connecting for refs
	ScreenQR                     // showing the current ref as a QR code
	ScreenExpired                // every ref ran out: "click to reload"
	ScreenLinked                 // the main screen: chats
	ScreenReplaced               // the device was opened elsewhere: "use here"
	ScreenOutdated               // the relay refuses this client's version: "update"
)

func (s Screen) String() string {
	return [...]string{"starting", "qr", "expired", "linked", "replaced", "outdated"}[s]
}

// Config configures a Client.
type Config struct {
	// Device configures the linked device; its State decides whether the
	// client starts linked (a reload) or pairs.
	Device device.Config
	// OnChange, if set, is called after every change of screen, ref or
	// device state, so a UI can redraw. It must not block.
	OnChange func()
	// Shown, if set, is called on the pairing goroutine with each new ref,
	// once OnChange was; a UI returns from it when the ref's QR code is on
	// screen. The registration keys are made only after the first call
	// returns (device.Pair), so in a browser their WebAssembly crypto,
	// which nothing preempts, does not hold off drawing the first code.
	Shown func(device.Ref)
}

// Client is one web client.
type Client struct {
	cfg Config

	mu     sync.Mutex
	screen Screen
	ref    device.Ref
	dev    *device.Device
	err    error // the last pairing error, shown on the expired screen
	// changes is closed and replaced on every change, waking waiters.
	changes chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New makes a client; Start runs it.
func New(cfg Config) *Client {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{cfg: cfg, ctx: ctx, cancel: cancel, changes: make(chan struct{})}
	if c.cfg.OnChange == nil {
		c.cfg.OnChange = func() {}
	}
	return c
}

// Start resumes the linked device kept in state, or starts pairing.
func (c *Client) Start() error {
	d, err := device.Open(c.ctx, c.deviceConfig())
	switch {
	case err == nil:
		c.linked(d)
	case errors.Is(err, device.ErrNotLinked):
		c.pair()
	default:
		return err
	}
	return nil
}

func (c *Client) deviceConfig() device.Config {
	cfg := c.cfg.Device
	events := cfg.Events
	cfg.Events = func(e device.Event) {
		if events != nil {
			events(e)
		}
		c.set(func() {})
	}
	return cfg
}

// Reload starts pairing again after the refs expired.
func (c *Client) Reload() {
	c.mu.Lock()
	expired := c.screen == ScreenExpired
	c.mu.Unlock()
	if expired {
		c.pair()
	}
}

// set applies a change under the lock and tells waiters and the UI.
func (c *Client) set(f func()) {
	c.mu.Lock()
	f()
	close(c.changes)
	c.changes = make(chan struct{})
	c.mu.Unlock()
	c.cfg.OnChange()
}

// Changed returns a channel closed at the next change. Take it before
// looking at the state, so no change slips in between.
func (c *Client) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changes
}

// pair shows refs until the phone links the client. A lost pairing
// connection is retried (with fresh refs); only running out of refs stops it.
func (c *Client) pair() {
	c.set(func() { c.screen, c.ref, c.err = ScreenStarting, device.Ref{}, nil })
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		cfg := c.deviceConfig()
		for attempt := 1; ; attempt++ {
			d, err := device.Pair(c.ctx, cfg, func(r device.Ref) {
				c.set(func() { c.screen, c.ref = ScreenQR, r })
				if c.cfg.Shown != nil {
					c.cfg.Shown(r)
				}
			})
			switch {
			case err == nil:
				c.linked(d)
				return
			case c.ctx.Err() != nil:
				return
			case errors.Is(err, device.ErrPairingExpired):
				c.set(func() { c.screen, c.ref, c.err = ScreenExpired, device.Ref{}, err })
				return
			}
			c.set(func() { c.screen, c.ref, c.err = ScreenStarting, device.Ref{}, err })
			select {
			case <-time.After(retryDelay(attempt)):
			case <-c.ctx.Done():
				return
			}
		}
	}()
}

// retryDelay backs off pairing reconnects: 250 ms doubling to 8 s.
func retryDelay(attempt int) time.Duration {
	return min(250*time.Millisecond<<min(attempt-1, 5), 8*time.Second)
}

// linked shows the main screen and watches for the device being removed.
func (c *Client) linked(d *device.Device) {
	c.set(func() { c.screen, c.dev, c.ref = ScreenLinked, d, device.Ref{} })
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		<-d.Done()
		var lo *device.LoggedOutError
		switch {
		case c.ctx.Err() != nil:
		case errors.As(d.Err(), &lo):
			c.set(func() { c.dev = nil })
			c.pair() // the device wiped itself; a fresh QR code
		case errors.Is(d.Err(), device.ErrReplaced):
			c.set(func() { c.screen, c.dev, c.err = ScreenReplaced, nil, d.Err() })
		case errors.Is(d.Err(), device.ErrOutdated):
			c.set(func() { c.screen, c.dev, c.err = ScreenOutdated, nil, d.Err() })
		}
	}()
}

// UseHere takes the device back after it was opened elsewhere (the
// replaced screen); the other copy is replaced in turn.
func (c *Client) UseHere() error {
	c.mu.Lock()
	replaced := c.screen == ScreenReplaced
	c.mu.Unlock()
	if !replaced {
		return errors.New("use here: the client was not replaced")
	}
	d, err := device.Open(c.ctx, c.deviceConfig())
	if err != nil {
		return fmt.Errorf("use here: %w", err)
	}
	c.linked(d)
	return nil
}

// Screen returns what the client shows, the current ref on the QR screen,
// and on the expired, replaced and outdated screens why.
func (c *Client) Screen() (Screen, device.Ref, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.screen, c.ref, c.err
}

// Device is the linked device, or nil while not linked.
func (c *Client) Device() *device.Device {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dev
}

// WaitLinked blocks until the client is linked.
func (c *Client) WaitLinked(ctx context.Context) (*device.Device, error) {
	return waitFor(ctx, c, func() (*device.Device, bool) {
		d := c.Device()
		return d, d != nil
	})
}

// Logout unlinks this client; it wipes its state and shows a fresh QR code.
func (c *Client) Logout(ctx context.Context) error {
	d := c.Device()
	if d == nil {
		return errors.New("logout: not linked")
	}
	return d.Logout(ctx)
}

// Close stops the client; a linked device's state stays for the next Start.
func (c *Client) Close() {
	c.cancel()
	if d := c.Device(); d != nil {
		d.Close()
	}
	c.wg.Wait()
}

// waitFor polls cond on every change until it holds or ctx ends.
func waitFor[T any](ctx context.Context, c *Client, cond func() (T, bool)) (T, error) {
	for {
		changed := c.Changed()
		if v, ok := cond(); ok {
			return v, nil
		}
		select {
		case <-ctx.Done():
			var zero T
			screen, _, _ := c.Screen()
			return zero, fmt.Errorf("%s: still on the %s screen: %w", c.cfg.Device.Name, screen, ctx.Err())
		case <-changed:
		}
	}
}
