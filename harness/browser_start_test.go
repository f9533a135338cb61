package harness

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/linksim/linksim/webclient/driver"
)

// While the app starts, its pairing screen is in the page and laid out
// (not hidden, which leaves it no layout box) but unseen (landing-waiting):
// the browser lays it out while the app waits for the relay, so the task
// that draws the first QR code does not (docs/performance.md, "Page opened
// -> QR drawn, session 8").
func TestStartingPageLaysOutThePairingScreenUnseen(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Cleanup(func() { CloseBrowsers() })
	env := Start(t, Config{})
	dir, err := webAppDir(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sharedBrowser(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	page, err := b.NewPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer page.Close()
	// Port 1 refuses: the app stays on its starting screen, retrying.
	if err := page.Open(ctx, env.appURL(dir)+"/?name=alice/web-1&ws=ws://127.0.0.1:1/ws"); err != nil {
		t.Fatal(err)
	}
	if err := page.WaitScreen(ctx, driver.ScreenStarting); err != nil {
		t.Fatal(err)
	}
	landing := regexp.MustCompile(`<div class="landing[^"]*"[^>]*>`)
	for {
		html, err := page.HTML(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// The app has rendered once it says why it cannot start.
		if !regexp.MustCompile(`data-testid="starting-error"[^>]*>Cannot reach the relay`).MatchString(html) {
			if ctx.Err() != nil {
				t.Fatalf("the starting screen never said the relay cannot be reached; page:\n%s", html)
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if got := landing.FindString(html); got != `<div class="landing landing-waiting">` {
			t.Fatalf("on the starting screen the pairing screen is %q, want it laid out unseen: %q", got, `<div class="landing landing-waiting">`)
		}
		return
	}
}
