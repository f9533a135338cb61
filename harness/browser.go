package harness

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/linksim/linksim/webclient/driver"
	"github.com/linksim/linksim/webclient/static"
)

// browsers is the process's Chromium, one per layout, shared by every Env:
// starting one costs over a second and ~200 MB, a page in it ~0.5 s and
// ~55 MB. In the default layout each web client still gets its own browser
// context, so nothing leaks between specs. The web app is built once per
// process too.
var browsers struct {
	mu sync.Mutex
	b  map[string]*driver.Browser // by driver.Config.Layout

	appMu sync.Mutex // held while building, apart from mu: a build is long
	app   string     // directory of the built app (app.wasm, wasm_exec.js)
}

// BrowserConfig configures the shared Chromium; set it before the first
// browser web client starts. Its zero value runs /usr/lib/chromium/chromium
// with one browser context per page; Config.BrowserLayout overrides its
// Layout per Env.
var BrowserConfig driver.Config

// sharedBrowser returns the process's Chromium for layout ("" for
// BrowserConfig's), starting it (again, if it died) on first use.
func sharedBrowser(ctx context.Context, layout string) (*driver.Browser, error) {
	cfg := BrowserConfig
	if layout != "" {
		cfg.Layout = layout
	}
	if cfg.Layout == "" {
		cfg.Layout = driver.LayoutContext
	}
	browsers.mu.Lock()
	defer browsers.mu.Unlock()
	if b := browsers.b[cfg.Layout]; b != nil {
		select {
		case <-b.Done():
			b.Close()
			delete(browsers.b, cfg.Layout)
		default:
			return b, nil
		}
	}
	if cfg.EvidenceDir == "" {
		cfg.EvidenceDir = ArtifactsDir() // kept with the other failure artifacts
	}
	b, err := driver.Launch(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	if browsers.b == nil {
		browsers.b = make(map[string]*driver.Browser)
	}
	browsers.b[cfg.Layout] = b
	return b, nil
}

// CloseBrowsers stops the process's shared Chromiums and removes the built
// web app. Suites call it once at the end (AfterSuite), programs before they
// exit; an Env that needs a browser afterwards starts a new one. (Chromium
// is also killed if this process dies without calling it.)
func CloseBrowsers() error {
	browsers.mu.Lock()
	defer browsers.mu.Unlock()
	var err error
	for layout, b := range browsers.b {
		err = errors.Join(err, b.Close())
		delete(browsers.b, layout)
	}
	browsers.appMu.Lock()
	defer browsers.appMu.Unlock()
	if browsers.app != "" {
		err = errors.Join(err, os.RemoveAll(browsers.app))
		browsers.app = ""
	}
	return err
}

// webAppTimeout bounds building the web app: a first build with a cold Go
// build cache takes over a minute on two cores; later ones only relink.
const webAppTimeout = 5 * time.Minute

// webAppDir builds the web app (the client compiled to WebAssembly) into a
// directory of this process, once.
func webAppDir(ctx context.Context) (string, error) {
	browsers.appMu.Lock()
	defer browsers.appMu.Unlock()
	if browsers.app != "" {
		return browsers.app, nil
	}
	// One directory per process: test binaries of several packages run at
	// once, and must not write one app.wasm while another serves it.
	dir, err := os.MkdirTemp("", "linksim-webapp-")
	if err != nil {
		return "", fmt.Errorf("harness: build web app: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, webAppTimeout)
	defer cancel()
	// A profiled browser gets an app that names its functions.
	if err := static.Build(ctx, dir, static.BuildOptions{Names: BrowserConfig.Profiled()}); err != nil {
		os.RemoveAll(dir)
		// A failed build is not cached: a cancelled spec must not doom the
		// next ones.
		return "", fmt.Errorf("harness: %w", err)
	}
	browsers.app = dir
	return dir, nil
}

// webApp is the embedded relay's relay.Config.Web in harness Envs: the
// browser web client, built on the first request (or by Env.Browser, which
// builds before it opens a page), so Envs without browsers never build it.
func webApp(relayKey []byte) http.Handler {
	var (
		mu sync.Mutex
		h  http.Handler
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if h == nil {
			dir, err := webAppDir(r.Context())
			if err != nil {
				mu.Unlock()
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			h = static.Handler(relayKey, os.DirFS(dir))
		}
		mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// PrepareBrowsers builds the web app and starts the shared Chromium ahead
// of the first browser web client, so that a cold build (over a minute on
// two cores) is not paid inside a scenario's time budget. Suites call it
// before their browser specs; Env.Browser does the same on demand.
func PrepareBrowsers(ctx context.Context) error {
	if _, err := webAppDir(ctx); err != nil {
		return err
	}
	_, err := sharedBrowser(ctx, "")
	return err
}
