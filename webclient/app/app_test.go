package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/linksim/linksim/phone"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/relay"
	"github.com/linksim/linksim/webclient/app"
)

// env is a relay on loopback and the device settings to reach it.
type env struct {
	t   *testing.T
	srv *relay.Server
}

func newEnv(t *testing.T, cfg relay.Config) *env {
	t.Helper()
	cfg.DataDir, cfg.NoSync = t.TempDir(), true
	srv, err := relay.Serve(cfg, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &env{t: t, srv: srv}
}

func (e *env) device(name string, st kv.KV) device.Config {
	return device.Config{Name: name, RelayURL: e.srv.WSURL(), RelayKey: e.srv.Key(), State: st, MediaDir: e.t.TempDir(),
		BackoffBase: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond}
}

func (e *env) phone(ctx context.Context, name, user string) *phone.Phone {
	e.t.Helper()
	p, err := phone.Register(ctx, e.device(name+"/phone", nil), user, name)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { p.Close() })
	return p
}

// client starts a web client on st and closes it at the end of the test.
func (e *env) client(name string, st kv.KV) *app.Client {
	e.t.Helper()
	c := app.New(app.Config{Device: e.device(name, st)})
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Close)
	return c
}

// await waits for the client to show screen and returns its ref and error.
func await(ctx context.Context, t *testing.T, c *app.Client, want app.Screen, other func(device.Ref) bool) (device.Ref, error) {
	t.Helper()
	for {
		changed := c.Changed()
		screen, ref, err := c.Screen()
		if screen == want && (other == nil || other(ref)) {
			return ref, err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the client shows the %s screen, want %s", screen, want)
		case <-changed:
		}
	}
}

func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A client shows a QR code until the phone scans it, is then linked, and a
// reload on the same state is linked at once, with no QR code.
func TestLinksByQRAndStaysLinkedAcrossAReload(t *testing.T) {
	ctx := timeout(t)
	e := newEnv(t, relay.Config{})
	alice := e.phone(ctx, "alice", "+15550001")
	st := kv.NewMem()
	c := app.New(app.Config{Device: e.device("alice/web-1", st)})
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	ref, _ := await(ctx, t, c, app.ScreenQR, nil)
	if ref.QR == "" || ref.Index != 1 || ref.Count != 6 {
		t.Fatalf("first ref %+v, want the first of 6 with a QR payload", ref)
	}
	id, err := alice.Scan(ctx, ref.QR)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.WaitLinked(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Self().User != "+15550001" || d.Self().Device != id {
		t.Errorf("linked as %v, the phone linked device %d of +15550001", d.Self(), id)
	}
	if screen, ref, _ := c.Screen(); screen != app.ScreenLinked || ref.QR != "" {
		t.Errorf("linked client shows %s with ref %q, want the linked screen and no QR", screen, ref.QR)
	}
	c.Close()

	again := e.client("alice/web-1", st)
	if screen, _, _ := again.Screen(); screen != app.ScreenLinked {
		t.Errorf("a reload on the linked state starts on the %s screen, want linked", screen)
	}
	if d := again.Device(); d == nil || d.Self().Device != id {
		t.Errorf("the reloaded client is device %v, want %d", d, id)
	}
}

// Shown is called with the first ref before the registration keys are made
// (a page draws its first QR code undisturbed), and linking still works.
func TestKeysAreMadeOnceTheFirstRefIsShown(t *testing.T) {
	ctx := timeout(t)
	e := newEnv(t, relay.Config{})
	alice := e.phone(ctx, "alice", "+15550001")
	st := kv.NewMem()
	prekeys := func() int {
		n := 0
		st.Scan(e2e.Prefix+"prekey/", func(string, []byte) error { n++; return nil })
		return n
	}
	shown := make(chan device.Ref, 8)
	c := app.New(app.Config{Device: e.device("alice/web-1", st), Shown: func(r device.Ref) {
		if r.Index == 1 {
			time.Sleep(50 * time.Millisecond) // drawing; nothing else may run
			if n := prekeys(); n > 0 {
				t.Errorf("%d prekeys made while the first QR code was being drawn", n)
			}
		}
		shown <- r
	}})
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	r := <-shown
	if _, err := alice.Scan(ctx, r.QR); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitLinked(ctx); err != nil {
		t.Fatal(err)
	}
	if prekeys() == 0 {
		t.Error("linked without one-time prekeys")
	}
}

// Refs run out unscanned: the client says so, and Reload pairs afresh.
func TestExpiredRefsThenReload(t *testing.T) {
	ctx := timeout(t)
	e := newEnv(t, relay.Config{RefCount: 2, RefFirstTTL: 150 * time.Millisecond, RefNextTTL: 100 * time.Millisecond})
	c := e.client("web", nil)
	first, _ := await(ctx, t, c, app.ScreenQR, nil)
	second, _ := await(ctx, t, c, app.ScreenQR, func(r device.Ref) bool { return r.Index == 2 })
	if first.QR == second.QR {
		t.Errorf("the second ref repeats the first: %q", first.QR)
	}
	_, err := await(ctx, t, c, app.ScreenExpired, nil)
	if !errors.Is(err, device.ErrPairingExpired) {
		t.Errorf("expired screen says %v, want ErrPairingExpired", err)
	}
	c.Reload()
	if ref, _ := await(ctx, t, c, app.ScreenQR, nil); ref.QR == first.QR || ref.QR == second.QR {
		t.Errorf("after Reload the client shows an old ref %q", ref.QR)
	}
}

// A client that logs out, or that the phone removes, wipes its state and
// shows a fresh QR code; the state no longer opens as a linked device.
func TestLogoutAndRemovalWipeAndShowAFreshQR(t *testing.T) {
	ctx := timeout(t)
	e := newEnv(t, relay.Config{})
	alice := e.phone(ctx, "alice", "+15550002")
	link := func(name string, st kv.KV) *app.Client {
		c := e.client(name, st)
		ref, _ := await(ctx, t, c, app.ScreenQR, nil)
		if _, err := alice.Scan(ctx, ref.QR); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitLinked(ctx); err != nil {
			t.Fatal(err)
		}
		return c
	}
	st1, st2 := kv.NewMem(), kv.NewMem()
	web1, web2 := link("web-1", st1), link("web-2", st2)

	// The relay may cut the link before its answer arrives, so Logout can
	// report the logout itself (sim/device races the two); either way the
	// client must end up wiped.
	var loggedOut *device.LoggedOutError
	if err := web1.Logout(ctx); err != nil && !errors.As(err, &loggedOut) {
		t.Fatal(err)
	}
	if ref, _ := await(ctx, t, web1, app.ScreenQR, nil); ref.QR == "" || web1.Device() != nil {
		t.Errorf("after logout: ref %q, device %v; want a fresh QR and no device", ref.QR, web1.Device())
	}
	if _, err := device.Open(ctx, e.device("web-1", st1)); !errors.Is(err, device.ErrNotLinked) {
		t.Errorf("the logged-out state opens with %v, want ErrNotLinked (wiped)", err)
	}

	id := web2.Device().Self().Device
	if err := alice.Unlink(ctx, id); err != nil {
		t.Fatal(err)
	}
	await(ctx, t, web2, app.ScreenQR, nil)
	if err := web2.Logout(ctx); err == nil {
		t.Error("Logout of a removed, unlinked client succeeded")
	}
	if linked, err := alice.LinkedDevices(ctx); err != nil || len(linked) != 0 {
		t.Errorf("the phone still lists companions %v (%v)", linked, err)
	}
}
