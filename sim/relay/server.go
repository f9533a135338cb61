package relay

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
)

// Server is a Relay listening on a TCP address, like httptest.Server: for
// tests, the harness's embedded backend and `linksim relay`. It enforces the
// connection limits and HTTP timeouts of Config.Limits.
type Server struct {
	relay *Relay
	srv   *http.Server
	conns *connLimiter
	url   string
	done  chan error

	closeOnce sync.Once
	closeErr  error
}

// Serve starts a relay with cfg and serves it on addr ("127.0.0.1:0" picks
// a free port on the loopback interface).
func Serve(cfg Config, addr string) (*Server, error) {
	r, err := New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("relay: listen: %w", err)
	}
	lim := r.cfg.Limits
	capped := newConnLimiter(ln, lim, r.m)
	s := &Server{
		relay: r,
		conns: capped,
		// No ReadTimeout or WriteTimeout: they would cut WebSockets and
		// large media transfers; the handlers set per-request deadlines.
		srv: &http.Server{
			Handler:           r.Handler(),
			ReadHeaderTimeout: lim.ReadHeaderTimeout,
			IdleTimeout:       lim.HTTPIdleTimeout,
			ConnState:         capped.connState,
		},
		url:  "http://" + ln.Addr().String(),
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(capped) }()
	return s, nil
}

// URL is the base URL, http://host:port.
func (s *Server) URL() string { return s.url }

// WSURL is the devices' WebSocket URL, ws://host:port/ws.
func (s *Server) WSURL() string { return "ws" + strings.TrimPrefix(s.url, "http") + "/ws" }

// Key returns the relay's public Noise static key.
func (s *Server) Key() []byte { return s.relay.Key() }

// Relay returns the relay being served.
func (s *Server) Relay() *Relay { return s.relay }

// Close stops listening, closes every device connection (Relay.Close) and
// the store. Closing again returns the first Close's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		err := s.srv.Close() // the listener and plain HTTP; WebSockets are hijacked
		err = errors.Join(err, s.relay.Close())
		if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		s.closeErr = err
	})
	return s.closeErr
}
