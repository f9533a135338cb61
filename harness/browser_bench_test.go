package harness

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linksim/linksim/phone/camera"
	"github.com/linksim/linksim/reports"
	"github.com/linksim/linksim/webclient/driver"
)

// BenchmarkBrowserPairing links a fresh browser web client per iteration to
// a fresh phone that has one chat, in the shared Chromium, and reports the
// pairing steps' p50 and p99 over all iterations: page opened -> QR drawn
// (qr.visible), drawn -> screenshot decoded (qr.decoded, and its parts
// qr.decoded.look, .capture, .png, .gozxing), scan -> linked screen
// (pair.linked), scan -> history's chat listed (pair.chats_shown), and
// drawn -> listed (qr.to_chats: issue 13's "QR visible -> chats shown").
// It also reports the median of each start-up step of the pages
// (driver.Timeline) as boot.<step>-p50-ms, and of each pairing step the
// page marks (pairSteps) as scan.to.<step>-p50-ms, in ms since the phone's
// scan began; with -v it logs every page's timelines. Run with -benchtime=20x or more. Each layout is a
// sub-benchmark: pages in isolated contexts fetch and compile app.wasm each
// time, tabs of one context take it from the shared HTTP and code cache.
//
// Beside each app page, untimed, it opens the floor: a minimal Go
// WebAssembly page (webclient/floor) built, served and loaded as the app
// is, that only draws a QR code of the same size as the app does. It
// reports that page's start-up steps as floor.<step>-p50-ms, its size as
// floor.wasm-bytes, the app's as app.wasm-bytes, and the app's
// boot.qr.drawn over the floor's as qr.drawn-x-floor.
func BenchmarkBrowserPairing(b *testing.B) {
	floorDir, floorSize := buildFloor(context.Background(), b)
	for _, layout := range []string{driver.LayoutContext, driver.LayoutTabs} {
		b.Run("layout="+layout, func(b *testing.B) { browserPairing(b, layout, floorDir, floorSize) })
	}
}

