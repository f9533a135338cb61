package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/profiler"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// Screens of the web client (the root's data-screen attribute).
const (
	ScreenStarting = "starting"
	ScreenQR       = "qr"
	ScreenExpired  = "expired"
	ScreenLinked   = "linked"
)

// pollEvery is how often waits re-read the page. Waits poll by interval from
// Go, never by requestAnimationFrame: a page that gets no frames would never
// answer.
const pollEvery = 20 * time.Millisecond

// maxConsole bounds the console lines a page keeps (the newest are kept).
const maxConsole = 2000

// Page is one web client in its own window (see Config.Layout for its
// browser context). Its methods take the
// caller's context and bound every browser action by Config.ActionTimeout.
// A Page is used by one goroutine at a time, like a user at one window.
type Page struct {
	b      *Browser
	ctx    context.Context // the tab's chromedp context
	cancel context.CancelFunc

	mu      sync.Mutex
	name    string // from the ?name= of the last Open, for errors
	db      string // LayoutTabs: the ?db= Open adds, so tabs share no state
	console []string
	dropped int
}

func newPage(b *Browser, ctx context.Context, cancel context.CancelFunc) *Page {
	p := &Page{b: b, ctx: ctx, cancel: cancel, name: "page"}
	if b.cfg.ProfileDir != "" {
		p.startProfile()
	}
	// Subscribed before any navigation, so no line of the app is missed.
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			p.logConsole(m)
		}
	}()
	return p
}

func (p *Page) logConsole(m chromedp.ConsoleMessage) {
	line := fmt.Sprintf("%s %-9s %s", m.Time.Format("15:04:05.000"), m.Type, m.Text)
	if m.URL != "" {
		line += fmt.Sprintf("  (%s:%d)", m.URL, m.Line+1)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.console) == maxConsole {
		p.console = append(p.console[:0], p.console[1:]...)
		p.dropped++
	}
	p.console = append(p.console, line)
}

// ConsoleLogs returns what the page wrote to its console (console API calls,
// uncaught exceptions, browser log entries), oldest first, one line each.
func (p *Page) ConsoleLogs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.console)+1)
	if p.dropped > 0 {
		out = append(out, fmt.Sprintf("(%d older lines dropped)", p.dropped))
	}
	return append(out, p.console...)
}

// Name is the device name the page was opened with (its ?name=).
func (p *Page) Name() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.name
}

// BrowserContext is the id of the page's browser context: shared by all
// pages in LayoutTabs (the browser's default context), one per page in
// LayoutContext; "" when it cannot be read.
func (p *Page) BrowserContext() string {
	c := chromedp.FromContext(p.ctx)
	if c == nil || c.Target == nil {
		return ""
	}
	if c.BrowserContextID != "" {
		return string(c.BrowserContextID)
	}
	// A tab of the default context: chromedp does not know its id.
	ctx, cancel := context.WithTimeout(p.ctx, p.b.cfg.ActionTimeout)
	defer cancel()
	info, err := chromedp.CallBrowser(ctx, target.GetTargetInfo, target.GetTargetInfoParams{TargetID: c.Target.TargetID})
	if err != nil || info.TargetInfo == nil {
		return ""
	}
	return string(info.TargetInfo.BrowserContextID)
}

// Close closes the page's window and, in LayoutContext, discards its
// browser context; with Config.ProfileDir it first writes the page's CPU
// profile.
func (p *Page) Close() {
	if p.b.cfg.ProfileDir != "" {
		p.writeProfile()
	}
	p.cancel()
}

// profileSampling is the CPU profile's sampling interval: fine enough to
// see the steps of a pairing, which take tens of milliseconds.
const profileSampling = 100 * time.Microsecond

// startProfile starts the page's V8 CPU profiler, before any navigation,
// so the app's download, compile and start are in the profile. A profiler
// that cannot start is reported through Config.Logf; the page works on.
func (p *Page) startProfile() {
	ctx, cancel := context.WithTimeout(p.ctx, p.b.cfg.ActionTimeout)
	defer cancel()
	_, err := chromedp.Call(ctx, profiler.Enable, cdp.Empty{})
	if err == nil {
		_, err = chromedp.Call(ctx, profiler.SetSamplingInterval,
			profiler.SetSamplingIntervalParams{Interval: profileSampling.Microseconds()})
	}
	if err == nil {
		_, err = chromedp.Call(ctx, profiler.Start, cdp.Empty{})
	}
	if err != nil {
		p.b.cfg.Logf("driver: %s: start CPU profile: %v", p.Name(), err)
	}
}

