package harness

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/linksim/linksim/phone"
	"github.com/linksim/linksim/phone/camera"
	"github.com/linksim/linksim/reports"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
	"github.com/linksim/linksim/webclient/driver"
	"github.com/linksim/linksim/webclient/static"
)

// Steps recorded for browser web clients, besides pair.linked and
// pair.chats_shown.
const (
	StepQRVisible = "qr.visible"    // page opened -> QR code drawn
	StepQRDecoded = "qr.decoded"    // QR code drawn -> screenshot taken and decoded
	StepQRToChats = "qr.to_chats"   // QR code drawn -> the history's chats listed: qr.decoded, the scan and pair.chats_shown in one
	StepReopened  = "page.reopened" // a new page opened on a closed or crashed one's profile -> linked screen
)

// qr.decoded's parts, of its last screenshot (screenshots thrown away
// before it count in the first).
const (
	StepQRLook    = "qr.decoded.look"    // drawn -> screenshot asked for: the code seen wholly in view
	StepQRCapture = "qr.decoded.capture" // asked -> the PNG back from Chromium
	StepQRPNG     = "qr.decoded.png"     // PNG -> pixels
	StepQRGozxing = "qr.decoded.gozxing" // pixels -> payload (phone/camera)
)

// Web is a browser web client in an Env: a page of the process's shared
// Chromium running the web app, plus what the harness knows about it (its
// name; once linked, its account and device id).
//
// The device inside the page cannot report events to the harness, so Web
// records in the run's ledger what the page shows: a message it sends, when
// its Send shows it with an id (targets: the relay's device lists at that
// moment); a message it must receive, when Messages or Observe first sees
// it in the open conversation (a media message: when it first shows its
// file verified, with the file's SHA-256, as native devices count their
// first verified download); ticks, as they appear. Latencies of browser
// devices are therefore as observed by polling (every ~20 ms while a flow
// waits; the linked screen and the history's chats are watched instead,
// so pairing steps end within a DevTools round trip of the change), and a
// conversation nobody opens is never observed: flows open every chat whose
// messages they expect on a browser.
type Web struct {
	*driver.Page
	env  *Env
	name string
	// URL is the page's address: the relay's web app, with ?name= and ?ws=.
	URL string

	mu    sync.Mutex
	phone *phone.Phone // the phone that linked it; nil before
	self  e2e.Address
	shown map[string]int    // message id -> copies recorded as shown
	sent  map[string]string // id of a message it sent -> furthest status recorded
	// rejected: id of a media message -> the rejection recorded last
	rejected map[string]string
	rescans  int
}

// envWeb is an Env's browser state: the web app server for relays that do
// not serve the app themselves.
type envWeb struct {
	mu  sync.Mutex
	srv *httptest.Server
}

// web returns the Env's browser state, making it (and its cleanup) on
// first use.
func (e *Env) web() *envWeb {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.browsers == nil {
		w := &envWeb{}
		e.browsers = w
		e.t.Cleanup(func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.srv != nil {
				w.srv.Close()
			}
		})
	}
	return e.browsers
}

// appURL is where the web app for this Env's relay is served: the relay
// itself when the harness runs it in process (Config.Relay.Web), else a
// server of the harness carrying the relay's key.
func (e *Env) appURL(dir string) string {
	if e.backend.Kind() == Embedded {
		return e.backend.URL()
	}
	w := e.web()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.srv == nil {
		w.srv = httptest.NewServer(static.Handler(e.backend.Key(), os.DirFS(dir)))
	}
	return w.srv.URL
}

