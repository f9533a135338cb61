// Package driver drives linksim's browser web client in headless Chromium:
// a Browser is one Chromium process, a Page is one web client in its own
// window and, by default, its own isolated browser context (Config.Layout),
// read and operated only through the data-testid contract of
// docs/webclient-contract.md. It is the only package that imports chromedp.
package driver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/chromedp/chromedp"
)

// DefaultExecPath is Debian's Chromium binary. /usr/bin/chromium is a shell
// wrapper that adds flags and trips over its own /dev/shm check in
// containers, so the binary is run directly.
const DefaultExecPath = "/usr/lib/chromium/chromium"

// ProfileEnv names the environment variable that sets Config.ProfileDir
// when the Config leaves it empty.
const ProfileEnv = "LINKSIM_BROWSER_PROFILE"

// Layouts of a Browser's pages (Config.Layout).
const (
	// LayoutContext gives each page a browser context of its own: pages
	// share no storage, cookies or cache, as separate browsers would.
	LayoutContext = "context"
	// LayoutTabs opens every page in one browser context shared by all,
	// the browser's default one: cheaper (no context to create, and one
	// HTTP cache on disk, so app.wasm is fetched once; a new browser
	// context's cache lives in memory and keeps no entry that large), but
	// the pages share storage per origin, so each page gets its own
	// IndexedDB database through the app's ?db= parameter.
	LayoutTabs = "tabs"
)

// Config configures a Browser. The zero value runs DefaultExecPath (or
// $LINKSIM_CHROMIUM) with 1280x800 windows and 10s per browser action.
type Config struct {
	// ExecPath is the Chromium binary; "" uses $LINKSIM_CHROMIUM, then
	// DefaultExecPath.
	ExecPath string
	// Width and Height size every window; 0 means 1280x800.
	Width, Height int
	// ActionTimeout bounds each single browser action (a screenshot, a
	// click, one DOM read); waits made of many actions are bounded by their
	// context. 0 means 10s.
	ActionTimeout time.Duration
	// StartTimeout bounds starting Chromium and opening a page. 0 means 30s.
	StartTimeout time.Duration
	// Logf receives chromedp's errors about the browser; nil discards them.
	Logf func(format string, args ...any)
	// EvidenceDir is where a page saves the screenshot its error refers to
	// (a QR code that could not be read). "" means os.TempDir().
	EvidenceDir string
	// Layout is LayoutContext (the default, for "") or LayoutTabs.
	Layout string
	// ProfileDir, when set, makes every page record a V8 CPU profile from
	// its creation until Close and write it there as <name>-<random>.cpuprofile
	// (Chrome DevTools' Performance panel opens it). Function names need an
	// app.wasm built with its name section (harness: LINKSIM_BROWSER_PROFILE
	// does both). Profiling slows pages: compare profiles with profiles.
	// "" uses $LINKSIM_BROWSER_PROFILE, which is "" unless set.
	ProfileDir string
	// TraceDir, when set, makes the browser record a Chromium trace of all
	// its pages (rendering, frames, font look-ups and the pages' marks)
	// from Launch until Close and write it there as trace-<random>.json
	// (DevTools' Performance panel and Perfetto open it). "" uses
	// $LINKSIM_BROWSER_TRACE, which is "" unless set.
	TraceDir string
}

func (c Config) withDefaults() Config {
	if c.ExecPath == "" {
		c.ExecPath = os.Getenv("LINKSIM_CHROMIUM")
	}
	if c.ExecPath == "" {
		c.ExecPath = DefaultExecPath
	}
	if c.Width <= 0 || c.Height <= 0 {
		c.Width, c.Height = 1280, 800
	}
	if c.ActionTimeout <= 0 {
		c.ActionTimeout = 10 * time.Second
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 30 * time.Second
	}
	if c.EvidenceDir == "" {
		c.EvidenceDir = os.TempDir()
	}
	if c.Layout == "" {
		c.Layout = LayoutContext
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	if c.ProfileDir == "" {
		c.ProfileDir = os.Getenv(ProfileEnv)
	}
	if c.TraceDir == "" {
		c.TraceDir = os.Getenv(TraceEnv)
	}
	return c
}

// Profiled reports whether pages of a Browser of c record CPU profiles:
// c.ProfileDir or $LINKSIM_BROWSER_PROFILE is set.
func (c Config) Profiled() bool { return c.withDefaults().ProfileDir != "" }

// Browser is one headless Chromium process. Each page has its own window;
// in LayoutContext it also has its own browser context (cookies, storage),
// in LayoutTabs all pages share one. Safe for concurrent use.
type Browser struct {
	cfg         Config
	ctx         context.Context // the browser's root chromedp context
	cancel      context.CancelFunc
	allocCancel context.CancelFunc
	pid         int

	sharedMu sync.Mutex
	shared   context.Context // LayoutTabs: a blank tab owning the pages' browser context
	opened   atomic.Int64    // pages opened, to name each tab's database

	trace *tracer // nil unless Config.TraceDir
}

// ErrNoChromium is returned by Launch when the Chromium binary is missing.
var ErrNoChromium = errors.New("driver: Chromium not found")

// Launch starts Chromium with flags that keep it quiet on a closed network
// (no background networking, component updates, sync or QUIC) and that stop
// it from throttling pages in windows nobody looks at.
func Launch(ctx context.Context, cfg Config) (*Browser, error) {
	cfg = cfg.withDefaults()
	if cfg.Layout != LayoutContext && cfg.Layout != LayoutTabs {
		return nil, fmt.Errorf("driver: unknown layout %q: want %q or %q", cfg.Layout, LayoutContext, LayoutTabs)
	}
	if _, err := os.Stat(cfg.ExecPath); err != nil {
		return nil, fmt.Errorf("%w at %s (%v): run scripts/install-chromium.sh, or point $LINKSIM_CHROMIUM at a Chromium binary",
			ErrNoChromium, cfg.ExecPath, err)
	}
	// Our own option list replaces chromedp's defaults entirely.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(cfg.ExecPath),
		chromedp.Headless,
		chromedp.NoSandbox, // Chromium exits at once as root without it
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(cfg.Width, cfg.Height),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		// chromedp gives the process a fresh --user-data-dir of its own
		// and removes it when the browser stops.
	}
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(cfg.Logf))
	b := &Browser{cfg: cfg, ctx: bctx, cancel: cancel, allocCancel: allocCancel}
	// The first run starts the process and binds its life to bctx, so it
	// must not run on a context with a deadline: start bounds it instead.
	if err := start(ctx, bctx, cfg.StartTimeout); err != nil {
		cancel()
		allocCancel()
		return nil, fmt.Errorf("driver: start Chromium %s: %w", cfg.ExecPath, err)
	}
	if cfg.TraceDir != "" {
		var err error
		if b.trace, err = startTrace(bctx, cfg.TraceDir); err != nil {
			cancel()
			allocCancel()
			return nil, fmt.Errorf("driver: start a trace in %s: %w", cfg.TraceDir, err)
		}
	}
	if c := chromedp.FromContext(bctx); c != nil && c.Browser != nil && c.Browser.Process() != nil {
		b.pid = c.Browser.Process().Pid
	}
	return b, nil
}