// writeProfile stops the page's profiler and writes the profile to
// Config.ProfileDir, reporting failures through Config.Logf.
func (p *Page) writeProfile() {
	ctx, cancel := context.WithTimeout(p.ctx, p.b.cfg.ActionTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, profiler.Stop, cdp.Empty{})
	if err == nil {
		err = writeProfileFile(p.b.cfg.ProfileDir, strings.ReplaceAll(p.Name(), "/", "_"), res.Profile)
	}
	if err != nil {
		p.b.cfg.Logf("driver: %s: write CPU profile: %v", p.Name(), err)
	}
}

// writeProfileFile writes prof to dir as <name>-<random>.cpuprofile: a
// name of its own, since several browsers (the harness runs one per
// layout) may write pages of the same name there.
func writeProfileFile(dir, name string, prof *profiler.Profile) error {
	b, err := json.Marshal(prof)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, name+"-*.cpuprofile")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	return errors.Join(err, f.Close())
}

// run runs one browser action on the tab, bounded by ctx and the action
// timeout.
func run[T any](ctx context.Context, p *Page, what string, a chromedp.Action[T]) (T, error) {
	actx, cancel := context.WithTimeout(p.ctx, p.b.cfg.ActionTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	v, err := chromedp.Run(actx, a)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return v, fmt.Errorf("%s: %s: %w", p.Name(), what, err)
	}
	return v, nil
}

// do runs actions that return nothing, in order.
func (p *Page) do(ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) error {
	_, err := run(ctx, p, what, chromedp.Steps(steps...))
	return err
}

// eval evaluates a JavaScript expression and decodes its JSON result.
func eval[T any](ctx context.Context, p *Page, what, expr string) (T, error) {
	return run(ctx, p, what, chromedp.Evaluate[T](expr))
}

// wait polls cond until it reports done or ctx ends; when ctx has no
// deadline, a minute bounds it. An error from cond ends the wait only if it
// is ErrExpired or the page was closed; others are looked past as
// transient. The error names what was awaited and the last thing seen.
func (p *Page) wait(ctx context.Context, what string, cond func(context.Context) (done bool, saw string, err error)) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	start := time.Now()
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	var saw string
	for {
		done, s, err := cond(ctx)
		switch {
		case err != nil && (errors.Is(err, ErrExpired) || p.ctx.Err() != nil):
			return err // the page is gone, or cannot get there any more
		case err != nil && ctx.Err() == nil:
			// A read can fail while the page changes (a navigation
			// destroys the JavaScript context): look again.
			s = "an error: " + err.Error()
		case done:
			return nil
		}
		if s != "" {
			saw = s
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: waited %s for %s; saw %s: %w", p.Name(), time.Since(start).Round(time.Millisecond), what, saw, ctx.Err())
		case <-t.C:
		}
	}
}

// Open navigates to url (the relay's page, with ?name= naming the device)
// and returns once the document loaded; the app may still be starting. In
// LayoutTabs it adds the page's own ?db= unless url names one: tabs of one
// context share IndexedDB, and two apps on one database would be one device.
func (p *Page) Open(ctx context.Context, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("%s: open %q: %w", p.Name(), rawURL, err)
	}
	q := u.Query()
	if q.Get("name") != "" {
		p.mu.Lock()
		p.name = q.Get("name")
		p.mu.Unlock()
	}
	if p.db != "" && !q.Has("db") {
		q.Set("db", p.db)
		u.RawQuery = q.Encode()
		rawURL = u.String()
	}
	return p.do(ctx, "open "+rawURL, chromedp.Navigate(rawURL))
}

// Reload reloads the page, as a user pressing F5 would; the app starts again
// from its stored state.
func (p *Page) Reload(ctx context.Context) error {
	return p.do(ctx, "reload", chromedp.Reload())
}