// Browser opens the web app in a new page of the shared Chromium of
// Config.BrowserLayout (see docs/scenarios.md "Browser layouts"), as the
// device name, and waits until it shows a QR code (recording qr.visible).
// The page talks to the relay through the device's fault path when
// Config.Faults is set. It is closed at cleanup; if the test failed by
// then, its screenshot, DOM and console log are kept first (see
// ArtifactsDir).
func (e *Env) Browser(ctx context.Context, name string) (*Web, error) {
	e.web() // registers its cleanup now, not during cleanup
	dir, err := webAppDir(ctx)
	if err != nil {
		return nil, err
	}
	b, err := sharedBrowser(ctx, e.cfg.BrowserLayout)
	if err != nil {
		return nil, err
	}
	page, err := b.NewPage(ctx)
	if err != nil {
		return nil, fmt.Errorf("harness: %s: %w", name, err)
	}
	e.rec.web(name)
	q := url.Values{"name": {name}, "ws": {e.DeviceConfig(name, nil).RelayURL}}
	if e.Topology() == Mirror {
		q.Set("topology", Mirror)
	}
	w := &Web{Page: page, env: e, name: name, URL: e.appURL(dir) + "/?" + q.Encode(),
		shown: make(map[string]int), sent: make(map[string]string), rejected: make(map[string]string)}
	e.t.Cleanup(func() {
		e.keepArtifacts(w)
		page.Close()
	})
	start := time.Now()
	if err := w.Open(ctx, w.URL); err != nil {
		return nil, err
	}
	if err := w.WaitScreen(ctx, driver.ScreenQR); err != nil {
		return nil, err
	}
	e.rec.rec.Step(StepQRVisible, name, time.Since(start))
	return w, nil
}

// Reopen opens the app again in a new page of w's browser context, on the
// storage the old page left, as a user reopening a tab that crashed
// (driver.Page.Crash) or was closed; from then on w drives the new page.
// It returns once the app shows its main screen, recording how long that
// took as page.reopened.
func (w *Web) Reopen(ctx context.Context) error {
	start := time.Now()
	page, err := w.Page.Reopen(ctx)
	if err != nil {
		return err
	}
	// No cleanup of its own: closing the old page, as the Env's cleanup
	// does after keeping w's artifacts, closes it (it was opened from the
	// old page's context).
	w.Page = page
	if err := w.Open(ctx, w.URL); err != nil {
		return err
	}
	if err := w.WaitScreen(ctx, driver.ScreenLinked); err != nil {
		return fmt.Errorf("harness: %s reopened: %w", w.name, err)
	}
	w.env.rec.rec.Step(StepReopened, w.name, time.Since(start))
	return nil
}

// Name is the device name the web client was opened as.
func (w *Web) Name() string { return w.name }

// Self is the linked device's address (zero before LinkBrowser).
func (w *Web) Self() e2e.Address {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.self
}

// Rescans counts QR codes that expired between the screenshot and the
// phone's scan, so had to be read again.
func (w *Web) Rescans() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rescans
}

// maxScans bounds how often LinkBrowser reads a new QR code after the
// relay said the one it scanned had rotated out.
const maxScans = 3

// LinkBrowser links web client w to p's account as a user would: it
// screenshots the QR code, has the phone scan the picture (phone.ScanImage,
// a perfect camera), and waits until the page shows the main screen and the
// chats from history sync. A ref that rotated out between screenshot and
// scan (REF_EXPIRED) is read again and counted in Rescans; a code the
// phone's camera cannot read is scanned as text (see ScanQR). It records
// qr.decoded, pair.linked (scan -> linked screen), pair.chats_shown
// (scan -> every chat of the phone listed) and qr.to_chats (drawn -> listed)
// and returns the device id.
func (e *Env) LinkBrowser(ctx context.Context, p *phone.Phone, w *Web) (uint32, error) {
	for attempt := 1; ; attempt++ {
		q, err := w.ReadQR(ctx)
		if err != nil {
			return 0, err
		}
		e.rec.rec.Step(StepQRDecoded, w.name, q.Decoded.Sub(q.Visible))
		e.rec.rec.Step(StepQRLook, w.name, q.Asked.Sub(q.Visible))
		e.rec.rec.Step(StepQRCapture, w.name, q.Shot.Sub(q.Asked))
		e.rec.rec.Step(StepQRPNG, w.name, q.Pixels.Sub(q.Shot))
		e.rec.rec.Step(StepQRGozxing, w.name, q.Decoded.Sub(q.Pixels))
		start := time.Now()
		dev, err := ScanQR(ctx, p, q)
		if device.Code(err) == pb.ErrorCode_REF_EXPIRED && attempt < maxScans {
			w.mu.Lock()
			w.rescans++
			w.mu.Unlock()
			e.t.Logf("harness: %s: the QR code rotated out before the scan; reading it again", w.name)
			continue
		}
		if err != nil {
			return 0, err
		}
		w.linked(p, dev)
		if err := w.WaitScreen(ctx, driver.ScreenLinked); err != nil {
			return dev, err
		}
		e.rec.rec.Step(StepLinked, w.name, time.Since(start))
		if e.Topology() == Mirror {
			if err := w.awaitPhone(ctx, "connected"); err != nil {
				return dev, err
			}
			// From its first view on, the page is owed what its phone
			// sends and is sent.
			e.rec.mirrored(p.Self(), w.name)
		}
		if want := len(p.Chats()); want > 0 {
			if err := w.WaitChats(ctx, want); err != nil {
				return dev, fmt.Errorf("harness: %s: the chats from history sync: %w", w.name, err)
			}
			e.rec.rec.Step(StepChatsShown, w.name, time.Since(start))
			e.rec.rec.Step(StepQRToChats, w.name, time.Since(q.Visible))
		}
		return dev, nil
	}
}

