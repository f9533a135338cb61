package phone_test

import (
	"context"
	"errors"
	"fmt"
	"image"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/linksim/linksim/phone"
	"github.com/linksim/linksim/phone/camera"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/relay"
	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

type env struct {
	t   *testing.T
	ctx context.Context
	srv *relay.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, relay.Config{})
}

// newEnvWith runs the relay with cfg, in a fresh data directory.
func newEnvWith(t *testing.T, cfg relay.Config) *env {
	t.Helper()
	cfg.DataDir, cfg.NoSync = t.TempDir(), true
	srv, err := relay.Serve(cfg, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return &env{t: t, ctx: ctx, srv: srv}
}

func (e *env) config(name string, st kv.KV) device.Config {
	return device.Config{Name: name, RelayURL: e.srv.WSURL(), RelayKey: e.srv.Key(), State: st, MediaDir: e.t.TempDir()}
}

func (e *env) register(name, user string, st kv.KV) *phone.Phone {
	e.t.Helper()
	p, err := phone.Register(e.ctx, e.config(name, st), user, name)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { p.Close() })
	return p
}

// companion is a companion waiting to be scanned: its first QR payload,
// and the linked device once a phone scans it.
type companion struct {
	qr     string
	linked chan *device.Device
	err    chan error
}

func (e *env) companion(name string, st kv.KV) *companion {
	e.t.Helper()
	return e.companionWith(e.config(name, st))
}

// companionWith is companion with its whole Config.
func (e *env) companionWith(cfg device.Config) *companion {
	e.t.Helper()
	c := &companion{linked: make(chan *device.Device, 1), err: make(chan error, 1)}
	refs := make(chan string, 10)
	go func() {
		d, err := device.Pair(e.ctx, cfg, func(r device.Ref) { refs <- r.QR })
		if err != nil {
			c.err <- err
			return
		}
		e.t.Cleanup(func() { d.Close() })
		c.linked <- d
	}()
	select {
	case c.qr = <-refs:
	case err := <-c.err:
		e.t.Fatalf("pair %s: %v", cfg.Name, err)
	case <-e.ctx.Done():
		e.t.Fatalf("%s showed no QR code", cfg.Name)
	}
	return c
}

func (c *companion) device(t *testing.T) *device.Device {
	t.Helper()
	select {
	case d := <-c.linked:
		return d
	case err := <-c.err:
		t.Fatalf("pairing failed: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the companion was not linked within 10s of the scan")
	}
	return nil
}

// eventually polls cond until it holds, or fails with what was awaited.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 10s waiting for %s", what)
		}
	}
}

func texts(ms []device.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Text)
	}
	return out
}

// Scanning links the companion under the phone's account and hands it the
// chats, messages and contact names the phone has.
func TestScanLinksTheCompanionAndSendsItTheHistory(t *testing.T) {
	e := newEnv(t)
	alice := e.register("alice", "+15550100", nil)
	bob := e.register("bob", "+15550101", nil)
	if err := alice.AddContact(e.ctx, "+15550101", "Bobby"); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"one", "two"} {
		if _, err := alice.SendText(e.ctx, "+15550101", text); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "bob's phone to receive both messages", func() bool { return len(bob.Messages("+15550100")) == 2 })

	web := e.companion("alice/web-1", nil)
	id, err := alice.Scan(e.ctx, web.qr)
	if err != nil {
		t.Fatal(err)
	}
	d := web.device(t)
	if d.Self().User != "+15550100" || d.Self().Device != id || id == 0 {
		t.Fatalf("the companion is %v, the phone linked device %d of +15550100", d.Self(), id)
	}
	// The scan carried the history: it is there as the companion links.
	if got := texts(d.Messages("+15550101")); !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("the linked companion shows %q, the phone [one two]", got)
	}
	if name := d.Contacts()["+15550101"]; name != "Bobby" {
		t.Errorf("the companion names +15550101 %q, the phone's contacts say Bobby", name)
	}
	if linked, err := alice.LinkedDevices(e.ctx); err != nil || !slices.Equal(linked, []uint32{id}) {
		t.Errorf("LinkedDevices = %v, %v; want [%d]", linked, err, id)
	}
}

