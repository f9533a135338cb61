package harness_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/webclient/driver"
)

// Two web clients opened as tabs of one browser context link as two devices
// of one account, each keeping its own state across a reload; in the
// default layout each page has a browser context of its own.
func TestBrowserTabsLinkAsDistinctDevices(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t.Cleanup(func() { harness.CloseBrowsers() })
	env := harness.Start(t, harness.Config{BrowserLayout: driver.LayoutTabs})
	alice, err := env.NewUser(ctx, "alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	var webs [2]*harness.Web
	var devs [2]uint32
	for i := range webs {
		if webs[i], err = env.Browser(ctx, "alice/web-"+string(rune('1'+i))); err != nil {
			t.Fatal(err)
		}
		if devs[i], err = env.LinkBrowser(ctx, alice.Phone, webs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if webs[0].BrowserContext() == "" || webs[0].BrowserContext() != webs[1].BrowserContext() {
		t.Fatalf("tabs in browser contexts %q and %q, want one", webs[0].BrowserContext(), webs[1].BrowserContext())
	}
	if devs[0] == devs[1] {
		t.Fatalf("both tabs linked as device %d", devs[0])
	}
	linked, err := alice.Phone.LinkedDevices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if !slices.Contains(linked, d) {
			t.Errorf("device %d not among the phone's linked devices %v", d, linked)
		}
	}
	// Had the tabs shared a database, the first tab would come back from a
	// reload with the second's identity, and its logout would unlink the
	// second device instead of its own.
	if err := webs[0].Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := webs[0].WaitScreen(ctx, driver.ScreenLinked); err != nil {
		t.Fatal(err)
	}
	if err := webs[0].Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if err := harness.Await(ctx, "only the second tab's device left linked", func() error {
		linked, err := alice.Phone.LinkedDevices(ctx)
		if err == nil && !slices.Equal(linked, devs[1:]) {
			err = fmt.Errorf("linked devices %v", linked)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if s, err := webs[1].Screen(ctx); err != nil || s != driver.ScreenLinked {
		t.Fatalf("the second tab shows the %q screen (%v) after the first logged out", s, err)
	}

	isolated := harness.Start(t, harness.Config{})
	var contexts []string
	for _, name := range []string{"carol/web-1", "carol/web-2"} {
		w, err := isolated.Browser(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		contexts = append(contexts, w.BrowserContext())
	}
	if contexts[0] == contexts[1] || slices.Contains(contexts, webs[0].BrowserContext()) {
		t.Errorf("default layout's pages in browser contexts %q (tabs: %q), want one each", contexts, webs[0].BrowserContext())
	}
}

// Every page of the tabs layout after the first takes app.wasm from the
// browser's cache, with no byte over the network (the page logs how many
// bytes its app.wasm took); in the context layout each page fetches it all.
func TestBrowserTabsShareTheAppCache(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t.Cleanup(func() { harness.CloseBrowsers() })
	for _, layout := range []string{driver.LayoutTabs, driver.LayoutContext} {
		env := harness.Start(t, harness.Config{BrowserLayout: layout})
		for i := range 3 {
			w, err := env.Browser(ctx, fmt.Sprintf("%s-%d", layout, i+1))
			if err != nil {
				t.Fatal(err)
			}
			got, err := wasmTransferred(w.ConsoleLogs())
			if err != nil {
				t.Fatal(err)
			}
			if cached := layout == driver.LayoutTabs && i > 0; cached != (got == 0) {
				t.Errorf("%s page %d: app.wasm took %d bytes over the network, want it from the cache: %v", layout, i+1, got, cached)
			}
			w.Close()
		}
	}
}

// wasmTransferred reads how many bytes app.wasm took over the network from
// the page's console line "app.wasm compiled ... (N bytes transferred, ...".
func wasmTransferred(console []string) (int, error) {
	for _, line := range console {
		var ms, n int
		if i := strings.Index(line, "linksim: app.wasm compiled"); i >= 0 {
			if _, err := fmt.Sscanf(line[i:], "linksim: app.wasm compiled %d ms after navigation (%d bytes transferred", &ms, &n); err != nil {
				return 0, fmt.Errorf("console line %q: %w", line, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("no app.wasm line in the console: %q", console)
}

// A page's start-up timeline (driver.Timeline) has every step, in order,
// up to the QR code drawn, in both layouts.
func TestBrowserPageTimeline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t.Cleanup(func() { harness.CloseBrowsers() })
	steps := []string{"html", "wasm.fetched", "wasm.ready", "go.main", "state.opened", "keys.noise", "keys.identity", "ws.open", "relay.dialled", "frame.sent", "pair.started", "pair.ref", "qr.ref", "qr.drawn"}
	for _, layout := range []string{driver.LayoutTabs, driver.LayoutContext} {
		env := harness.Start(t, harness.Config{BrowserLayout: layout})
		for i := range 2 {
			name := fmt.Sprintf("%s-%d", layout, i+1)
			w, err := env.Browser(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			tl, err := w.Timeline(ctx)
			if err != nil {
				t.Fatal(err)
			}
			last := 0.0
			for _, s := range steps {
				at, ok := tl.Steps[s]
				if !ok || at < last {
					t.Errorf("%s: start-up step %s at %.1f ms (recorded %v), want it after the one before (%.1f ms); timeline %v", name, s, at, ok, last, tl.Steps)
				}
				last = max(last, at)
			}
			w.Close()
		}
	}
}
