// Package static serves the browser web app: the page (carrying the relay's
// Noise key for the app to pin), its stylesheet, Go's wasm_exec.js and the
// web client compiled to WebAssembly. The relay mounts Handler at /
// (relay.Config.Web); docs/webclient-contract.md says what the page shows.
package static

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"html/template"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The files of the app. index.html and app.css are committed; app.wasm,
// app.wasm.gz and wasm_exec.js are put there by `make wasm` and not
// committed.
//
//go:embed files
var embedded embed.FS

// The app's files, by the path they are served at.
const (
	fileIndex   = "index.html"
	fileCSS     = "app.css"
	fileWasm    = "app.wasm"
	fileWasmJS  = "wasm_exec.js"
	fileWasmGz  = "app.wasm.gz" // app.wasm compressed by Build or `make wasm`
	filesSubdir = "files"
)

var contentTypes = map[string]string{
	fileIndex:  "text/html; charset=utf-8",
	fileCSS:    "text/css; charset=utf-8",
	fileWasmJS: "text/javascript; charset=utf-8",
	fileWasm:   "application/wasm",
}

// ErrNotBuilt means the binary was built without the compiled web app.
var ErrNotBuilt = errors.New("web app not built: run `make wasm`")

// Embedded returns the app built into this binary, or ErrNotBuilt when
// app.wasm was not there when the binary was built.
func Embedded() (fs.FS, error) {
	sub, err := fs.Sub(embedded, filesSubdir)
	if err != nil {
		return nil, err
	}
	if _, err := fs.Stat(sub, fileWasm); err != nil {
		return nil, ErrNotBuilt
	}
	return sub, nil
}

// pages holds the committed index.html and app.css, which Handler falls back
// to when the app's directory has only the built files.
func pages() fs.FS {
	sub, _ := fs.Sub(embedded, filesSubdir)
	return sub
}

// Handler serves the web app whose files are in app (app.wasm and
// wasm_exec.js, as Build or `make wasm` leave them; index.html and app.css
// come from this package when app has none). The page carries relayKey in
// <meta name="linksim-relay-key">. Every file is served with an ETag. The
// page links app.css, wasm_exec.js and app.wasm as name?v=<hash of the
// content>: asked for by that URL a file is served "immutable" for a year,
// so later pages of the same browser (context) take it, and V8 any machine
// code it cached for app.wasm, without a request; everything else (the
// page, a file without the current hash) is "no-cache", so a reload
// revalidates cheaply and never runs a stale app. app.wasm goes out
// gzip-compressed (a quarter of the bytes) to a client on another machine
// that accepts it, when app holds app.wasm.gz made from this app.wasm
// (Build and `make wasm` write it; a stale one is ignored). Other paths are
// 404.
func Handler(relayKey []byte, app fs.FS) http.Handler {
	return &handler{key: base64.StdEncoding.EncodeToString(relayKey), app: app, etags: map[string]etag{}}
}

type handler struct {
	key string
	app fs.FS

	mu    sync.Mutex
	etags map[string]etag // by file name, valid while size and mtime hold
}

type etag struct {
	size  int64
	mtime time.Time
	tag   string
	crc   uint32 // CRC-32 of the content, as a gzip trailer holds it
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := r.URL.Path[1:]
	if name == "" {
		name = fileIndex
	}
	ctype, ok := contentTypes[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	content, info, err := h.open(name)
	if errors.Is(err, fs.ErrNotExist) {
		msg := "404 page not found"
		if name == fileWasm || name == fileWasmJS {
			msg = ErrNotBuilt.Error()
		}
		http.Error(w, msg, http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer content.Close()
	tag, err := h.etag(name, info, content)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ctype)
	if v := r.URL.Query().Get("v"); v != "" && v == version(tag) {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	if name == fileWasm {
		// Caches keep the two encodings apart.
		w.Header().Set("Vary", "Accept-Encoding")
		if acceptsGzip(r) && !fromLoopback(r) {
			if gz := h.gzipped(info); gz != nil {
				defer gz.Close()
				content = gz
				// A strong ETag names one representation: the compressed
				// bytes get their own.
				tag = strings.TrimSuffix(tag, `"`) + `.gz"`
				w.Header().Set("Content-Encoding", "gzip")
			}
		}
	}
	w.Header().Set("ETag", tag)
	// ServeContent answers If-None-Match with 304 and supports ranges.
	http.ServeContent(w, r, name, time.Time{}, content)
}

// gzipped opens app.wasm.gz when it holds the app.wasm described by info,
// or returns nil. It is called after etag, which has app.wasm's CRC-32.
func (h *handler) gzipped(info fs.FileInfo) readSeekCloser {
	h.mu.Lock()
	e, ok := h.etags[fileWasm]
	h.mu.Unlock()
	if !ok || e.size != info.Size() || !e.mtime.Equal(info.ModTime()) {
		return nil
	}
	f, err := h.app.Open(fileWasmGz)
	if err != nil {
		return nil
	}
	if gz, ok := f.(readSeekCloser); ok && compressedFrom(gz, e) {
		return gz
	}
	f.Close()
	return nil
}

// compressedFrom reports whether gzip stream gz ends with the CRC-32 and
// size of the content e describes, as a gzip trailer records them. It
// leaves gz at its start.
func compressedFrom(gz io.ReadSeeker, e etag) bool {
	var trailer [8]byte
	if _, err := gz.Seek(-8, io.SeekEnd); err != nil {
		return false
	}
	if _, err := io.ReadFull(gz, trailer[:]); err != nil {
		return false
	}
	if _, err := gz.Seek(0, io.SeekStart); err != nil {
		return false
	}
	return binary.LittleEndian.Uint32(trailer[:4]) == e.crc && binary.LittleEndian.Uint32(trailer[4:]) == uint32(e.size)
}

// fromLoopback reports whether the request came from this machine, where
// sending 11 MB costs less than inflating 2.8 MB: in headless Chromium on
// two loaded cores app.wasm compiled about 60 ms later gzip-compressed
// (docs/performance.md).
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// acceptsGzip reports whether the request's Accept-Encoding lists gzip
// without refusing it (q=0).
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, coding := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(coding, ";")
			if strings.TrimSpace(name) != "gzip" {
				continue
			}
			q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q=")
			weight, err := strconv.ParseFloat(q, 64)
			return !ok || err != nil || weight > 0
		}
	}
	return false
}

