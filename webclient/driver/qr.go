package driver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/linksim/linksim/phone/camera"
)

// QR is one QR code read off the screen, with when each step finished.
type QR struct {
	Payload string
	PNG     []byte // the element screenshot it was decoded from
	// Visible is when the code was first seen drawn during this read (the
	// start of the read if it already showed), Shot when its screenshot
	// arrived, Decoded when the payload was read from the pixels.
	Visible, Shot, Decoded time.Time
	// Attempts counts screenshots taken; more than one means a read was
	// thrown away (the code rotated or was redrawn mid-read, or did not
	// decode).
	Attempts int
}

// ScreenshotTime is how long the screenshot took once the code was visible.
func (q QR) ScreenshotTime() time.Duration { return q.Shot.Sub(q.Visible) }

// DecodeTime is how long decoding the screenshot took.
func (q QR) DecodeTime() time.Duration { return q.Decoded.Sub(q.Shot) }

// qrState is what the page says about its QR code without giving its
// payload away: the screen, whether the canvas has a size, and every data-*
// attribute of the qr element (an app that marks the ref's position or
// expiry there lets a read notice a rotation; one that does not still gets
// its screen checked).
type qrState struct {
	Screen string `json:"screen"`
	Drawn  bool   `json:"drawn"`
	Stamp  string `json:"stamp"`
}

const qrStateJS = `(() => {
	const root = document.querySelector('[data-testid="app"]');
	const qr = document.querySelector('[data-testid="qr"]');
	const canvas = qr && (qr.tagName === "CANVAS" ? qr : qr.querySelector("canvas"));
	return {
		screen: (root && root.dataset.screen) || "",
		drawn: !!(canvas && canvas.width > 0 && canvas.height > 0 && qr.checkVisibility()),
		stamp: qr ? JSON.stringify(Object.entries(qr.dataset)) : "",
	};
})()`

func (p *Page) qrState(ctx context.Context) (qrState, error) {
	return eval[qrState](ctx, p, "read QR state", qrStateJS)
}

// waitQR waits until a QR code is drawn and returns its state.
func (p *Page) waitQR(ctx context.Context) (qrState, error) {
	var st qrState
	err := p.wait(ctx, "a QR code on screen", func(ctx context.Context) (bool, string, error) {
		var err error
		if st, err = p.qrState(ctx); err != nil {
			return false, "", err
		}
		if st.Screen == ScreenExpired {
			return false, "", fmt.Errorf("%s: waiting for a QR code: %w", p.Name(), ErrExpired)
		}
		return st.Screen == ScreenQR && st.Drawn, fmt.Sprintf("the %q screen", st.Screen), nil
	})
	return st, err
}

// ErrExpired means the page shows "QR code expired - click to reload".
var ErrExpired = errors.New("the QR code expired")

// QRScreenshot waits for a QR code and returns a PNG screenshot of the
// element: exactly what a phone camera pointed at the screen would see.
func (p *Page) QRScreenshot(ctx context.Context) ([]byte, error) {
	if _, err := p.waitQR(ctx); err != nil {
		return nil, err
	}
	return p.qrShot(ctx)
}

func (p *Page) qrShot(ctx context.Context) ([]byte, error) {
	return run(ctx, p, "screenshot QR code", chromedp.Screenshot(testID("qr"), chromedp.RetryInterval(pollEvery)))
}

// QRImage is QRScreenshot decoded into an image, for phone.ScanImage.
func (p *Page) QRImage(ctx context.Context) (image.Image, error) {
	b, err := p.QRScreenshot(ctx)
	if err != nil {
		return nil, err
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: QR screenshot: %w", p.Name(), err)
	}
	return img, nil
}

// maxQRAttempts bounds the screenshots one ReadQR takes.
const maxQRAttempts = 20

// ReadQR reads the QR code on screen from its pixels: it waits until one is
// drawn, screenshots the element and decodes it with phone/camera. A read
// is thrown away and taken again when the screenshot does not decode, or
// when the code rotated meanwhile (the screen changed, or the qr element's
// data attributes did). It fails with ErrExpired on the expired screen.
func (p *Page) ReadQR(ctx context.Context) (QR, error) {
	var q QR
	for {
		before, err := p.waitQR(ctx)
		if err != nil {
			return q, err
		}
		if q.Visible.IsZero() {
			q.Visible = time.Now()
		}
		shot, err := p.qrShot(ctx)
		if err != nil {
			return q, err
		}
		q.Attempts++
		q.Shot = time.Now()
		payload, derr := camera.DecodePNG(shot)
		q.Decoded = time.Now()
		after, err := p.qrState(ctx)
		if err != nil {
			return q, err
		}
		if derr == nil && after == before {
			q.Payload, q.PNG = payload, shot
			return q, nil
		}
		if derr != nil && !errors.Is(derr, camera.ErrNoQR) {
			return q, fmt.Errorf("%s: read QR code: %w", p.Name(), derr)
		}
		if ctx.Err() != nil || q.Attempts == maxQRAttempts {
			err := fmt.Errorf("%s: no stable, readable QR code in %d screenshots (last decode: %v)", p.Name(), q.Attempts, derr)
			if ctx.Err() != nil {
				err = fmt.Errorf("%w: %w", err, ctx.Err())
			}
			return q, err
		}
	}
}

// ReloadQR clicks "QR code expired - click to reload".
func (p *Page) ReloadQR(ctx context.Context) error {
	return p.click(ctx, "click reload on the expired QR code", testID("qr-reload"))
}

// ExpiredText returns the text the expired screen shows ("" elsewhere).
func (p *Page) ExpiredText(ctx context.Context) (string, error) {
	return eval[string](ctx, p, "read expired QR text", `(() => {
		const e = document.querySelector('[data-testid="qr-expired"]');
		return e && e.checkVisibility() ? e.textContent.trim() : "";
	})()`)
}