// Crash kills the page's renderer process, as a crash or the kernel's OOM
// killer would: the app stops at once, with no unload and nothing more
// written. It returns once the page no longer answers. In LayoutTabs,
// pages of the same site may share the renderer and crash with it.
func (p *Page) Crash(ctx context.Context) error {
	// The renderer dies before it can answer, so the call's error says
	// nothing; the page not answering afterwards is the proof.
	cctx, cancel := context.WithTimeout(p.ctx, time.Second)
	chromedp.Call(cctx, page.Crash, cdp.Empty{})
	cancel()
	ectx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := eval[int](ectx, p, "check the page crashed", "1"); err == nil {
		return fmt.Errorf("%s: crash: the page still answers", p.Name())
	}
	return nil
}

// Reopen opens a new page in p's browser context, on the same storage
// (IndexedDB, HTTP cache), as a user reopens a tab that crashed; Open then
// loads the app in it. p, dead or alive, stays open: in LayoutContext it
// owns the browser context, and closing it closes the new page too.
func (p *Page) Reopen(ctx context.Context) (*Page, error) {
	pctx, cancel := chromedp.NewContext(p.ctx) // inherits the browser context
	if err := start(ctx, pctx, p.b.cfg.StartTimeout); err != nil {
		cancel()
		return nil, fmt.Errorf("%s: reopen: %w", p.Name(), err)
	}
	np := newPage(p.b, pctx, cancel)
	p.mu.Lock()
	np.name, np.db = p.name, p.db
	p.mu.Unlock()
	return np, nil
}

// SetViewport lays the page out as a window of width x height CSS pixels
// would (a phone-sized 320 x 568, say); the page gets a resize event.
func (p *Page) SetViewport(ctx context.Context, width, height int) error {
	return p.do(ctx, fmt.Sprintf("set the viewport to %dx%d", width, height), chromedp.EmulateViewport(int64(width), int64(height)))
}

// Screen returns the screen the app shows: starting, qr, expired or linked
// ("" before the app rendered its root).
func (p *Page) Screen(ctx context.Context) (string, error) {
	return eval[string](ctx, p, "read screen", `(document.querySelector('[data-testid="app"]')?.dataset.screen) ?? ""`)
}

// watchFor bounds one watch of watchDOM: well under the action timeout,
// so a long wait is many watches, none of which looks like a hung action.
const watchFor = 2 * time.Second

// watchDOM returns once the JavaScript expression cond is true on the page,
// or false after watchFor. The page checks cond again on every change of
// its DOM (a MutationObserver), so a wait ends within one DevTools round
// trip of the change that made cond true, not at the next poll; like a
// poll, it sees the page only when the page's script yields.
func (p *Page) watchDOM(ctx context.Context, what, cond string) (bool, error) {
	return run(ctx, p, what, chromedp.Evaluate[bool](fmt.Sprintf(`new Promise(resolve => {
		const holds = () => { try { return !!(%s); } catch (e) { return false; } };
		if (holds()) { resolve(true); return; }
		const stop = v => { obs.disconnect(); clearTimeout(timer); resolve(v); };
		const obs = new MutationObserver(() => { if (holds()) stop(true); });
		const timer = setTimeout(() => stop(false), %d);
		obs.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
	})`, cond, watchFor.Milliseconds()), chromedp.EvalAwaitPromise))
}

// WaitScreen waits until the app shows screen. Between looks it watches
// the page's DOM (watchDOM) rather than polling it.
func (p *Page) WaitScreen(ctx context.Context, screen string) error {
	shows := fmt.Sprintf(`document.querySelector('[data-testid="app"]')?.dataset.screen === %q`, screen)
	return p.wait(ctx, "the "+screen+" screen", func(ctx context.Context) (bool, string, error) {
		s, err := p.Screen(ctx)
		if err != nil {
			return false, "", err
		}
		if s == screen {
			return true, "", nil
		}
		saw := "the " + s + " screen"
		if s == "" {
			saw = "no app root"
		}
		if t, _ := p.ErrorText(ctx); t != "" {
			saw += fmt.Sprintf(" with error %q", t)
		}
		ok, err := p.watchDOM(ctx, "watch for the "+screen+" screen", shows)
		return ok, saw, err
	})
}

