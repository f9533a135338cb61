package harness

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/webclient/driver"
	"github.com/linksim/linksim/webclient/static"
)

// floorPackage is the minimal Go WebAssembly page BenchmarkBrowserPairing
// measures beside the app: Go's start and the app's QR drawing, nothing
// else.
const floorPackage = "github.com/linksim/linksim/webclient/floor"

// floorSteps are the floor page's start-up steps, as driver.Timeline and
// its marks name them, then "visible": when the harness saw its QR screen.
var floorSteps = []string{"html", "dom", "wasm.fetched", "wasm.ready", "go.main", "qr.drawn", "visible"}

// buildFloor builds the floor page into a directory of b's, as the harness
// builds the app (static.Build), and returns the directory and its
// app.wasm's size in bytes.
func buildFloor(ctx context.Context, b *testing.B) (string, int64) {
	dir := b.TempDir()
	ctx, cancel := context.WithTimeout(ctx, webAppTimeout)
	defer cancel()
	if err := static.Build(ctx, dir, static.BuildOptions{Package: floorPackage, Names: BrowserConfig.Profiled()}); err != nil {
		b.Fatal(err)
	}
	return dir, wasmSize(b, dir)
}

// wasmSize is the size in bytes of the app.wasm in dir.
func wasmSize(b *testing.B, dir string) int64 {
	info, err := os.Stat(filepath.Join(dir, "app.wasm"))
	if err != nil {
		b.Fatal(err)
	}
	return info.Size()
}

// serveFloor serves the floor page built in dir as env's relay serves the
// app (static.Handler, the page carrying the relay's key), until b ends,
// and returns its base URL.
func serveFloor(b *testing.B, env *Env, dir string) string {
	srv := httptest.NewServer(static.Handler(env.Relay().Key(), os.DirFS(dir)))
	b.Cleanup(srv.Close)
	return srv.URL
}

// floorBoot opens the floor page in a new page of layout's shared browser,
// as Env.Browser opens the app, with a payload of the app's shape and
// size (e2e.QR), waits for its QR screen, and returns its start-up
// timeline with "visible". It fails b unless the code on screen reads back
// as the payload.
func floorBoot(ctx context.Context, b *testing.B, layout, base, name string) bootTimes {
	br, err := sharedBrowser(ctx, layout)
	if err != nil {
		b.Fatal(err)
	}
	p, err := br.NewPage(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	payload := e2e.QR{Ref: base64.RawURLEncoding.EncodeToString(random(16)), NoiseKey: random(32), IdentityKey: random(33), AdvSecret: random(32)}.String()
	if err := p.Open(ctx, base+"/?"+url.Values{"name": {name}, "payload": {payload}}.Encode()); err != nil {
		b.Fatal(err)
	}
	if err := p.WaitScreen(ctx, driver.ScreenQR); err != nil {
		b.Fatal(err)
	}
	boot := bootOf(ctx, b, p, time.Now())
	q, err := p.ReadQR(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if q.Payload != payload {
		b.Fatalf("%s: the floor page's code reads %q, want %q", name, q.Payload, payload)
	}
	return boot
}

// random is n random bytes.
func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return b
}

// reportFloor logs every floor page's timeline and reports each step's
// median as floor.<step>-p50-ms, the floor's app.wasm size, and how many
// times the floor's time the app took to draw its code (app, the median
// of the app's boot.qr.drawn; 0 for none).
func reportFloor(b *testing.B, floors []bootTimes, size int64, app float64) {
	medians := reportBoots(b, "floor page start-up timelines (ms since navigation start)", "floor.", floorSteps, floors)
	b.ReportMetric(float64(size), "floor.wasm-bytes")
	if f := medians["qr.drawn"]; f > 0 && app > 0 {
		b.ReportMetric(app/f, "qr.drawn-x-floor")
	}
}
