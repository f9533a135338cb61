package static

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"html"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

var key = []byte("0123456789abcdef0123456789abcdef")

func app() fstest.MapFS {
	return fstest.MapFS{
		"app.wasm":     {Data: []byte("\x00asm\x01\x00\x00\x00")},
		"wasm_exec.js": {Data: []byte("// go")},
	}
}

func get(t *testing.T, h http.Handler, path string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Result()
}

func TestHandlerServesEachFile(t *testing.T) {
	h := Handler(key, app())
	for path, ctype := range map[string]string{
		"/":             "text/html; charset=utf-8",
		"/index.html":   "text/html; charset=utf-8",
		"/app.css":      "text/css; charset=utf-8",
		"/wasm_exec.js": "text/javascript; charset=utf-8",
		"/app.wasm":     "application/wasm",
	} {
		res := get(t, h, path)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200", path, res.StatusCode)
		}
		if got := res.Header.Get("Content-Type"); got != ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", path, got, ctype)
		}
		if got := res.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache (revalidate on reload)", path, got)
		}
		if len(body) == 0 {
			t.Errorf("GET %s: empty body", path)
		}
	}
}

func TestPageCarriesRelayKey(t *testing.T) {
	res := get(t, Handler(key, app()), "/")
	body, _ := io.ReadAll(res.Body)
	m := regexp.MustCompile(`<meta name="linksim-relay-key" content="([^"]*)">`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("page has no relay key meta tag:\n%s", body)
	}
	if got, want := html.UnescapeString(string(m[1])), base64.StdEncoding.EncodeToString(key); got != want {
		t.Errorf("relay key meta tag holds %q, want %q", got, want)
	}
	for _, want := range []string{`data-testid="app"`, `src="wasm_exec.js?v=`, `"app.wasm?v=`, `href="app.css?v=`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

func TestUnknownPathsAre404(t *testing.T) {
	h := Handler(key, app())
	for _, path := range []string{"/favicon.ico", "/files/app.wasm", "/../static.go", "/app.wasm/x", "/index.html/"} {
		if res := get(t, h, path); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, res.StatusCode)
		}
	}
}

func TestUnbuiltAppSaysHowToBuild(t *testing.T) {
	res := get(t, Handler(key, fstest.MapFS{}), "/app.wasm")
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "make wasm") {
		t.Errorf("GET /app.wasm of an unbuilt app: %d %q, want 404 naming `make wasm`", res.StatusCode, body)
	}
	// The page still comes from this package.
	if res := get(t, Handler(key, fstest.MapFS{}), "/"); res.StatusCode != http.StatusOK {
		t.Errorf("GET / of an unbuilt app: status %d, want 200", res.StatusCode)
	}
}

func TestRevalidationAnswers304(t *testing.T) {
	h := Handler(key, app())
	tag := get(t, h, "/app.wasm").Header.Get("ETag")
	if tag == "" {
		t.Fatal("app.wasm has no ETag")
	}
	if res := get(t, h, "/app.wasm", "If-None-Match", tag); res.StatusCode != http.StatusNotModified {
		t.Errorf("GET /app.wasm with its ETag: status %d, want 304", res.StatusCode)
	}
	other := app()
	other["app.wasm"] = &fstest.MapFile{Data: []byte("\x00asm\x01\x00\x00\x00rebuilt")}
	if res := get(t, Handler(key, other), "/app.wasm", "If-None-Match", tag); res.StatusCode != http.StatusOK {
		t.Errorf("GET a rebuilt app.wasm with the old ETag: status %d, want 200", res.StatusCode)
	}
}

