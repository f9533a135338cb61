package driver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"strings"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/linksim/linksim/phone/camera"
)

// QR is one QR code read off the screen, with when each step finished.
type QR struct {
	Payload string
	PNG     []byte      // the element screenshot it was decoded from
	Image   image.Image // PNG decoded, for a phone camera to look at
	// Visible is when the code was first seen drawn during this read (the
	// start of the read if it already showed), Shot when its screenshot
	// arrived, Decoded when the payload was read from the pixels. Of the
	// last screenshot, Asked is when it was asked for (the code was seen
	// drawn and wholly in view) and Pixels when its PNG was decoded.
	Visible, Asked, Shot, Pixels, Decoded time.Time
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

// qrStateFn is a JavaScript function returning the page's qrState.
const qrStateFn = `() => {
	const root = document.querySelector('[data-testid="app"]');
	const qr = document.querySelector('[data-testid="qr"]');
	const canvas = qr && (qr.tagName === "CANVAS" ? qr : qr.querySelector("canvas"));
	return {
		screen: (root && root.dataset.screen) || "",
		drawn: !!(canvas && canvas.width > 0 && canvas.height > 0 && qr.checkVisibility()),
		stamp: qr ? JSON.stringify(Object.entries(qr.dataset)) : "",
	};
}`

func (p *Page) qrState(ctx context.Context) (qrState, error) {
	return eval[qrState](ctx, p, "read QR state", "("+qrStateFn+")()")
}

// qrLook is one look at the page: its qrState and, once a code is drawn on
// the QR screen, the code scrolled into view and where it is (qrView). One
// round trip to a page that may be busy making its keys, where a read of
// the state and then one of the view took two.
type qrLook struct {
	State qrState `json:"state"`
	View  qrView  `json:"view"`
}

var qrLookJS = `(() => {
	const state = (` + qrStateFn + `)();
	const shown = state.screen === "` + ScreenQR + `" && state.drawn;
	return {state, view: shown ? (` + qrViewFn + `)() : {found: false}};
})()`

// waitQR waits until a QR code is drawn and returns the look that saw it.
func (p *Page) waitQR(ctx context.Context) (qrLook, error) {
	var look qrLook
	err := p.wait(ctx, "a QR code on screen", func(ctx context.Context) (bool, string, error) {
		var err error
		if look, err = eval[qrLook](ctx, p, "look at the QR code", qrLookJS); err != nil {
			return false, "", err
		}
		st := look.State
		if st.Screen == ScreenExpired {
			return false, "", fmt.Errorf("%s: waiting for a QR code: %w", p.Name(), ErrExpired)
		}
		return st.Screen == ScreenQR && st.Drawn, fmt.Sprintf("the %q screen", st.Screen), nil
	})
	return look, err
}

// ErrExpired means the page shows "QR code expired - click to reload".
var ErrExpired = errors.New("the QR code expired")

// ErrQRHidden means a QR code is drawn but not wholly on screen, even
// scrolled into view: the window is too small for it, or something covers
// it. A phone could not scan it; its error says what the screen showed.
var ErrQRHidden = errors.New("the QR code is not fully visible")

// qrView is where the QR element is once scrolled into view, in CSS
// pixels of the viewport, and what covers it, if anything; Clip is its box
// in page coordinates, whole pixels, as a screenshot clip.
type qrView struct {
	Clip   page.Viewport `json:"clip"`
	Found  bool          `json:"found"`
	Left   float64       `json:"left"`
	Top    float64       `json:"top"`
	Right  float64       `json:"right"`
	Bottom float64       `json:"bottom"`
	Width  float64       `json:"width"`
	Height float64       `json:"height"`
	Cover  string        `json:"cover"`
}

// qrViewFn is a JavaScript function that scrolls the code into view (a
// narrow window pushes it below or beside the fold, inside the page's
// scrolling boxes) and returns its qrView. The hit test at its corners and
// centre catches what the box cannot: an overlay on top of it, or an
// ancestor that clips it.
const qrViewFn = `() => {
	const qr = document.querySelector('[data-testid="qr"]');
	if (!qr) return {found: false};
	qr.scrollIntoView({block: "nearest", inline: "nearest"});
	const r = qr.getBoundingClientRect();
	const d = document.documentElement.getBoundingClientRect();
	const x = Math.round(r.left - d.left), y = Math.round(r.top - d.top);
	const v = {found: true, left: r.left, top: r.top, right: r.right, bottom: r.bottom,
		width: document.documentElement.clientWidth, height: document.documentElement.clientHeight, cover: "",
		clip: {x, y, width: Math.round(r.right - d.left) - x, height: Math.round(r.bottom - d.top) - y, scale: 1}};
	const inset = Math.min(2, r.width / 4, r.height / 4);
	for (const [x, y] of [[r.left + inset, r.top + inset], [r.right - inset, r.top + inset],
		[r.left + inset, r.bottom - inset], [r.right - inset, r.bottom - inset],
		[(r.left + r.right) / 2, (r.top + r.bottom) / 2]]) {
		const e = document.elementFromPoint(x, y);
		if (e === qr || qr.contains(e)) continue;
		v.cover = !e ? "nothing (off screen)" : e.dataset.testid ? '[data-testid="' + e.dataset.testid + '"]' :
			e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (typeof e.className === "string" && e.className ? "." + e.className.split(" ")[0] : "");
		break;
	}
	return v;
}`

// edgeSlack is how far, in CSS pixels, a box may poke past the viewport
// and still count as inside: layout puts boxes at fractional positions.
const edgeSlack = 1

// inside reports whether the code's whole box is in the viewport and
// nothing covers it.
func (v qrView) inside() bool {
	return v.Found && v.Right > v.Left && v.Bottom > v.Top && v.Cover == "" &&
		v.Left >= -edgeSlack && v.Top >= -edgeSlack && v.Right <= v.Width+edgeSlack && v.Bottom <= v.Height+edgeSlack
}

func (v qrView) String() string {
	if !v.Found {
		return "no QR element"
	}
	s := fmt.Sprintf("its box (%.0f,%.0f)-(%.0f,%.0f) in a %.0fx%.0f viewport", v.Left, v.Top, v.Right, v.Bottom, v.Width, v.Height)
	if v.Cover != "" {
		s += ", covered by " + v.Cover
	}
	return s
}

// qrSettle is how long a code may take to come wholly into view: a page
// lays itself out again, and may redraw its code, after a resize.
const qrSettle = 500 * time.Millisecond

// showQR returns where the QR code is, given v, the first look at it, or
// fails with ErrQRHidden, saying what is on screen, unless the whole code
// is visible within qrSettle: it scrolls the code into view and looks
// again until then. It looks at least once after qrSettle has passed, so a
// slow machine cannot make it fail on a look it never took.
func (p *Page) showQR(ctx context.Context, v qrView) (qrView, error) {
	settled := time.Now().Add(qrSettle)
	for !v.inside() {
		if time.Now().After(settled) {
			return v, p.onScreen(ctx, fmt.Errorf("%s: %w: %s", p.Name(), ErrQRHidden, v))
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("%s: waiting for the whole QR code in view; saw %s: %w", p.Name(), v, ctx.Err())
		case <-time.After(pollEvery):
		}
		var err error
		if v, err = eval[qrView](ctx, p, "scroll the QR code into view", "("+qrViewFn+")()"); err != nil {
			return v, err
		}
	}
	return v, nil
}

// maxVisibleText bounds the visible text an error quotes.
const maxVisibleText = 300

// onScreen adds to err what the window shows: a screenshot of the viewport
// saved in Config.EvidenceDir, and the page's visible text.
func (p *Page) onScreen(ctx context.Context, err error) error {
	var where string
	shot, serr := run(ctx, p, "screenshot the viewport", chromedp.CaptureScreenshot())
	if serr == nil {
		where, serr = p.b.saveEvidence(p.Name()+"-screen", shot)
	}
	if serr != nil {
		where = fmt.Sprintf("none (%v)", serr)
	}
	text, terr := eval[string](ctx, p, "read visible text", `document.body ? document.body.innerText : ""`)
	if terr != nil {
		text = fmt.Sprintf("(unreadable: %v)", terr)
	}
	text = strings.Join(strings.Fields(text), " ")
	if len(text) > maxVisibleText {
		text = text[:maxVisibleText] + "…"
	}
	return fmt.Errorf("%w; the screen (saved in %s) read %q", err, where, text)
}

// QRScreenshot waits for a QR code, scrolls it into view and returns a PNG
// screenshot of the element: exactly what a phone camera pointed at the
// screen would see. It fails with ErrQRHidden when the code is not wholly
// visible.
func (p *Page) QRScreenshot(ctx context.Context) ([]byte, error) {
	look, err := p.waitQR(ctx)
	if err != nil {
		return nil, err
	}
	v, err := p.showQR(ctx, look.View)
	if err != nil {
		return nil, err
	}
	return p.qrShot(ctx, v.Clip)
}

// qrShot screenshots clip, the QR element's box that showQR found, as the
// screen shows it. It captures the viewport only: showQR has checked the
// code is inside it, and capturing beyond the viewport (chromedp's element
// screenshot) resizes the page for a moment, which makes a responsive page
// redraw its code under the camera. A code that moved meanwhile is caught
// by ReadQR's look at the page's state after the shot.
func (p *Page) qrShot(ctx context.Context, clip page.Viewport) ([]byte, error) {
	return run(ctx, p, "screenshot QR code", func(ctx context.Context, t *chromedp.Target) ([]byte, error) {
		if clip.Width <= 0 || clip.Height <= 0 {
			return nil, fmt.Errorf("the QR element has no size (%gx%g)", clip.Width, clip.Height)
		}
		fromSurface := true
		res, err := cdp.Call(ctx, t, page.CaptureScreenshot, page.CaptureScreenshotParams{
			Format: page.CaptureScreenshotFormatPng, Clip: &clip, FromSurface: &fromSurface,
		})
		if err != nil {
			return nil, err
		}
		return res.Data, nil
	})
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

// maxQRAttempts bounds the screenshots one ReadQR takes while the code
// keeps rotating; maxUnreadable bounds those of a code that stayed put but
// did not decode: a picture of a steady, fully visible code that fails
// twice will fail again, so the read ends with what the screen showed.
const (
	maxQRAttempts = 20
	maxUnreadable = 2
)

// ReadQR reads the QR code on screen from its pixels: it waits until one is
// drawn, scrolls it into view, checks the whole code is visible (else
// ErrQRHidden at once), screenshots the element and decodes it with
// phone/camera. A read is thrown away and taken again when the code rotated
// meanwhile (the screen changed, or the qr element's data attributes did),
// or once when the screenshot does not decode. It fails with ErrExpired on
// the expired screen. Its errors say what the screen showed: a saved
// screenshot and the visible text.
func (p *Page) ReadQR(ctx context.Context) (QR, error) {
	var q QR
	unreadable := 0
	for {
		look, err := p.waitQR(ctx)
		if err != nil {
			return q, err
		}
		before := look.State
		if q.Visible.IsZero() {
			q.Visible = time.Now()
		}
		v, err := p.showQR(ctx, look.View)
		if err != nil {
			return q, err
		}
		q.Asked = time.Now()
		shot, err := p.qrShot(ctx, v.Clip)
		q.Attempts++
		if err != nil {
			// The code may have rotated or expired under the screenshot
			// (a canvas cleared mid-shot has no size): look again, unless
			// it stayed put.
			if now, serr := p.qrState(ctx); serr == nil && now != before && q.Attempts < maxQRAttempts {
				continue
			}
			return q, err
		}
		q.Shot = time.Now()
		img, derr := png.Decode(bytes.NewReader(shot))
		q.Pixels = time.Now()
		var payload string
		if derr == nil {
			payload, derr = camera.Decode(img)
		}
		q.Decoded = time.Now()
		after, err := p.qrState(ctx)
		if err != nil {
			return q, err
		}
		stable := after == before
		if derr == nil && stable {
			q.Payload, q.PNG, q.Image = payload, shot, img
			return q, nil
		}
		if derr != nil && !errors.Is(derr, camera.ErrNoQR) {
			return q, fmt.Errorf("%s: read QR code: %w", p.Name(), derr)
		}
		if stable {
			unreadable++
		}
		if unreadable == maxUnreadable || q.Attempts == maxQRAttempts || ctx.Err() != nil {
			err := fmt.Errorf("%s: no stable, readable QR code in %d screenshots (%d of a steady code that did not decode; last: %v)",
				p.Name(), q.Attempts, unreadable, derr)
			if ctx.Err() != nil {
				return q, fmt.Errorf("%w: %w", err, ctx.Err())
			}
			return q, p.onScreen(ctx, err)
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