// start runs the first (empty) action on the chromedp context cctx, which
// starts a browser or opens a tab bound to cctx's life, giving up after
// timeout or when ctx ends; the caller then cancels cctx.
func start(ctx, cctx context.Context, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- chromedp.Do(cctx) }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("not ready after %s", timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when the browser stopped: closed, or crashed.
func (b *Browser) Done() <-chan struct{} { return b.ctx.Done() }

// PID is the Chromium main process id (its renderers are its descendants).
func (b *Browser) PID() int { return b.pid }

// NewPage opens a blank page in a window of its own (none is a hidden tab:
// hidden tabs get no animation frames and their screenshots hang). In
// LayoutContext it gets a new browser context; in LayoutTabs it joins the
// browser's shared one, and Open gives it a database of its own.
func (b *Browser) NewPage(ctx context.Context) (*Page, error) {
	if err := b.ctx.Err(); err != nil {
		return nil, fmt.Errorf("driver: new page: browser closed: %w", err)
	}
	parent, opts := b.ctx, []chromedp.ContextOption{chromedp.WithNewBrowserContext()}
	db := ""
	if b.cfg.Layout == LayoutTabs {
		shared, err := b.sharedContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("driver: new page: %w", err)
		}
		parent, opts = shared, nil // the child inherits the browser context
		db = "linksim-tab" + strconv.FormatInt(b.opened.Add(1), 10)
	}
	pctx, cancel := chromedp.NewContext(parent, opts...)
	if err := start(ctx, pctx, b.cfg.StartTimeout); err != nil {
		cancel()
		return nil, fmt.Errorf("driver: new page: %w", err)
	}
	p := newPage(b, pctx, cancel)
	p.db = db
	return p, nil
}

// sharedContext returns the parent of LayoutTabs pages, creating it on
// first use: a blank tab of its own in the browser's default context (its
// profile on disk), not a page, so closing any page leaves the others
// alone; it lives as long as the browser.
func (b *Browser) sharedContext(ctx context.Context) (context.Context, error) {
	b.sharedMu.Lock()
	defer b.sharedMu.Unlock()
	if b.shared != nil {
		return b.shared, nil
	}
	sctx, cancel := chromedp.NewContext(b.ctx) // the browser's default context
	if err := start(ctx, sctx, b.cfg.StartTimeout); err != nil {
		cancel()
		return nil, fmt.Errorf("open the tabs' parent tab: %w", err)
	}
	b.shared = sctx
	return sctx, nil
}

// Close stops Chromium and removes its profile directory; pages still open
// die with it. It waits up to 10s for a graceful exit, then kills it.
func (b *Browser) Close() error {
	if b.trace != nil {
		if err := b.trace.stop(b.ctx); err != nil {
			b.cfg.Logf("%v", err)
		}
		b.trace = nil
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	err := chromedp.Cancel(ctx)
	b.cancel()
	b.allocCancel()
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		err = nil // killed rather than closed: nothing left to report
	}
	return err
}

// saveEvidence writes a PNG into Config.EvidenceDir under a new name made
// from name, and returns its path.
func (b *Browser) saveEvidence(name string, png []byte) (string, error) {
	if err := os.MkdirAll(b.cfg.EvidenceDir, 0o755); err != nil {
		return "", err
	}
	safe := strings.Map(func(r rune) rune {
		if r == '-' || r == '.' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) {
			return r
		}
		return '_'
	}, name)
	f, err := os.CreateTemp(b.cfg.EvidenceDir, safe+"-*.png")
	if err != nil {
		return "", err
	}
	if _, err := f.Write(png); err != nil {
		f.Close()
		return "", err
	}
	return f.Name(), f.Close()
}
