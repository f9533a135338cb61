package scenarios

import (
	"context"
	"fmt"

	"github.com/linksim/linksim/harness"
)

// narrowWidth is the narrowest window the web app's landing page is laid
// out for: a small phone's screen.
const narrowWidth, narrowHeight = 320, 568

// browserNarrowWindow narrows a page that already shows its code to 320
// px, as a user shrinking the window would. The page must redraw the code
// to fit: ReadQR fails with driver.ErrQRHidden, naming what the screen
// shows, unless the whole code is in the window and nothing covers it.
func browserNarrowWindow(ctx context.Context, env *harness.Env) error {
	alice, _, err := withHistory(ctx, env)
	if err != nil {
		return err
	}
	w, err := env.Browser(ctx, alice.Name+"/browser-1")
	if err != nil {
		return err
	}
	if err := w.SetViewport(ctx, narrowWidth, narrowHeight); err != nil {
		return err
	}
	if _, err := env.LinkBrowser(ctx, alice.Phone, w); err != nil {
		return fmt.Errorf("in a %dx%d window: %w", narrowWidth, narrowHeight, err)
	}
	return lists(ctx, w, "Bob", "")
}