// The page links each file by its content hash; by that URL a file may be
// kept without asking again, by any other (an old hash, none) not.
func TestVersionedURLsAreImmutable(t *testing.T) {
	fsys := app()
	linked := func() string {
		body, _ := io.ReadAll(get(t, Handler(key, fsys), "/").Body)
		m := regexp.MustCompile(`"(app\.wasm\?v=[0-9a-f]+)"`).FindSubmatch(body)
		if m == nil {
			t.Fatalf("page links no versioned app.wasm:\n%s", body)
		}
		return "/" + string(m[1])
	}
	old := linked()
	res := get(t, Handler(key, fsys), old)
	if got := res.Header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
		t.Errorf("GET %s: Cache-Control %q, want immutable", old, got)
	}
	if got := res.Header.Get("Content-Type"); got != "application/wasm" {
		t.Errorf("GET %s: Content-Type %q, want application/wasm (streaming compilation)", old, got)
	}
	fsys["app.wasm"] = &fstest.MapFile{Data: []byte("\x00asm\x01\x00\x00\x00rebuilt")}
	if now := linked(); now == old {
		t.Errorf("a rebuilt app.wasm is still linked as %s", old)
	}
	for _, path := range []string{old, "/app.wasm?v=", "/app.wasm?v=zz"} {
		if got := get(t, Handler(key, fsys), path).Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s (not the current build): Cache-Control %q, want no-cache", path, got)
		}
	}
}

func gzipOf(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// app.wasm goes out as app.wasm.gz to a browser that accepts gzip, with an
// ETag of its own; as it is to one that does not, to one on this machine,
// or when app.wasm.gz was made from another build.
func TestWasmGoesOutGzipped(t *testing.T) {
	fsys := app()
	raw := fsys["app.wasm"].Data
	fsys["app.wasm.gz"] = &fstest.MapFile{Data: gzipOf(t, raw)}
	h := Handler(key, fsys)
	plain := get(t, h, "/app.wasm")
	gz := get(t, h, "/app.wasm", "Accept-Encoding", "br, gzip;q=0.8")
	if got := gz.Header.Get("Content-Encoding"); got != "gzip" {
		t.Fatalf("GET /app.wasm accepting gzip: Content-Encoding %q, want gzip", got)
	}
	zr, err := gzip.NewReader(gz.Body)
	if err != nil {
		t.Fatal(err)
	}
	if body, err := io.ReadAll(zr); err != nil || !bytes.Equal(body, raw) {
		t.Errorf("GET /app.wasm accepting gzip: body decompresses to %q (err %v), want app.wasm", body, err)
	}
	for _, res := range []*http.Response{plain, gz} {
		if got := res.Header.Get("Vary"); got != "Accept-Encoding" {
			t.Errorf("Vary %q, want Accept-Encoding", got)
		}
	}
	if plain.Header.Get("ETag") == gz.Header.Get("ETag") {
		t.Errorf("both encodings have ETag %s", plain.Header.Get("ETag"))
	}
	if res := get(t, h, "/app.wasm", "Accept-Encoding", "gzip", "If-None-Match", gz.Header.Get("ETag")); res.StatusCode != http.StatusNotModified {
		t.Errorf("GET /app.wasm accepting gzip, with its ETag: status %d, want 304", res.StatusCode)
	}

	for _, accept := range []string{"", "br", "gzip;q=0"} {
		res := get(t, h, "/app.wasm", "Accept-Encoding", accept)
		body, _ := io.ReadAll(res.Body)
		if res.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, raw) {
			t.Errorf("GET /app.wasm, Accept-Encoding %q: Content-Encoding %q, body %q; want app.wasm as it is", accept, res.Header.Get("Content-Encoding"), body)
		}
	}
	// On loopback the bytes cost less than inflating them.
	req := httptest.NewRequest(http.MethodGet, "/app.wasm", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	req.RemoteAddr = "127.0.0.1:50000"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if got := w.Result().Header.Get("Content-Encoding"); got != "" || !bytes.Equal(w.Body.Bytes(), raw) {
		t.Errorf("GET /app.wasm from loopback accepting gzip: Content-Encoding %q, want app.wasm as it is", got)
	}
	fsys["app.wasm.gz"] = &fstest.MapFile{Data: gzipOf(t, []byte("\x00asm\x01\x00\x00\x00an older build"))}
	res := get(t, Handler(key, fsys), "/app.wasm", "Accept-Encoding", "gzip")
	if body, _ := io.ReadAll(res.Body); res.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, raw) {
		t.Errorf("GET /app.wasm with a stale app.wasm.gz: Content-Encoding %q, body %q; want app.wasm as it is", res.Header.Get("Content-Encoding"), body)
	}
}

