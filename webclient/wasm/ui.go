//go:build js && wasm

package main

import (
	"fmt"
	"runtime/debug"
	"sync"
	"syscall/js"
	"time"

	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/webclient/app"
)

// The UI runs on one goroutine, the UI loop: it alone touches the UI's state
// and the DOM. JavaScript event handlers and background work hand it
// closures (post); the core's changes mark it dirty, and it redraws at most
// once per frame (frame): at once when the last render is a frame old or
// the screen changed, else when the frame is over. Nothing else wakes
// an idle page: a render that shows text which goes stale with time alone
// (a count of seconds, a call that stops ringing, "Yesterday") asks for the
// next render when it does (refreshAt), since hundreds of idle pages share
// a machine's cores.
const (
	frame      = 16 * time.Millisecond
	errorShown = 8 * time.Second
)

type ui struct {
	app core // nil until started
	// sourceOf is the main view's source for a linked device; phoneBanner,
	// set for a mirror client, says whether its phone answers (status
	// "connected", "not-connected" or "syncing") and what the banner says.
	sourceOf    func(*device.Device) source
	phoneBanner func() (status, text string)

	queue   queue[func()]
	dirtyCh chan struct{}

	// online remembers which device addresses were ever connected, so the
	// banner can tell "reconnecting" from "connecting". Written by device
	// goroutines.
	onlineMu sync.Mutex
	online   map[string]bool

	root       *elem
	loading    *elem
	loadingErr *elem // why the client is still starting: the last error
	lastErr    string
	landing    *landing
	replaced   *replaced
	outdated   *outdated
	main       *mainView // rebuilt for every linked device
	toast      *elem
	toastTimer *time.Timer
	screen     string // last logged
	// refresh is the earliest time the last render's text goes stale
	// without any change of state; zero when it never does.
	refresh time.Time
}

func newUI() *ui {
	u := &ui{dirtyCh: make(chan struct{}, 1), online: map[string]bool{}}
	u.queue.init()
	root := document.Call("getElementById", "app")
	if root.IsNull() {
		root = document.Get("body").Call("appendChild", document.Call("createElement", "div"))
	}
	u.root = wrap(root)
	u.root.clear()
	u.root.attr("data-testid", "app").attr("data-screen", "starting")
	u.loadingErr = el("div", "data-testid", "starting-error", "class", "loading-error", "role", "status")
	u.loadingErr.show(false)
	u.loading = el("div", "class", "loading").add(
		textEl("div", "linksim", "class", "loading-logo"),
		el("div", "class", "loading-bar").add(el("div")),
		textEl("div", "End-to-end encrypted", "class", "loading-note"),
		u.loadingErr,
	)
	u.landing = newLanding(u)
	u.replaced = newReplaced(u)
	u.outdated = newOutdated()
	u.root.add(u.loading, u.landing.el, u.replaced.el, u.outdated.el)
	listen(document, "click", func(ev js.Value) { // a click elsewhere closes the menu
		if _, inMenu := closest(ev, `[data-testid="menu"], [data-testid="menu-list"]`, ""); !inMenu {
			u.post(func() {
				if u.main != nil {
					u.main.closeMenu()
				}
			})
		}
	})
	return u
}

// post runs f on the UI loop, in the order posted. Safe from JavaScript
// callbacks: it never blocks.
func (u *ui) post(f func()) { u.queue.push(f) }

// dirty asks for a redraw. It never blocks, so the core may call it from
// anywhere.
func (u *ui) dirty() {
	select {
	case u.dirtyCh <- struct{}{}:
	default:
	}
}

// event sees every device event (through the core, which then calls
// dirty) and logs the ones worth a line in the console.
func (u *ui) event(e device.Event) {
	switch e.Kind {
	case device.Connected:
		u.onlineMu.Lock()
		u.online[e.Address.String()] = true
		u.onlineMu.Unlock()
		console("log", fmt.Sprintf("%s: connected as %s", e.Device, e.Address))
	case device.Disconnected:
		console("log", fmt.Sprintf("%s: disconnected", e.Device))
	case device.LoggedOut:
		console("log", fmt.Sprintf("%s: logged out: %v", e.Device, e.Err))
	case device.Undecryptable:
		console("warn", fmt.Sprintf("%s: cannot decrypt msg %s from %s, asked for a retry: %v", e.Device, e.MessageID, e.From, e.Err))
	case device.Received:
		console("log", fmt.Sprintf("%s: received msg %s from %s in chat %s", e.Device, e.MessageID, e.From, e.Chat))
	case device.Acked:
		console("log", fmt.Sprintf("%s: msg %s to %s stored by the relay", e.Device, e.MessageID, e.Chat))
	}
}

func (u *ui) everOnline(d *device.Device) bool {
	u.onlineMu.Lock()
	defer u.onlineMu.Unlock()
	return u.online[d.Self().String()]
}

