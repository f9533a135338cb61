package load

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/reports"
	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/webclient/driver"
)

// A mixed fleet: the first Browsers users of a run also link a real
// browser page (the web app in the shared Chromium of Layout), paired by a
// screenshot of its QR code. The device inside a page reports no events;
// the harness records what the page shows, so a page is scored by the same
// ledger only for what it is looked at: each page reads its chat list in a
// loop and opens the chats whose row changed (every chat now and then),
// reading their messages (and downloading media, which counts once
// verified, as on native devices), from the first action until the drain
// ends. Pages receive; the actions' senders are the native
// devices.

// browserName is the device name of user name's browser page.
func browserName(user string) string { return user + "/browser" }

// pagesAtOnce bounds the browser pages opening and pairing at once: each
// costs a second or more of Chromium's CPU, and two dozen at once on two
// cores time out.
const pagesAtOnce = 4

// addBrowser opens and links member m's browser page.
func (r *runner) addBrowser(ctx context.Context, m *member) error {
	select {
	case r.pageSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.pageSlots }()
	w, err := r.env.Browser(ctx, browserName(m.user.Name))
	if err != nil {
		return err
	}
	if _, err := r.env.LinkBrowser(ctx, m.user.Phone, w); err != nil {
		return err
	}
	r.pages.Store(w.Name(), w.Self())
	m.browser = w
	r.live.addLinked(1)
	return nil
}

// pageShown feeds the tracker what browser pages show: the harness records
// it as shown events, which is how the ledger scores pages too.
func (r *runner) pageShown(e reports.Event) {
	if e.Kind != reports.KindShown {
		return
	}
	if a, ok := r.pages.Load(e.Device); ok {
		r.live.shown(e.Msg, a.(e2e.Address))
	}
}

// watchPages has every browser page look through its chats until the
// returned stop is called.
func (r *runner) watchPages(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, m := range r.members {
		if w := m.browser; w != nil {
			wg.Go(func() { r.watchPage(ctx, w) })
		}
	}
	return func() { cancel(); wg.Wait() }
}

// lookPause is the rest between two rounds of a page's looks, and
// fullLookEvery how often a round opens every chat, not only those whose
// row in the chat list changed: a message shown before its send was
// recorded is only counted on a later look. Looks keep Chromium's renderers
// busy, CPU the native devices and the relay share; a page's deliveries are
// timed when a look sees them, so they read up to a round late.
const (
	lookPause     = 200 * time.Millisecond
	fullLookEvery = 5 * time.Second
)

// pageTimeout bounds one look at a chat, so a hung page cannot stop the
// others being looked at, or the run from ending.
const pageTimeout = 30 * time.Second

// watchPage looks through page w's chats again and again. A look that
// fails (the chat list redrawn under a click, a slow page) is counted and
// retried on the next round, not a failure of the run: what a page never
// shows, the ledger counts as lost.
func (r *runner) watchPage(ctx context.Context, w *harness.Web) {
	seen := make(map[string]driver.Chat) // by peer: the row when last looked at
	var lastFull time.Time
	for ctx.Err() == nil {
		full := time.Since(lastFull) >= fullLookEvery
		if full {
			lastFull = time.Now()
			clear(seen)
		}
		if err := lookThrough(ctx, w, seen); err != nil && ctx.Err() == nil {
			r.pageErrors.Add(1)
			r.lastPageError.Store(fmt.Sprintf("%s: %v", w.Name(), err))
		}
		select {
		case <-time.After(lookPause):
		case <-ctx.Done():
		}
	}
}

// lookThrough opens each chat of page w whose row differs from the one in
// seen, records what it shows, and notes the row it looked for in seen
// (the row from before the look: a message that came during it changes
// the row again).
func lookThrough(ctx context.Context, w *harness.Web, seen map[string]driver.Chat) error {
	look, cancel := context.WithTimeout(ctx, pageTimeout)
	chats, err := w.Chats(look)
	cancel()
	if err != nil {
		return err
	}
	for _, c := range chats {
		if prev, ok := seen[c.Peer]; ok && prev == c {
			continue
		}
		look, cancel := context.WithTimeout(ctx, pageTimeout)
		err := lookAt(look, w, c.Peer)
		cancel()
		if err != nil {
			return err
		}
		seen[c.Peer] = c
	}
	return nil
}

// lookAt opens the chat with peer, records its messages and downloads the
// files of media messages not downloaded yet.
func lookAt(ctx context.Context, w *harness.Web, peer string) error {
	if err := w.OpenChat(ctx, peer); err != nil {
		return err
	}
	msgs, err := w.Messages(ctx)
	if err != nil {
		return err
	}
	downloaded := false
	for _, m := range msgs {
		// Out too: a copy of what the user sent from another device.
		if m.Media != "" && m.MediaState == "" {
			if _, err := w.DownloadMedia(ctx, m.ID); err != nil {
				return err
			}
			downloaded = true
		}
	}
	if downloaded {
		return w.Observe(ctx)
	}
	return nil
}