func browserPairing(b *testing.B, layout, floorDir string, floorSize int64) {
	ctx := context.Background()
	b.Cleanup(func() { CloseBrowsers() })
	if err := PrepareBrowsers(ctx); err != nil {
		b.Fatal(err)
	}
	rec := reports.NewRecorder()
	env := Start(b, Config{Recorder: rec, BrowserLayout: layout})
	bob, err := env.NewUser(ctx, "bob", 0)
	if err != nil {
		b.Fatal(err)
	}
	floorURL := serveFloor(b, env, floorDir)
	var boots, floors []bootTimes
	var pairs []map[string]float64
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		u, err := env.NewUser(ctx, fmt.Sprintf("user%03d", i), 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bob.Phone.SendText(ctx, u.Phone.Self().User, "hello"); err != nil {
			b.Fatal(err)
		}
		if err := Await(ctx, "the phone to get bob's message", func() error {
			if len(u.Phone.Chats()) == 0 {
				return fmt.Errorf("no chat")
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		w, err := env.Browser(ctx, u.Name+"/browser-1")
		if err != nil {
			b.Fatal(err)
		}
		visible := time.Now()
		b.StopTimer()
		boots = append(boots, bootOf(ctx, b, w.Page, visible))
		b.StartTimer()
		if _, err := env.LinkBrowser(ctx, u.Phone, w); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		pairs = append(pairs, pairingOf(ctx, b, rec, w))
		w.Close()
		floors = append(floors, floorBoot(ctx, b, layout, floorURL, fmt.Sprintf("floor%03d", i)))
		b.StartTimer()
	}
	b.StopTimer()
	m := reports.New(rec, reports.Config{}).Metrics
	for _, step := range []string{StepQRVisible, StepQRDecoded, StepQRLook, StepQRCapture, StepQRPNG, StepQRGozxing, StepLinked, StepChatsShown, StepQRToChats} {
		s := m.Summary(step)
		b.ReportMetric(float64(s.P50)/1e6, step+"-p50-ms")
		b.ReportMetric(float64(s.P99)/1e6, step+"-p99-ms")
	}
	app := reportBoots(b, "start-up timelines (ms since navigation start)", "boot.", bootSteps, boots)
	reportTimes(b, "pairing timelines (ms since the phone's scan began)", "scan.to.", pairSteps, nil, pairs)
	appDir, err := webAppDir(ctx) // built already: the directory the pages were served from
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(wasmSize(b, appDir)), "app.wasm-bytes")
	reportFloor(b, floors, floorSize, app["qr.drawn"])
}

// pairSteps are the marks a page sets from the phone's scan to its chats
// (device.Config.Mark and the app's screen.<name>, chats.listed and
// chats.painted), in the order they happen, then "seen": when the harness
// saw the chats.
// history.opened is the history the scan carried; history.decrypted one
// that came as a message instead (docs/protocol.md §10 step 8).
var pairSteps = []string{"pair.offer", "history.opened", "pair.finish", "pair.linked", "history.imported", "screen.linked", "chats.listed", "chats.painted", "online", "history.decrypted", "seen"}

// pairingOf is w's pairing timeline in ms since the phone's scan began:
// the page's marks, and "seen", when the harness saw the chats (its
// pair.chats_shown, which also dates the scan).
func pairingOf(ctx context.Context, b *testing.B, rec *reports.Recorder, w *Web) map[string]float64 {
	t, err := w.Timeline(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var shown reports.Event
	for _, e := range rec.Events() {
		if e.Kind == reports.KindStep && e.Name == StepChatsShown && e.Device == w.Name() {
			shown = e
		}
	}
	scan := rec.Start().Add(shown.At - shown.Value)
	steps := map[string]float64{"seen": float64(shown.Value.Microseconds()) / 1000}
	for _, s := range pairSteps {
		if v, ok := t.Steps[s]; ok {
			steps[s] = v - float64(scan.Sub(t.Origin).Microseconds())/1000
		}
	}
	return steps
}

// bootTimes is one page's start-up timeline (driver.Timeline), with
// "visible": when the harness saw the QR screen.
type bootTimes struct {
	steps     map[string]float64
	wasmBytes int
}

// bootSteps are the page's start-up steps in the order they happen, as
// driver.Timeline and the app's marks name them.
var bootSteps = []string{"html", "dom", "load", "wasm.fetched", "wasm.ready", "go.main", "state.opened", "keys.noise", "keys.identity", "ws.open", "relay.dialled", "frame.sent", "pair.started", "pair.ref", "qr.ref", "qr.drawn", "qr.painted", "visible"}

func bootOf(ctx context.Context, b *testing.B, p *driver.Page, visible time.Time) bootTimes {
	t, err := p.Timeline(ctx)
	if err != nil {
		b.Fatal(err)
	}
	t.Steps["visible"] = float64(visible.Sub(t.Origin).Microseconds()) / 1000
	return bootTimes{steps: t.Steps, wasmBytes: t.WasmBytes}
}

// reportBoots logs the timeline of steps of every page, ms since its
// navigation started, under title, reports each step's median as
// <prefix><step>-p50-ms and returns the medians by step.
func reportBoots(b *testing.B, title, prefix string, steps []string, boots []bootTimes) map[string]float64 {
	pages := make([]map[string]float64, len(boots))
	rows := make([]string, len(boots))
	for i, bt := range boots {
		pages[i] = bt.steps
		rows[i] = fmt.Sprintf("%d (app.wasm %d B)", i, bt.wasmBytes)
	}
	return reportTimes(b, title, prefix, steps, rows, pages)
}

// reportTimes logs the times of names of every page, under title, one row
// per page named as in rows (its index when rows is nil), and reports each
// name's median as <prefix><name>-p50-ms, which it returns by name.
func reportTimes(b *testing.B, title, prefix string, names, rows []string, pages []map[string]float64) map[string]float64 {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-24s", "page")
	for _, s := range names {
		fmt.Fprintf(&sb, " %12s", s)
	}
	for i, steps := range pages {
		row := strconv.Itoa(i)
		if rows != nil {
			row = rows[i]
		}
		fmt.Fprintf(&sb, "\n%-24s", row)
		for _, s := range names {
			if v, ok := steps[s]; ok {
				fmt.Fprintf(&sb, " %12.1f", v)
			} else {
				fmt.Fprintf(&sb, " %12s", "-")
			}
		}
	}
	b.Logf("%s:\n%s", title, sb.String())
	medians := map[string]float64{}
	for _, s := range names {
		var vs []float64
		for _, steps := range pages {
			if v, ok := steps[s]; ok {
				vs = append(vs, v)
			}
		}
		if len(vs) > 0 {
			slices.Sort(vs)
			medians[s] = vs[len(vs)/2]
			b.ReportMetric(medians[s], prefix+s+"-p50-ms")
		}
	}
	return medians
}

// BenchmarkQRDecode decodes the same browser screenshots with gozxing
// (phone/camera, in process) and with zbarimg (Debian's zbar-tools, one
// process per image, as a CI step would call it): 20 QR element
// screenshots and 20 full-page screenshots of the web app's QR screen, each
// a different ref. It reports how many images each decoder could not read.
func BenchmarkQRDecode(b *testing.B) {
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		b.Fatalf("zbarimg not found (%v): run scripts/install-chromium.sh, which installs zbar-tools", err)
	}
	shots := qrShots(b, 20)
	gozxing := func(s shot) error {
		got, err := camera.DecodePNG(s.png)
		if err == nil && got != s.payload {
			err = fmt.Errorf("read %q", got)
		}
		return err
	}
	zbarimg := func(s shot) error {
		out, err := exec.Command(zbar, "--raw", "-q", "-Sbinary", s.file).Output()
		if got := strings.TrimSuffix(string(out), "\n"); err == nil && got != s.payload {
			err = fmt.Errorf("read %q", got)
		}
		return err
	}
	for _, kind := range []string{"element", "page"} {
		for _, d := range []struct {
			name   string
			decode func(shot) error
		}{{"gozxing", gozxing}, {"zbarimg", zbarimg}} {
			b.Run(d.name+"/"+kind, func(b *testing.B) {
				unread := map[int]bool{}
				for i := range b.N {
					if err := d.decode(shots[kind][i%len(shots[kind])]); err != nil {
						unread[i%len(shots[kind])] = true
					}
				}
				// Some perfect codes defeat gozxing's detector (see
				// driver.decodeQR): count, do not fail.
				b.ReportMetric(float64(len(unread)), "unread-images")
			})
		}
	}
}

type shot struct {
	png     []byte
	file    string
	payload string
}

// qrShots opens n browser web clients and takes, of each one's QR code, an
// element screenshot and a full-page screenshot, with the payload gozxing
// read from the element (zbarimg must agree).
func qrShots(b *testing.B, n int) map[string][]shot {
	b.Helper()
	ctx := context.Background()
	b.Cleanup(func() { CloseBrowsers() })
	env := Start(b, Config{})
	dir := b.TempDir()
	out := map[string][]shot{}
	for i := range n {
		w, err := env.Browser(ctx, fmt.Sprintf("shot-%d", i))
		if err != nil {
			b.Fatal(err)
		}
		q, err := w.ReadQR(ctx)
		if err != nil {
			b.Fatal(err)
		}
		page, err := w.Screenshot(ctx)
		if err != nil {
			b.Fatal(err)
		}
		w.Close()
		for kind, png := range map[string][]byte{"element": q.PNG, "page": page} {
			file := filepath.Join(dir, fmt.Sprintf("%s-%d.png", kind, i))
			if err := os.WriteFile(file, png, 0o644); err != nil {
				b.Fatal(err)
			}
			out[kind] = append(out[kind], shot{png: png, file: file, payload: q.Payload})
		}
	}
	return out
}

// BenchmarkBrowserClients links n browser web clients (n users, each a
// phone and its web client, all in the shared Chromium), has every web
// client receive a message and answer it, and reports the proportional set
// size (PSS) of the whole Chromium process tree per web client, above an
// idle browser with no pages, and how long the round of messages took.
// -browser.pages and -browser.layout choose the sizes and the layout (the
// 200-page figure: -browser.pages 200 -browser.layout tabs).
func BenchmarkBrowserClients(b *testing.B) {
	for _, field := range strings.Split(*clientsPages, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n <= 0 {
			b.Fatalf("-browser.pages: %q is not a page count", field)
		}
		b.Run(fmt.Sprintf("pages=%d", n), func(b *testing.B) {
			for range b.N {
				browserClients(b, n, *clientsLayout)
			}
		})
	}
}

var (
	clientsPages  = flag.String("browser.pages", "5,10,20", "BenchmarkBrowserClients: the page counts to run, comma-separated")
	clientsLayout = flag.String("browser.layout", driver.LayoutContext, "BenchmarkBrowserClients: the pages' layout, context or tabs")
	clientsIdle   = flag.Duration("browser.idle", 5*time.Second, "BenchmarkBrowserClients: how long to measure the linked pages' CPU while idle")
)

// roundParallel bounds the pages read and written at once in a round of
// messages: every read is a DevTools call over one connection, and hundreds
// of pages polling at once would queue behind each other.
const roundParallel = 8

func browserClients(b *testing.B, n int, layout string) {
	ctx := context.Background()
	CloseBrowsers() // a browser of its own: its memory is this run's only
	// Hundreds of pages on two cores answer slowly at times: a capacity
	// figure, not a latency budget, so one slow click must not end it.
	saved := BrowserConfig
	BrowserConfig.ActionTimeout = time.Minute
	b.Cleanup(func() { BrowserConfig = saved })
	b.Cleanup(func() { CloseBrowsers() })
	if err := PrepareBrowsers(ctx); err != nil {
		b.Fatal(err)
	}
	browser, err := sharedBrowser(ctx, layout)
	if err != nil {
		b.Fatal(err)
	}
	time.Sleep(2 * time.Second) // let the new browser's start-up work settle
	idle := treePSS(browser.PID())
	env := Start(b, Config{BrowserLayout: layout})
	hub, err := env.NewUser(ctx, "hub", 0)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	webs := make([]*Web, n)
	for i := range webs {
		u, err := env.NewUser(ctx, fmt.Sprintf("user%03d", i), 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := hub.Phone.SendText(ctx, u.Phone.Self().User, "hello"); err != nil {
			b.Fatal(err)
		}
		if err := Await(ctx, "the phone to get the hub's message", func() error {
			if len(u.Phone.Chats()) == 0 {
				return fmt.Errorf("no chat")
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		if webs[i], err = env.Browser(ctx, u.Name+"/browser-1"); err != nil {
			b.Fatal(err)
		}
		if _, err := env.LinkBrowser(ctx, u.Phone, webs[i]); err != nil {
			b.Fatal(err)
		}
		if err := webs[i].OpenChat(ctx, hub.Phone.Self().User); err != nil {
			b.Fatal(err)
		}
	}
	linking := time.Since(start)
	// A round of messages: the hub writes to everyone, each web client
	// shows it and answers, and the hub gets every answer.
	start = time.Now()
	for i := range webs {
		if _, err := hub.Phone.SendText(ctx, env.User(fmt.Sprintf("user%03d", i)), "ping"); err != nil {
			b.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	slots := make(chan struct{}, roundParallel)
	for i, w := range webs {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			errs[i] = Await(ctx, w.Name()+" to show the ping", func() error {
				msgs, err := w.Messages(ctx)
				if err != nil {
					return err
				}
				if !slices.ContainsFunc(msgs, func(m driver.Message) bool { return m.Text == "ping" }) {
					return fmt.Errorf("not yet")
				}
				return nil
			})
			if errs[i] == nil {
				_, errs[i] = w.Send(ctx, "pong")
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	actx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := Await(actx, "every message to reach every device", func() error {
		for _, w := range webs {
			if err := w.Observe(ctx); err != nil {
				return err
			}
		}
		return env.Check()
	}); err != nil {
		b.Fatal(err)
	}
	round := time.Since(start)
	time.Sleep(2 * time.Second)
	total := treePSS(browser.PID())
	// What linked, idle web clients cost: keepalives, timers, the Go
	// runtime in each page.
	cpu0 := cpuTime(b, browser.PID())
	time.Sleep(*clientsIdle)
	idleCPU := (cpuTime(b, browser.PID()) - cpu0).Seconds() / clientsIdle.Seconds()
	b.ReportMetric(100*idleCPU, "%CPU-idle-total")
	b.ReportMetric(100*idleCPU/float64(n), "%CPU-idle/page")
	b.ReportMetric(float64(total-idle)/float64(n)/(1<<20), "MiB-PSS/page")
	b.ReportMetric(float64(total)/(1<<20), "MiB-PSS-total")
	b.ReportMetric(float64(linking.Milliseconds())/float64(n), "ms-link/page")
	b.ReportMetric(float64(round.Milliseconds()), "ms-message-round")
}

// cpuTime sums the user and system CPU time of pid and its descendants
// (clock ticks of 10 ms, as on Linux by default).
func cpuTime(b *testing.B, pid int) time.Duration {
	var ticks int64
	for _, p := range processTree(pid) {
		if f := procStat(p); len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			s, _ := strconv.ParseInt(f[12], 10, 64)
			ticks += u + s
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