func TestPostIsRefused(t *testing.T) {
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	w := httptest.NewRecorder()
	Handler(key, app()).ServeHTTP(w, req)
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: status %d, want 405", w.Code)
	}
}

func TestEmbedded(t *testing.T) {
	fsys, err := Embedded()
	if errors.Is(err, ErrNotBuilt) {
		if !strings.Contains(err.Error(), "make wasm") {
			t.Errorf("Embedded error %q does not say how to build", err)
		}
		return // a checkout without `make wasm`
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"index.html", "app.css", "app.wasm", "wasm_exec.js"} {
		if _, err := fsys.Open(name); err != nil {
			t.Errorf("embedded app lacks %s: %v", name, err)
		}
	}
}

// An inline script after a stylesheet runs only once the stylesheet has
// loaded, so app.wasm's download, which needs no Go, must start before
// app.css in the page.
func TestWasmFetchStartsBeforeTheStylesheet(t *testing.T) {
	body, _ := io.ReadAll(get(t, Handler(key, app()), "/").Body)
	page := string(body)
	css := strings.Index(page, `<link rel="stylesheet"`)
	if css < 0 {
		t.Fatalf("page links no stylesheet:\n%s", page)
	}
	if at := strings.Index(page, `fetch("app.wasm?v=`); at < 0 || at > css {
		t.Errorf("page starts app.wasm's fetch at byte %d, want it before the stylesheet's link (byte %d):\n%s", at, css, page)
	}
}

// The QR screen's fonts, and the unread count's, are laid out unseen in the
// page Go replaces: the browser then looks them up while app.wasm loads,
// not in the layout that shows the first QR code or the first chats.
func TestPageLaysOutTheFirstScreensFonts(t *testing.T) {
	body, _ := io.ReadAll(get(t, Handler(key, app()), "/").Body)
	page := string(body)
	for _, want := range []string{`class="loading-fonts landing-text"`, `class="landing-brand"`, `<ol><li>`, `class="chat-unread"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s, which lays out a first screen's font while app.wasm loads:\n%s", want, page)
		}
	}
}

// The main screen's first frame shows only font sizes and weights that the
// page used before it (the loading and QR screens, and the fonts laid out
// unseen): on Linux each new one costs the layout that shows the chats a
// round trip to the browser process.
func TestMainScreenReusesTheFirstScreensFonts(t *testing.T) {
	css, err := fs.ReadFile(embedded, filesSubdir+"/app.css")
	if err != nil {
		t.Fatal(err)
	}
	// font is a rule's size and weight; what it leaves out it inherits
	// from the body (14px, 400) in every element checked here.
	font := func(selector string) string {
		rule := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(selector) + `\s*\{([^}]*)\}`).FindSubmatch(css)
		if rule == nil {
			t.Fatalf("app.css has no rule %s", selector)
		}
		size, weight := "14px", "400"
		if m := regexp.MustCompile(`font-size:\s*([\d.]+px)`).FindSubmatch(rule[1]); m != nil {
			size = string(m[1])
		}
		if m := regexp.MustCompile(`font-weight:\s*(\d+)`).FindSubmatch(rule[1]); m != nil {
			weight = string(m[1])
		}
		return size + " " + weight
	}
	before := map[string]string{}
	for _, selector := range []string{".loading-logo", ".loading-note", ".landing-brand", ".landing-text ol", ".landing-note", ".chat-unread"} {
		before[font(selector)] = selector
	}
	for _, selector := range []string{".avatar", ".conn", `.conn[data-status="connecting"], .conn[data-status="reconnecting"]`,
		".no-chats", ".chat-name", ".chat-time", ".chat-last", ".intro-title", ".intro-lock"} {
		if f := font(selector); before[f] == "" {
			t.Errorf("%s is in %s, which no screen before the main screen uses: %v", selector, f, before)
		}
	}
}