// ScanQR has phone p scan the QR code q read off a page: the screenshot,
// through a perfect camera (phone.ScanImage).
func ScanQR(ctx context.Context, p *phone.Phone, q driver.QR) (uint32, error) {
	return p.ScanImage(ctx, q.Image, camera.Camera{})
}

// linked notes that w is now device dev of p's account.
func (w *Web) linked(p *phone.Phone, dev uint32) {
	w.mu.Lock()
	w.phone = p
	w.self = e2e.Address{User: p.Self().User, Device: dev}
	w.mu.Unlock()
	w.env.rec.learn(w.self, w.name)
}

// Send sends text in the open conversation and records the send in the
// ledger, targeted at the peer's devices and the account's other devices
// as the relay lists them now.
func (w *Web) Send(ctx context.Context, text string) (driver.Message, error) {
	if w.env.Topology() == Mirror {
		return w.askPhone(ctx, text)
	}
	peer, to, err := w.targets(ctx, "send")
	if err != nil {
		return driver.Message{}, err
	}
	m, err := w.Page.Send(ctx, text)
	if err != nil {
		return m, err
	}
	w.recordSend(m, peer, to, reports.DigestOf([]byte(m.Text)))
	return m, nil
}

// askPhone sends text in the open conversation of a mirror page: the page
// asks its phone, whose send the ledger records; the ledger holds the phone
// to it (Env.Check).
func (w *Web) askPhone(ctx context.Context, text string) (driver.Message, error) {
	asked := time.Now()
	m, err := w.Page.Send(ctx, text)
	if err != nil {
		return m, err
	}
	w.env.rec.ask(w.name, m.ID, asked)
	return m, nil
}

// awaitPhone waits until a mirror page says its phone is status.
func (w *Web) awaitPhone(ctx context.Context, status string) error {
	return Await(ctx, fmt.Sprintf("%s to say its phone is %s", w.name, status), func() error {
		got, text, err := w.PhoneStatus(ctx)
		if err == nil && got != status {
			err = fmt.Errorf("it says %q (%q)", got, text)
		}
		return err
	})
}

// targets is the open conversation's peer and the devices a message sent
// there goes to (named as in the ledger): the peer's and the account's
// other devices, as the relay lists them now.
func (w *Web) targets(ctx context.Context, what string) (peer string, to []string, err error) {
	w.mu.Lock()
	p, self := w.phone, w.self
	w.mu.Unlock()
	if p == nil {
		return "", nil, fmt.Errorf("harness: %s: %s: not linked by the harness", w.name, what)
	}
	if peer, err = w.OpenPeer(ctx); err != nil {
		return "", nil, err
	}
	if peer == "" {
		return "", nil, fmt.Errorf("harness: %s: %s: no conversation open", w.name, what)
	}
	for _, user := range []string{peer, self.User} {
		devs, err := p.Devices(ctx, user)
		if err != nil {
			return "", nil, fmt.Errorf("harness: %s: %s: device list of %s: %w", w.name, what, user, err)
		}
		for _, d := range devs {
			if a := (e2e.Address{User: user, Device: d}); a != self {
				to = append(to, w.env.rec.name(a))
			}
		}
	}
	return peer, to, nil
}

