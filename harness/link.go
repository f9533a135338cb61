package harness

import (
	"context"
	"fmt"
	"time"

	"github.com/linksim/linksim/phone"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/webclient/app"
)

// Step names the harness records (besides the ledger's msg.* steps).
const (
	StepLinked     = "pair.linked"      // phone scan -> companion linked
	StepChatsShown = "pair.chats_shown" // phone scan -> history's chats listed
)

// CatchUpStep names the step "a device back online received its backlog of
// n messages": reconnect.catch_up.<n>, so reports show catch-up time
// against backlog size.
func CatchUpStep(n int) string { return fmt.Sprintf("reconnect.catch_up.%d", n) }

// QRScreen is a native web client of any topology while it pairs.
type QRScreen interface {
	Changed() <-chan struct{}
	Screen() (app.Screen, device.Ref, error)
}

// CurrentQR waits for the client's QR screen and returns the ref shown.
// Native clients hand over the payload; browser clients are read from pixels
// by the browser driver instead.
func CurrentQR(ctx context.Context, c QRScreen) (device.Ref, error) {
	return NextQR(ctx, c, device.Ref{})
}

// NextQR waits for the client to show a ref other than prev (rotation).
func NextQR(ctx context.Context, c QRScreen, prev device.Ref) (device.Ref, error) {
	for {
		changed := c.Changed()
		screen, ref, err := c.Screen()
		if screen == app.ScreenQR && ref.QR != prev.QR {
			return ref, nil
		}
		if screen == app.ScreenExpired {
			return device.Ref{}, fmt.Errorf("QR code expired: %w", err)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return device.Ref{}, fmt.Errorf("waiting for a QR code: %w", ctx.Err())
		}
	}
}

// Link pairs a native companion with p: it reads the QR the client shows,
// scans it with the phone and waits until the client is linked. It records
// pair.linked, and pair.chats_shown once the client lists the history's
// chats (which may come after Link returns; a phone with no chats sends
// none to show).
func (e *Env) Link(ctx context.Context, p *phone.Phone, c *app.Client) (*device.Device, error) {
	start, err := e.scan(ctx, p, c)
	if err != nil {
		return nil, err
	}
	d, err := c.WaitLinked(ctx)
	if err != nil {
		return nil, err
	}
	e.rec.learn(d.Self(), d.Name())
	e.rec.rec.Step(StepLinked, d.Name(), time.Since(start))
	return d, nil
}

// scan has p scan the QR code c shows and returns when it started.
func (e *Env) scan(ctx context.Context, p *phone.Phone, c QRScreen) (time.Time, error) {
	ref, err := CurrentQR(ctx, c)
	if err != nil {
		return time.Time{}, err
	}
	start := time.Now()
	e.rec.scanned(p.Self().User, start)
	_, err = p.Scan(ctx, ref.QR)
	return start, err
}