// The relay refuses a device id it has seen, so the phone never hands one
// out twice: not after an unlink, not after the phone restarts.
func TestCompanionIDsAreNeverReused(t *testing.T) {
	e := newEnv(t)
	st := kv.NewMem()
	alice := e.register("alice", "+15550200", st)
	link := func(p *phone.Phone, name string) uint32 {
		t.Helper()
		c := e.companion(name, nil)
		id, err := p.Scan(e.ctx, c.qr)
		if err != nil {
			t.Fatal(err)
		}
		c.device(t)
		return id
	}
	first := link(alice, "web-1")
	if err := alice.Unlink(e.ctx, first); err != nil {
		t.Fatal(err)
	}
	second := link(alice, "web-2")
	alice.Close()
	reopened, err := phone.Open(e.ctx, e.config("alice", st))
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	third := link(reopened, "web-3")
	if !(first < second && second < third) {
		t.Errorf("companion ids %d, %d, %d: want each new one above every earlier one", first, second, third)
	}
	if linked, err := reopened.LinkedDevices(e.ctx); err != nil || !slices.Equal(linked, []uint32{second, third}) {
		t.Errorf("LinkedDevices = %v, %v; want [%d %d]", linked, err, second, third)
	}
	if err := reopened.UnlinkAll(e.ctx); err != nil {
		t.Fatal(err)
	}
	if linked, err := reopened.LinkedDevices(e.ctx); err != nil || len(linked) != 0 {
		t.Errorf("after UnlinkAll: %v, %v", linked, err)
	}
}

// The history goes once: the phone sends no message with it after a scan
// that carried it. One too large for a scan goes as a message (through the
// media store), also once.
func TestScanHandsOverTheHistoryOnce(t *testing.T) {
	for _, size := range []int{10, 1000} {
		e := newEnv(t)
		alice := e.register("alice", "+15550100", nil)
		bob := e.register("bob", "+15550101", nil)
		var want []string
		for i := range 70 {
			want = append(want, fmt.Sprintf("%03d %s", i, strings.Repeat("x", size)))
			if _, err := alice.SendText(e.ctx, "+15550101", want[i]); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, "bob's phone to receive every message", func() bool { return len(bob.Messages("+15550100")) == len(want) })

		var shown, messages atomic.Int32
		cfg := e.config("alice/web-1", nil)
		cfg.Events = func(ev device.Event) {
			if ev.Kind == device.HistoryShown {
				shown.Add(1)
			}
		}
		cfg.Mark = func(step string) {
			if step == "history.decrypted" { // a history message came
				messages.Add(1)
			}
		}
		web := e.companionWith(cfg)
		if _, err := alice.Scan(e.ctx, web.qr); err != nil {
			t.Fatal(err)
		}
		d := web.device(t)
		// The companion's own copy of a later message comes after any
		// history message the scan sent.
		if _, err := alice.SendText(e.ctx, "+15550101", "later"); err != nil {
			t.Fatal(err)
		}
		want = append(want, "later")
		eventually(t, "the history and the later message on the companion", func() bool {
			return slices.Equal(texts(d.Messages("+15550101")), want)
		})
		wantMessages := int32(0)
		if size == 1000 {
			wantMessages = 1 // 70 KiB of history: too large for the scan
		}
		if shown.Load() != 1 || messages.Load() != wantMessages {
			t.Errorf("%d-byte messages: the history was shown %d times, %d of them from a message; want once, %d", size, shown.Load(), messages.Load(), wantMessages)
		}
	}
}

// hookStore runs hooks as the relay stores a companion: before once, as it
// is about to, and after each time it has.
type hookStore struct {
	store.Store
	before, after atomic.Pointer[func()]
}

func (s *hookStore) AddCompanion(d store.Device, prekeys []*pb.PreKey, maxCompanions int) error {
	if f := s.before.Swap(nil); f != nil {
		(*f)()
	}
	err := s.Store.AddCompanion(d, prekeys, maxCompanions)
	if f := s.after.Load(); f != nil && err == nil {
		(*f)()
	}
	return err
}

// newHookedEnv is newEnv with the relay's store wrapped in the hookStore
// it returns.
func newHookedEnv(t *testing.T) (*env, *hookStore) {
	t.Helper()
	hooks := &hookStore{}
	e := newEnvWith(t, relay.Config{WrapStore: func(st store.Store) store.Store {
		hooks.Store = st
		return hooks
	}})
	return e, hooks
}

// A message that reaches the phone after it sealed the scan's history,
// and before the companion is linked, is in neither that history nor the
// companion's deliveries: the phone sends the history again, and the
// companion shows each message once.
func TestScanSendsWhatArrivedWhileLinking(t *testing.T) {
	e, hooks := newHookedEnv(t)
	alice := e.register("alice", "+15550500", nil)
	bob := e.register("bob", "+15550501", nil)
	if _, err := bob.SendText(e.ctx, "+15550500", "before"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "alice's phone to receive the first message", func() bool { return len(alice.Messages("+15550501")) == 1 })
	late := func() {
		if _, err := bob.SendText(e.ctx, "+15550500", "while linking"); err != nil {
			t.Error(err)
			return
		}
		for len(alice.Messages("+15550501")) < 2 && e.ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
	}
	hooks.before.Store(&late)
	web := e.companion("alice/web-1", nil)
	if _, err := alice.Scan(e.ctx, web.qr); err != nil {
		t.Fatal(err)
	}
	d := web.device(t)
	eventually(t, "both messages on the companion", func() bool {
		return slices.Equal(texts(d.Messages("+15550501")), []string{"before", "while linking"})
	})
}

