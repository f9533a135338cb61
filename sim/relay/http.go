package relay

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes builds the relay's HTTP handler.
func (r *Relay) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", r.serveWS)
	r.media.routes(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if r.isClosed() {
			http.Error(w, "closing", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.m.reg, promhttp.HandlerOpts{}))
	info, _ := json.Marshal(map[string]any{
		"version":   1,
		"noise_key": base64.StdEncoding.EncodeToString(r.key.Public),
		"ws":        "/ws",
	})
	mux.HandleFunc("GET /relay.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(info)
	})
	if r.cfg.Web != nil {
		mux.Handle("/", r.cfg.Web(r.Key()))
	} else {
		mux.HandleFunc("GET /{$}", r.placeholder)
	}
	return r.deadlines(mux)
}

// deadlines bounds each plain HTTP request by Limits.RequestTimeout and each
// media transfer by Limits.MediaTransferTimeout. A WebSocket has its own
// (handshake and idle) timeouts, so its connection's deadlines, perhaps left
// by an earlier request on it, are cleared.
func (r *Relay) deadlines(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var end time.Time // none for a WebSocket, which may reuse a connection
		switch {
		case req.URL.Path == "/ws":
		case strings.HasPrefix(req.URL.Path, "/media/"):
			end = time.Now().Add(r.cfg.Limits.MediaTransferTimeout)
		default:
			end = time.Now().Add(r.cfg.Limits.RequestTimeout)
		}
		// Errors mean a writer without deadlines (a test's recorder).
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(end)
		rc.SetWriteDeadline(end)
		next.ServeHTTP(w, req)
	})
}

// placeholder stands in for the web app until one is mounted (Config.Web).
func (r *Relay) placeholder(w http.ResponseWriter, _ *http.Request) {
	key := base64.StdEncoding.EncodeToString(r.key.Public)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!doctype html>
<html><head><meta charset="utf-8"><title>linksim relay</title>
<meta name="linksim-relay-key" content="%s"></head>
<body><h1>linksim relay</h1>
<p>Devices connect to <code>/ws</code>; the relay's Noise key is in <a href="/relay.json">/relay.json</a>.
Metrics are at <a href="/metrics">/metrics</a>. No web app is mounted.</p>
</body></html>
`, html.EscapeString(key))
}