// recordSend puts message m, which w shows as sent to peer's devices and
// to, in the ledger.
func (w *Web) recordSend(m driver.Message, peer string, to []string, digest reports.Digest) {
	w.mu.Lock()
	w.sent[m.ID] = ""
	w.mu.Unlock()
	w.env.rec.send(w.name, m.ID, w.name+">"+peer, to, digest)
	w.record([]driver.Message{m})
}

// Messages returns the open conversation's messages and records what they
// show in the ledger.
func (w *Web) Messages(ctx context.Context) ([]driver.Message, error) {
	msgs, err := w.Page.Messages(ctx)
	if err != nil {
		return nil, err
	}
	w.record(msgs)
	return msgs, nil
}

// Observe reads the open conversation into the ledger (see Messages).
func (w *Web) Observe(ctx context.Context) error {
	_, err := w.Messages(ctx)
	return err
}

var statusReceipts = []struct {
	status string
	record func(r *reports.Recorder, dev, id string)
}{
	{driver.StatusSent, func(r *reports.Recorder, dev, id string) { r.Ack(dev, id) }},
	{driver.StatusDelivered, func(r *reports.Recorder, dev, id string) { r.Receipt(dev, id, reports.Delivered) }},
	{driver.StatusRead, func(r *reports.Recorder, dev, id string) { r.Receipt(dev, id, reports.Read) }},
}

// record puts what msgs show into the ledger: the ticks of messages w sent,
// and each copy of a message w must receive, the first time it shows. A
// media message counts as received when its file first shows verified
// (with the verified file's SHA-256 as its digest, as on native devices),
// and as undecryptable when the page rejects the file. A message the
// ledger does not know yet (a browser sender not yet observed) is looked at
// again next time.
func (w *Web) record(msgs []driver.Message) {
	rec := w.env.rec.rec
	copies := make(map[string]int)
	digest := make(map[string]reports.Digest)
	rejected := make(map[string]string)
	w.mu.Lock()
	for _, m := range msgs {
		if m.ID == "" {
			continue
		}
		if last, ok := w.sent[m.ID]; ok {
			for _, s := range statusReceipts {
				if driver.StatusAtLeast(m.Status, s.status) && !driver.StatusAtLeast(last, s.status) {
					s.record(rec, w.name, m.ID)
					w.sent[m.ID] = s.status
				}
			}
			continue
		}
		switch {
		case m.Media == "":
			digest[m.ID] = reports.DigestOf([]byte(m.Text))
		case m.MediaState == driver.MediaVerified:
			d, ok := mediaDigest(m.MediaSHA256)
			if !ok {
				continue
			}
			digest[m.ID] = d
		case m.MediaState == driver.MediaRejected:
			if w.rejected[m.ID] != m.MediaError {
				rejected[m.ID] = m.MediaError
			}
			continue
		default:
			continue // a file not downloaded yet is not received yet
		}
		copies[m.ID]++
	}
	w.mu.Unlock()
	w.recordRejected(rejected)
	w.mu.Lock()
	var fresh []string
	for id, n := range copies {
		if n > w.shown[id] {
			fresh = append(fresh, id)
		}
	}
	w.mu.Unlock()
	if len(fresh) == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range msgs { // in page order, so the ledger sees the order shown
		if !slices.Contains(fresh, m.ID) || copies[m.ID] <= w.shown[m.ID] {
			continue
		}
		// A message sent to no browser (yet) is looked at again next time.
		to, known := w.env.rec.webTargets(m.ID)
		if !known {
			continue
		}
		if slices.Contains(to, w.name) {
			for range copies[m.ID] - w.shown[m.ID] {
				rec.Shown(w.name, m.ID, digest[m.ID])
			}
		}
		w.shown[m.ID] = copies[m.ID]
	}
}
