//go:build js && wasm

// Command wasm is linksim's web client in the browser: the web client core
// (webclient/app) compiled to WebAssembly, its state in IndexedDB, and a
// plain DOM UI that docs/webclient-contract.md describes for test drivers.
//
// The page (webclient/static) carries the relay's Noise key; the URL may
// carry ?name= (the device's name, "web" by default), ?ws= (the relay's
// WebSocket URL, by default /ws of the page's own host), ?db= (the
// IndexedDB database, "linksim" by default), ?prekeys= (one-time prekeys
// uploaded when linking, defaultPreKeys by default), ?topology=mirror (a
// mirror web client, webclient/mirror, instead of a multi-device one) and
// ?debug=1 (debug logs).
package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"

	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/webclient/app"
	"github.com/linksim/linksim/webclient/mirror"
)

// defaultPreKeys is how many one-time prekeys the page makes while its
// first QR code shows and uploads when linking: as many as `linksim load`
// gives each device, not the device default of 100, since making them in
// WebAssembly takes milliseconds each and the scan may have to wait for
// them. The relay asks for more once fewer than 10 are left.
const defaultPreKeys = 16

func main() {
	mark("go.main")
	params, _ := url.ParseQuery(trimQuery(global.Get("location").Get("search").String()))
	name := or(params.Get("name"), "web")
	level := slog.LevelInfo
	if params.Get("debug") != "" {
		level = slog.LevelDebug
	}
	// The Go runtime prints stdout to the browser console, line by line. The
	// console stamps each line (and the harness keeps the stamp), so the
	// handler writes no time of its own: formatting it was a seventh of the
	// page's logging CPU.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		}}))

	u := newUI()
	go u.loop()

	wsURL, err := relayURL(params.Get("ws"))
	preKeys := defaultPreKeys
	if err == nil {
		var n int
		if n, err = count(params, "prekeys"); n > 0 {
			preKeys = n
		}
	}
	if err == nil {
		var key []byte
		if key, err = relayKey(); err == nil {
			err = start(u, device.Config{Name: name, RelayURL: wsURL, RelayKey: key, Logger: logger, PreKeys: preKeys, Mark: mark}, or(params.Get("db"), "linksim"), params.Get("topology"))
		}
	}
	if err != nil {
		u.fatal(err)
	}
	select {} // the app lives on in its goroutines and callbacks
}

// start opens the state and starts the web client core.
func start(u *ui, cfg device.Config, db, topology string) error {
	st, err := openIDB(db, u.dirty)
	mark("state.opened")
	if err != nil {
		u.post(func() { u.showError(fmt.Sprintf("%v; keeping state in memory only", err)) })
		cfg.State = kv.NewMem()
	} else {
		cfg.State = st
		console("log", fmt.Sprintf("state: indexedDB %q, %d keys", db, st.Len()))
	}
	cfg.Events = u.event
	var c core
	sourceOf := func(d *device.Device) source { return d }
	var phoneBanner func() (string, string)
	if topology == "mirror" {
		m := mirror.New(mirror.Config{Device: cfg, OnChange: u.dirty})
		c = m
		sourceOf = func(*device.Device) source { return mirrorSource{m} }
		phoneBanner = func() (string, string) {
			switch connected, _ := m.Phone(); {
			case !connected:
				return "not-connected", m.Banner()
			case !m.Usable():
				return "syncing", ""
			}
			return "connected", ""
		}
	} else {
		c = app.New(app.Config{Device: cfg, OnChange: u.dirty, Shown: u.awaitDrawn})
	}
	u.post(func() { u.app, u.sourceOf, u.phoneBanner = c, sourceOf, phoneBanner })
	console("log", fmt.Sprintf("starting %q (%s), relay %s", cfg.Name, or(topology, "multidevice"), cfg.RelayURL))
	return c.Start()
}

// relayURL is the ?ws= parameter, or /ws on the page's own host.
func relayURL(param string) (string, error) {
	if param != "" {
		u, err := url.Parse(param)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return "", fmt.Errorf("the ws parameter %q is not a ws:// or wss:// URL", param)
		}
		return param, nil
	}
	loc := global.Get("location")
	scheme := "ws"
	if loc.Get("protocol").String() == "https:" {
		scheme = "wss"
	}
	return scheme + "://" + loc.Get("host").String() + "/ws", nil
}

// relayKey reads the relay's Noise key from the page.
func relayKey() ([]byte, error) {
	meta := document.Call("querySelector", `meta[name="linksim-relay-key"]`)
	if meta.IsNull() {
		return nil, errors.New(`the page has no <meta name="linksim-relay-key">`)
	}
	key, err := base64.StdEncoding.DecodeString(meta.Call("getAttribute", "content").String())
	if err != nil || len(key) != 32 {
		return nil, errors.New(`<meta name="linksim-relay-key"> does not hold a 32-byte base64 key`)
	}
	return key, nil
}

// count is the positive whole number in parameter name, or 0 when absent.
func count(params url.Values, name string) (int, error) {
	v := params.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("the %s parameter %q is not a positive whole number", name, v)
	}
	return n, nil
}

func trimQuery(s string) string {
	if len(s) > 0 && s[0] == '?' {
		return s[1:]
	}
	return s
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// mark records a point of the page's start in its performance timeline.
func mark(name string) {
	global.Get("performance").Call("mark", "linksim."+name)
}

// markPainted marks a step once the browser has rendered the page as it is
// now: a task queued by the next animation frame runs after that frame's
// rendering. It is JavaScript, so Go work in between cannot delay the mark
// past the frame.
var markPainted = global.Get("Function").New("step", `requestAnimationFrame(() => setTimeout(() => performance.mark("linksim." + step)))`)

// console logs one line to the browser console, where the harness keeps it.
func console(level, msg string) {
	global.Get("console").Call(level, "linksim: "+msg)
}