// A scan whose link drops after the relay linked the companion, before the
// answer came, has linked it: the device list shows the id the phone chose,
// where scanning the same ref again would be refused.
func TestScanCutOffBeforeItsAnswerLinks(t *testing.T) {
	e, hooks := newHookedEnv(t)
	alice := e.register("alice", "+15550300", nil)
	cutOff := func() { alice.Disconnect() } // right after the relay's store linked the companion
	hooks.after.Store(&cutOff)
	web := e.companion("alice/web-1", nil)
	id, err := alice.Scan(e.ctx, web.qr)
	if err != nil {
		t.Fatalf("scan cut off after the link: %v", err)
	}
	if d := web.device(t); d.Self().Device != id {
		t.Fatalf("the phone says it linked device %d, the companion is %v", id, d.Self())
	}
	hooks.after.Store(nil)
	if linked, err := alice.LinkedDevices(e.ctx); err != nil || !slices.Equal(linked, []uint32{id}) {
		t.Errorf("LinkedDevices = %v, %v; want [%d]", linked, err, id)
	}
}

// A scan whose link drops while the companion is still finishing, asked
// again once the phone is back, is refused (REF_USED: the ref is taken)
// though it is about to link: the phone waits for the device list to show
// the id it chose.
func TestScanCutOffWhileTheCompanionFinishesLinks(t *testing.T) {
	e, hooks := newHookedEnv(t)
	alice := e.register("alice", "+15550310", nil)
	finishing := func() {
		alice.Disconnect()
		// The phone reconnects, finds no companion listed and scans again
		// meanwhile.
		time.Sleep(time.Second)
	}
	hooks.before.Store(&finishing)
	web := e.companion("alice/web-1", nil)
	id, err := alice.Scan(e.ctx, web.qr)
	if err != nil {
		t.Fatalf("scan cut off while the companion finished: %v", err)
	}
	if d := web.device(t); d.Self().Device != id {
		t.Fatalf("the phone says it linked device %d, the companion is %v", id, d.Self())
	}
}

// The phone can read the QR code from a picture of the companion's screen.
func TestScanImageReadsTheCodeThroughTheCamera(t *testing.T) {
	e := newEnv(t)
	alice := e.register("alice", "+15550300", nil)
	web := e.companion("web", nil)
	q, err := qrcode.New(web.qr, qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.ScanImage(e.ctx, q.Image(400), camera.Camera{}); err != nil {
		t.Fatal(err)
	}
	web.device(t)

	_, err = alice.ScanImage(e.ctx, image.NewGray(image.Rect(0, 0, 200, 200)), camera.Camera{})
	if !errors.Is(err, camera.ErrNoQR) || !strings.HasPrefix(err.Error(), "alice: scan image:") {
		t.Errorf("a blank picture: %v, want the phone's ErrNoQR", err)
	}
}

func TestScanRefusesAPayloadThatIsNoQRCode(t *testing.T) {
	e := newEnv(t)
	alice := e.register("alice", "+15550400", nil)
	if _, err := alice.Scan(e.ctx, "not,a,qr"); err == nil || !strings.HasPrefix(err.Error(), "alice: scan:") {
		t.Errorf("Scan of a malformed payload: %v, want an error naming the phone", err)
	}
	if linked, _ := alice.LinkedDevices(e.ctx); len(linked) != 0 {
		t.Errorf("a malformed scan linked %v", linked)
	}
}

// A companion's state does not open as a phone.
func TestOpenRefusesACompanionsState(t *testing.T) {
	e := newEnv(t)
	alice := e.register("alice", "+15550500", nil)
	st := kv.NewMem()
	web := e.companion("web", st)
	if _, err := alice.Scan(e.ctx, web.qr); err != nil {
		t.Fatal(err)
	}
	web.device(t).Close()
	if p, err := phone.Open(e.ctx, e.config("web", st)); err == nil || !strings.Contains(err.Error(), "not a phone") {
		if p != nil {
			p.Close()
		}
		t.Errorf("phone.Open of a companion's state: %v, want a refusal", err)
	}
}