type readSeekCloser interface {
	io.ReadSeeker
	io.Closer
}

// open opens a file of the app, or of this package's pages for index.html
// and app.css when the app has none. The page comes with the relay key
// filled in.
func (h *handler) open(name string) (readSeekCloser, fs.FileInfo, error) {
	fsys := h.app
	if name == fileIndex || name == fileCSS {
		if _, err := fs.Stat(fsys, name); errors.Is(err, fs.ErrNotExist) {
			fsys = pages()
		}
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if rs, ok := f.(readSeekCloser); ok && name != fileIndex {
		return rs, info, nil // streamed: app.wasm is megabytes
	}
	body, err := io.ReadAll(f)
	f.Close()
	if err == nil && name == fileIndex {
		body, err = h.page(body)
	}
	if err != nil {
		return nil, nil, err
	}
	return nopCloser{bytes.NewReader(body)}, info, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// page fills the relay key and the versioned URLs of the app's files into
// index.html.
func (h *handler) page(src []byte) ([]byte, error) {
	t, err := template.New(fileIndex).Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("index.html: %w", err)
	}
	fields := struct{ RelayKey, CSS, WasmExec, Wasm string }{
		RelayKey: h.key,
		CSS:      h.versioned(fileCSS),
		WasmExec: h.versioned(fileWasmJS),
		Wasm:     h.versioned(fileWasm),
	}
	var b bytes.Buffer
	if err := t.Execute(&b, fields); err != nil {
		return nil, fmt.Errorf("index.html: %w", err)
	}
	return b.Bytes(), nil
}

// versioned is the URL of the app's file name with its content hash, or
// just name when it cannot be read (an unbuilt app: the request then says
// why).
func (h *handler) versioned(name string) string {
	content, info, err := h.open(name)
	if err != nil {
		return name
	}
	defer content.Close()
	tag, err := h.etag(name, info, content)
	if err != nil {
		return name
	}
	return name + "?v=" + version(tag)
}

// version is the hash in an ETag, as the page's ?v= carries it.
func version(tag string) string { return strings.Trim(tag, `"`) }

// etag hashes the content, remembering the hash while the file's size and
// modification time stay (an embedded file never changes; a rebuilt one in
// a directory gets a new mtime), so a 12 MB app.wasm is hashed once. It
// leaves content at its start.
func (h *handler) etag(name string, info fs.FileInfo, content io.ReadSeeker) (string, error) {
	h.mu.Lock()
	e, ok := h.etags[name]
	h.mu.Unlock()
	if ok && e.size == info.Size() && e.mtime.Equal(info.ModTime()) && name != fileIndex {
		return e.tag, nil
	}
	sum, crc := sha256.New(), crc32.NewIEEE()
	if _, err := io.Copy(io.MultiWriter(sum, crc), content); err != nil {
		return "", err
	}
	if _, err := content.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	tag := `"` + hex.EncodeToString(sum.Sum(nil)[:12]) + `"`
	if name != fileIndex { // the page is small and carries the key: hashed each time
		h.mu.Lock()
		h.etags[name] = etag{size: info.Size(), mtime: info.ModTime(), tag: tag, crc: crc.Sum32()}
		h.mu.Unlock()
	}
	return tag, nil
}