// ErrorText returns the text of the error toast, "" when none shows.
func (p *Page) ErrorText(ctx context.Context) (string, error) {
	return eval[string](ctx, p, "read error toast", `(() => {
		const e = document.querySelector('[data-testid="error"]');
		return e && e.checkVisibility() ? e.textContent.trim() : "";
	})()`)
}

// ConnectionStatus returns connecting, reconnecting or online.
func (p *Page) ConnectionStatus(ctx context.Context) (string, error) {
	return eval[string](ctx, p, "read connection status",
		`(document.querySelector('[data-testid="connection-status"]')?.dataset.status) ?? ""`)
}

// ConnectionText returns what the connection banner says ("Reconnecting…
// messages are sent once the connection is back"), "" when it is hidden.
func (p *Page) ConnectionText(ctx context.Context) (string, error) {
	return eval[string](ctx, p, "read connection banner", `(() => {
		const e = document.querySelector('[data-testid="connection-status"]');
		return e && e.checkVisibility() ? e.textContent.trim() : "";
	})()`)
}

// PhoneStatus returns what a mirror web client says of its phone: its
// status (connected, not-connected, syncing; "" on a multi-device client)
// and the banner's text, "" when it is hidden.
func (p *Page) PhoneStatus(ctx context.Context) (status, text string, err error) {
	got, err := eval[[]string](ctx, p, "read phone status", `(() => {
		const e = document.querySelector('[data-testid="phone-status"]');
		if (!e) return ["", ""];
		return [e.dataset.status ?? "", e.checkVisibility() ? e.textContent.trim() : ""];
	})()`)
	if err != nil {
		return "", "", err
	}
	if len(got) != 2 {
		return "", "", fmt.Errorf("driver: read phone status: got %q", got)
	}
	return got[0], got[1], nil
}

// Screenshot returns a PNG of the whole page.
func (p *Page) Screenshot(ctx context.Context) ([]byte, error) {
	return run(ctx, p, "screenshot page", chromedp.FullScreenshot(100))
}

// HTML returns the page's current DOM as HTML, for failure artifacts.
func (p *Page) HTML(ctx context.Context) (string, error) {
	return eval[string](ctx, p, "read HTML", `document.documentElement.outerHTML`)
}

// Exposed returns everything a script on the page can read as text without
// decoding pixels: the DOM, every string-valued global, and local and
// session storage. The harness checks the QR payload is in none of it.
func (p *Page) Exposed(ctx context.Context) (string, error) {
	return eval[string](ctx, p, "read the DOM, string globals and storage", `(() => {
		const out = [document.documentElement.outerHTML];
		for (const k of Object.getOwnPropertyNames(window)) {
			try { if (typeof window[k] === "string") out.push(window[k]); } catch (e) {}
		}
		for (const s of [localStorage, sessionStorage]) {
			for (let i = 0; i < s.length; i++) out.push(s.getItem(s.key(i)));
		}
		return out.join("\n");
	})()`)
}

// testID is the CSS selector of the elements with data-testid id, narrowed
// by extra attribute selectors (`[data-peer="…"]`).
func testID(id string, extra ...string) chromedp.CSS {
	return chromedp.CSS(`[data-testid="` + id + `"]` + strings.Join(extra, ""))
}

// attr is an attribute selector [name="value"] with value quoted for CSS.
func attr(name, value string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `[` + name + `="` + r.Replace(value) + `"]`
}

// click clicks the first visible element matching sel, as a mouse would.
func (p *Page) click(ctx context.Context, what string, sel chromedp.CSS) error {
	return p.do(ctx, what, chromedp.Click(sel, chromedp.RetryInterval(pollEvery)))
}

// typeInto empties the input with data-testid id and types text into it
// key by key, as a user would.
func (p *Page) typeInto(ctx context.Context, id, text string) error {
	if _, err := eval[any](ctx, p, "empty "+id, `(() => {
		const e = document.querySelector('[data-testid="`+id+`"]');
		if (e) { e.value = ""; e.dispatchEvent(new Event("input", {bubbles: true})); }
	})()`); err != nil {
		return err
	}
	return p.do(ctx, "type into "+id, chromedp.SendKeys(testID(id), text, chromedp.RetryInterval(pollEvery)))
}