func (u *ui) loop() {
	stale := time.NewTimer(time.Hour)
	stale.Stop()
	defer stale.Stop()
	// draw renders and arms stale for the time the render's text goes
	// stale, if it does.
	var drawn time.Time // when the last render started
	draw := func() {
		drawn = time.Now()
		u.refresh = time.Time{}
		u.safely("render", u.render)
		if u.refresh.IsZero() {
			stale.Stop()
		} else {
			stale.Reset(time.Until(u.refresh))
		}
	}
	var redraw <-chan time.Time
	for {
		select {
		case <-u.queue.wake:
			for _, f := range u.queue.take() {
				u.safely("event", f)
			}
			draw()
		case <-u.dirtyCh:
			wait := frame - time.Since(drawn)
			switch {
			case u.screenChanged() || (redraw == nil && wait <= 0):
				// At once: the linked screen must be up before the
				// device's first work (decrypting the history) holds the
				// page for a while, and a change after a quiet frame (the
				// history's chats, a message) shows without waiting for
				// the next one.
				redraw = nil
				draw()
			case redraw == nil:
				redraw = time.After(wait)
			}
		case <-redraw:
			redraw = nil
			draw()
		case <-stale.C:
			draw()
		}
	}
}

// refreshAt asks for a render at t at the latest: what the render shows
// now goes stale then. Render only.
func (u *ui) refreshAt(t time.Time) {
	if u.refresh.IsZero() || t.Before(u.refresh) {
		u.refresh = t
	}
}

// screenChanged reports whether the core shows another screen than the one
// last rendered. UI loop only.
func (u *ui) screenChanged() bool {
	if u.app == nil {
		return false
	}
	screen, _, _ := u.app.Screen()
	return screen.String() != u.screen
}

// spawn runs f on a goroutine of its own (for work that waits on the relay),
// turning a panic into an error toast like safely.
func (u *ui) spawn(what string, f func()) {
	go func() {
		defer func() {
			if r := recover(); r != nil {
				console("error", fmt.Sprintf("%s: panic: %v\n%s", what, r, debug.Stack()))
				u.post(func() { u.showError(fmt.Sprintf("Something went wrong (%s): %v", what, r)) })
			}
		}()
		f()
	}()
}

// safely runs f, turning a panic into an error toast: the app stays up.
func (u *ui) safely(what string, f func()) {
	defer func() {
		if r := recover(); r != nil {
			console("error", fmt.Sprintf("%s: panic: %v\n%s", what, r, debug.Stack()))
			u.showError(fmt.Sprintf("Something went wrong (%s): %v", what, r))
		}
	}()
	f()
}

func (u *ui) render() {
	if u.app == nil {
		return
	}
	screen, ref, err := u.app.Screen()
	name := screen.String()
	u.root.attr("data-screen", name)
	if name != u.screen {
		u.screen = name
		mark("screen." + name)
		line := "screen " + name
		switch {
		case screen == app.ScreenQR:
			line += fmt.Sprintf(" (code %d of %d, expires in %s)", ref.Index, ref.Count, time.Until(ref.Expires).Round(time.Second))
		case screen == app.ScreenExpired && err != nil:
			line += fmt.Sprintf(" (%v)", err)
		}
		console("log", line)
	}
	u.loading.show(screen == app.ScreenStarting)
	starting := ""
	if screen == app.ScreenStarting && err != nil {
		starting = fmt.Sprintf("Cannot reach the relay, retrying: %v", err)
	}
	if starting != u.lastErr && starting != "" {
		console("warn", starting)
	}
	u.lastErr = starting
	u.loadingErr.setText(starting).show(starting != "")
	u.landing.render(screen, ref, err)
	u.replaced.render(screen)
	u.outdated.render(screen, err)

	dev := u.app.Device()
	if screen != app.ScreenLinked {
		dev = nil
	}
	if u.main != nil && u.main.dev != dev {
		u.main.close()
		u.main = nil
	}
	if dev != nil && u.main == nil {
		console("log", fmt.Sprintf("linked as %s", dev.Self()))
		u.main = newMainView(u, dev, u.sourceOf(dev))
		u.root.add(u.main.el)
	}
	if u.main != nil {
		u.main.render()
	}
}

// showError shows msg in the error toast for a while. UI loop only.
func (u *ui) showError(msg string) {
	console("error", msg)
	if u.toast == nil {
		u.toast = el("div", "data-testid", "error", "class", "toast", "role", "alert")
		u.toast.on("click", func(js.Value) { u.post(u.hideError) })
		u.root.add(u.toast)
	}
	u.toast.setText(msg)
	if u.toastTimer != nil {
		u.toastTimer.Stop()
	}
	u.toastTimer = time.AfterFunc(errorShown, func() { u.post(u.hideError) })
}

func (u *ui) hideError() {
	if u.toast != nil {
		u.toast.remove()
		u.toast = nil
	}
}

// fatal reports an error that stops the app from starting; the page stays
// up to show it.
func (u *ui) fatal(err error) {
	u.post(func() {
		u.showError(fmt.Sprintf("linksim cannot start: %v", err))
		u.toastTimer.Stop() // keep it on screen
	})
}

// queue is an unbounded FIFO whose push never blocks.
type queue[T any] struct {
	mu    sync.Mutex
	items []T
	wake  chan struct{}
}

func (q *queue[T]) init() { q.wake = make(chan struct{}, 1) }

func (q *queue[T]) push(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue[T]) take() []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}
