package driver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/linksim/linksim/phone/camera"
)

// The payload has the shape of a real one: ref, then three base64 keys.
const payload = "1@Zm9yZ2VkLXJlZg==,bm9pc2Uta2V5LW5vaXNlLWtleS1ub2lzZS1rZXktbm9pc2U=,aWRlbnRpdHkta2V5LWlkZW50aXR5LWtleS1pZGVudGl0eQ==,YWR2LXNlY3JldC1hZHYtc2VjcmV0LWFkdi1zZWNyZXQtYWQ="

// fakeApp serves testdata/fake.html, a stand-in that follows the web
// client's DOM contract, with payload as its QR code.
func fakeApp(t testing.TB) *httptest.Server {
	t.Helper()
	page, err := os.ReadFile("testdata/fake.html")
	if err != nil {
		t.Fatal(err)
	}
	qr, err := qrcode.New(payload, qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	qr.DisableBorder = false
	img, err := qr.PNG(-4) // 4 px per module
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/qr.png", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(img)
	})
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func launch(t testing.TB) *Browser {
	t.Helper()
	b, err := Launch(context.Background(), Config{})
	if err != nil {
		t.Fatal(err) // a missing Chromium fails: the error says how to install it
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestPageFollowsContract(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := fakeApp(t)
	b := launch(t)
	p, err := b.NewPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Open(ctx, srv.URL+"/?name=alice/web-1"); err != nil {
		t.Fatal(err)
	}
	if p.Name() != "alice/web-1" {
		t.Errorf("page name %q, want alice/web-1", p.Name())
	}

	q, err := p.ReadQR(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if q.Payload != payload {
		t.Fatalf("read QR %q, want %q", q.Payload, payload)
	}
	if q.Attempts != 1 || q.Shot.Before(q.Visible) || q.Decoded.Before(q.Shot) {
		t.Errorf("read QR in %d attempts, visible %v, shot %v, decoded %v", q.Attempts, q.Visible, q.Shot, q.Decoded)
	}
	img, err := p.QRImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := (camera.Camera{}).Scan(img); err != nil || got != payload {
		t.Fatalf("a perfect camera read %q, %v from the QR image", got, err)
	}

	if _, err := eval[any](ctx, p, "test hook", "expire()"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ReadQR(ctx); err == nil || !strings.Contains(err.Error(), ErrExpired.Error()) {
		t.Fatalf("ReadQR on the expired screen: %v, want %v", err, ErrExpired)
	}
	if txt, _ := p.ExpiredText(ctx); !strings.HasPrefix(txt, "QR code expired - click to reload") {
		t.Errorf("expired text %q", txt)
	}
	if err := p.ReloadQR(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitScreen(ctx, ScreenQR); err != nil {
		t.Fatal(err)
	}

	if _, err := eval[any](ctx, p, "test hook", "link()"); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitScreen(ctx, ScreenLinked); err != nil {
		t.Fatal(err)
	}
	chats, err := p.Chats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []Chat{
		{Peer: "+15550000002", Name: "Bob", Last: "hi", Time: "10:00", Unread: 2},
		{Peer: "+15550000003", Name: "Carol", Last: "yo", Time: "09:00", Pinned: true, Archived: true},
	}
	if !slices.Equal(chats, want) {
		t.Errorf("chats %+v, want %+v", chats, want)
	}
	r, err := p.Ringing(ctx)
	if want := (Ringing{Shown: true, Peer: "+15550000002", Text: "Call on your phone Bob"}); err != nil || r != want {
		t.Errorf("ringing notice %+v, %v; want %+v", r, err, want)
	}
	if err := p.OpenChat(ctx, "+15550000002"); err != nil {
		t.Fatal(err)
	}
	m, err := p.Send(ctx, "hello bob")
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "M1" || m.Direction != Out || m.Text != "hello bob" {
		t.Errorf("sent %+v", m)
	}
	if _, err := p.Send(ctx, "second"); err != nil {
		t.Fatal(err)
	}
	msgs, err := p.Messages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[1].Text != "second" || msgs[0].Ticks == "" {
		t.Errorf("messages %+v", msgs)
	}

	if err := p.SetAbout(ctx, "Out hiking"); err != nil {
		t.Fatal(err)
	}
	if err := p.SetAbout(ctx, "Back again"); err != nil {
		t.Fatal(err)
	}
	if s, err := p.ConnectionStatus(ctx); err != nil || s != "online" {
		t.Errorf("connection status %q, %v", s, err)
	}
	controls, err := p.Controls(ctx)
	if err != nil || len(controls) < 10 {
		t.Errorf("%d controls, %v", len(controls), err)
	}
	for _, c := range controls {
		if want := c.Tag == "button" || c.Tag == "input"; c.Operable != want {
			t.Errorf("control <%s data-testid=%q> operable: %v, want %v", c.Tag, c.TestID, c.Operable, want)
		}
	}
	if err := p.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitScreen(ctx, ScreenQR); err != nil {
		t.Fatal(err)
	}

	shot, err := p.Screenshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(shot)); err != nil {
		t.Errorf("page screenshot: %v", err)
	}
	if logs := p.ConsoleLogs(); !slices.ContainsFunc(logs, func(l string) bool { return strings.Contains(l, "qr drawn") }) {
		t.Errorf("console logs lack the page's line: %q", logs)
	}
}

// openFakeApp opens the fake app as the web client name in a page of its
// own browser, closed when the test ends.
func openFakeApp(ctx context.Context, t testing.TB, name string) *Page {
	t.Helper()
	srv := fakeApp(t)
	p, err := launch(t).NewPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := p.Open(ctx, srv.URL+"/?name="+name); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWaitScreenSaysWhatItSaw(t *testing.T) {
	ctx := context.Background()
	p := openFakeApp(ctx, t, "bob/web-1")
	wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	err := p.WaitScreen(wctx, ScreenLinked)
	if err == nil || !strings.Contains(err.Error(), `bob/web-1: waited`) || !strings.Contains(err.Error(), "saw the qr screen") {
		t.Fatalf("WaitScreen error %v, want one naming the page and the qr screen", err)
	}
}

// TestWaitChatsWatchesTheList adds a chat to the list a while after the
// wait starts: the wait must end with it listed, and a wait for more
// chats than ever show must say how many it saw.
func TestWaitChatsWatchesTheList(t *testing.T) {
	ctx := context.Background()
	p := openFakeApp(ctx, t, "bob/web-1")
	if _, err := eval[any](ctx, p, "add a chat later", `setTimeout(() => {
		const c = document.querySelector('[data-testid="chat"]').cloneNode(true);
		c.dataset.peer = "+15550000004";
		document.querySelector('[data-testid="chat-list"]').append(c);
	}, 300)`); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.WaitChats(wctx, 3); err != nil {
		t.Fatal(err)
	}
	if chats, err := p.Chats(ctx); err != nil || len(chats) != 3 {
		t.Fatalf("WaitChats(3) returned with the list showing %+v (err %v)", chats, err)
	}
	wctx, cancel = context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	err := p.WaitChats(wctx, 4)
	if err == nil || !strings.Contains(err.Error(), "saw 3 chats") {
		t.Fatalf("WaitChats(4) error %v, want one saying it saw 3 chats", err)
	}
}

func TestMissingChromiumSaysHowToInstall(t *testing.T) {
	_, err := Launch(context.Background(), Config{ExecPath: "/nonexistent/chromium"})
	if err == nil || !strings.Contains(err.Error(), "scripts/install-chromium.sh") {
		t.Fatalf("Launch with no Chromium: %v", err)
	}
}

// TestReadQRChecksTheCodeIsOnScreen: a code pushed out of a narrow window
// is scrolled into view and read; one too wide for the window, or covered,
// fails at once with ErrQRHidden, a saved screenshot and the visible text.
func TestReadQRChecksTheCodeIsOnScreen(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := fakeApp(t)
	evidence := t.TempDir()
	b, err := Launch(ctx, Config{EvidenceDir: evidence})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	open := func(t *testing.T, width, height int, hook string) *Page {
		p, err := b.NewPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		if err := p.SetViewport(ctx, width, height); err != nil {
			t.Fatal(err)
		}
		if err := p.Open(ctx, srv.URL+"/?name=carol/web-1"); err != nil {
			t.Fatal(err)
		}
		if err := p.WaitScreen(ctx, ScreenQR); err != nil {
			t.Fatal(err)
		}
		if hook != "" {
			if _, err := eval[any](ctx, p, "test hook", hook+"()"); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}

	t.Run("below the fold of a 320 px window", func(t *testing.T) {
		q, err := open(t, 320, 480, "pushDown").ReadQR(ctx)
		if err != nil || q.Payload != payload || q.Attempts != 1 {
			t.Fatalf("ReadQR = %.20q in %d attempts, %v; want the payload at once", q.Payload, q.Attempts, err)
		}
	})
	t.Run("steady but unreadable", func(t *testing.T) {
		q, err := open(t, 320, 480, "scramble").ReadQR(ctx)
		if err == nil || errors.Is(err, ErrQRHidden) || q.Attempts != maxUnreadable {
			t.Fatalf("ReadQR after %d screenshots: %v; want a failure after %d", q.Attempts, err, maxUnreadable)
		}
		for _, want := range []string{"2 of a steady code that did not decode", "saved in " + evidence} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q: %v", want, err)
			}
		}
	})
	for _, tc := range []struct {
		name          string
		width, height int
		hook          string
		want          []string
	}{
		// The fake's code is 228 px wide.
		{"wider than the window", 200, 480, "", []string{"in a 200x480 viewport", "off screen"}},
		{"covered", 320, 480, "cover", []string{"covered by div#banner", "Cookie banner: accept all?"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := open(t, tc.width, tc.height, tc.hook).ReadQR(ctx)
			if !errors.Is(err, ErrQRHidden) || q.Attempts != 0 {
				t.Fatalf("ReadQR after %d screenshots: %v; want ErrQRHidden before any", q.Attempts, err)
			}
			for _, want := range append(tc.want, "carol/web-1", "saved in "+evidence) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q: %v", want, err)
				}
			}
			shots, _ := filepath.Glob(filepath.Join(evidence, "carol_web-1-screen-*.png"))
			if len(shots) == 0 {
				t.Fatalf("no screenshot in %s", evidence)
			}
			if b, err := os.ReadFile(shots[len(shots)-1]); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
				t.Errorf("screenshot %s: %v, not a PNG", shots[len(shots)-1], err)
			}
		})
	}
}

// TestLayoutsShareOrIsolateContexts opens two pages of one origin in each
// layout: tabs share a browser context (one localStorage) but get databases
// of their own; the default layout shares nothing.
func TestLayoutsShareOrIsolateContexts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := fakeApp(t)
	for _, layout := range []string{"", LayoutTabs} {
		t.Run("layout="+layout, func(t *testing.T) {
			b, err := Launch(ctx, Config{Layout: layout})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			var pages [2]*Page
			for i := range pages {
				if pages[i], err = b.NewPage(ctx); err != nil {
					t.Fatal(err)
				}
				defer pages[i].Close()
				if err := pages[i].Open(ctx, srv.URL+"/?name=web-"+string(rune('1'+i))); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := eval[any](ctx, pages[0], "write storage", `localStorage.setItem("k", "from page 1")`); err != nil {
				t.Fatal(err)
			}
			seen, err := eval[string](ctx, pages[1], "read storage", `localStorage.getItem("k") ?? ""`)
			if err != nil {
				t.Fatal(err)
			}
			var dbs [2]string
			for i, p := range pages {
				if dbs[i], err = eval[string](ctx, p, "read db", `new URLSearchParams(location.search).get("db") ?? ""`); err != nil {
					t.Fatal(err)
				}
			}
			sameContext := pages[0].BrowserContext() == pages[1].BrowserContext()
			if pages[0].BrowserContext() == "" {
				t.Fatal("page 1 has no browser context id")
			}
			if layout == LayoutTabs {
				if !sameContext || seen != "from page 1" {
					t.Errorf("tabs: same context %v, page 2 read %q from page 1's localStorage", sameContext, seen)
				}
				if dbs[0] == "" || dbs[0] == dbs[1] {
					t.Errorf("tabs opened with databases %q, want two distinct ones", dbs)
				}
			} else {
				if sameContext || seen != "" {
					t.Errorf("isolated: same context %v, page 2 read %q from page 1's localStorage", sameContext, seen)
				}
				if dbs != [2]string{} {
					t.Errorf("isolated pages opened with databases %q, want the app's default", dbs)
				}
			}
		})
	}
	if _, err := Launch(ctx, Config{Layout: "windows"}); err == nil || !strings.Contains(err.Error(), `unknown layout "windows"`) {
		t.Errorf("Launch with layout windows: %v, want an unknown layout error", err)
	}
}

// A profiled page writes, on Close, a CPU profile that holds the functions
// its scripts ran, named; pages of two browsers sharing the directory (the
// harness runs one per layout) each keep theirs.
func TestProfiledPageWritesItsCPUProfile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	for range 2 {
		b, err := Launch(ctx, Config{ProfileDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		p, err := b.NewPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Open(ctx, "data:text/html,<script>function linksimBusy(){const t=performance.now();while(performance.now()-t<300){}}linksimBusy()</script>"); err != nil {
			t.Fatal(err)
		}
		p.Close()
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.cpuprofile"))
	if len(files) != 2 {
		t.Fatalf("profiles written: %q, want one per page (2)", files)
	}
	type node struct {
		CallFrame struct{ FunctionName string } `json:"callFrame"`
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var prof struct {
			Nodes   []node `json:"nodes"`
			Samples []int  `json:"samples"`
		}
		if err := json.Unmarshal(raw, &prof); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		busy := slices.ContainsFunc(prof.Nodes, func(n node) bool { return n.CallFrame.FunctionName == "linksimBusy" })
		if !busy || len(prof.Samples) == 0 {
			t.Errorf("%s (%d samples) does not hold the page's function linksimBusy", f, len(prof.Samples))
		}
	}
}

// A traced browser writes, on Close, one trace of all its pages that DevTools
// can open: a JSON array of events holding each page's performance marks.
func TestTracedBrowserWritesItsPagesMarks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	b, err := Launch(ctx, Config{TraceDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, mark := range []string{"linksim.first", "linksim.second"} {
		p, err := b.NewPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Open(ctx, "data:text/html,<script>performance.mark('"+mark+"')</script>"); err != nil {
			t.Fatal(err)
		}
		p.Close()
	}
	b.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "trace-*.json"))
	if len(files) != 1 {
		t.Fatalf("traces written: %q, want one for the browser", files)
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var events []struct{ Name string }
	if err := json.Unmarshal(raw, &events); err != nil {
		t.Fatalf("%s is not a JSON array of events: %v", files[0], err)
	}
	names := map[string]bool{}
	for _, e := range events {
		names[e.Name] = true
	}
	for _, mark := range []string{"linksim.first", "linksim.second"} {
		if !names[mark] {
			t.Errorf("the trace's %d events hold no mark %s", len(events), mark)
		}
	}
}
