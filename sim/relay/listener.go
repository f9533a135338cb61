package relay

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// maxLingering bounds the refused connections kept open briefly so their
// client reads the 503 rather than a reset; beyond it they are closed at once.
const maxLingering = 256

// refuseLinger is how long a refused connection is kept to deliver its 503.
const refuseLinger = 500 * time.Millisecond

// connLimiter is the relay's listener. It caps the open TCP connections, in
// total and per source address, and refuses the rest with an HTTP 503 whose
// body says which limit was hit. At a cap it first closes an idle HTTP
// keep-alive connection, which costs that client only a reconnect, so a
// flood of idle connections cannot lock devices out.
type connLimiter struct {
	net.Listener
	max, perSource int
	refusals       *prometheus.CounterVec

	mu       sync.Mutex
	total    int
	bySource map[string]int
	idle     map[*limitedConn]struct{} // keep-alive connections between requests

	lingering atomic.Int32
}

// limitedConn is an admitted connection; closing it frees its place.
type limitedConn struct {
	net.Conn
	l      *connLimiter
	source string
	once   sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c) })
	return err
}

func newConnLimiter(ln net.Listener, lim Limits, m *metrics) *connLimiter {
	l := &connLimiter{
		Listener: ln, max: lim.MaxConns, perSource: lim.MaxConnsPerSource, refusals: m.refusals,
		bySource: map[string]int{}, idle: map[*limitedConn]struct{}{},
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "linksim_relay_tcp_connections", Help: "Open TCP connections (HTTP and WebSocket), at most Limits.MaxConns.",
	}, func() float64 {
		l.mu.Lock()
		defer l.mu.Unlock()
		return float64(l.total)
	}))
	return l
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		source := nc.RemoteAddr().String()
		if host, _, err := net.SplitHostPort(source); err == nil {
			source = host
		}
		c, reason := l.admit(nc, source)
		if c != nil {
			return c, nil
		}
		l.refuse(nc, reason)
	}
}

// admit takes nc if it fits the caps, closing idle keep-alive connections
// to make room; otherwise it returns the refusal's reason.
func (l *connLimiter) admit(nc net.Conn, source string) (*limitedConn, string) {
	for {
		l.mu.Lock()
		reason, victim := "", (*limitedConn)(nil)
		switch {
		case l.bySource[source] >= l.perSource:
			reason, victim = refuseSourceConns, l.idleFrom(source)
		case l.total >= l.max:
			reason, victim = refuseConns, l.idleFrom("")
		default:
			c := &limitedConn{Conn: nc, l: l, source: source}
			l.total++
			l.bySource[source]++
			l.mu.Unlock()
			return c, ""
		}
		if victim != nil {
			delete(l.idle, victim) // no one else picks it
		}
		l.mu.Unlock()
		if victim == nil {
			return nil, reason
		}
		victim.Close() // frees its place; then try again
	}
}

// idleFrom returns an idle keep-alive connection from source ("" any).
// l.mu is held.
func (l *connLimiter) idleFrom(source string) *limitedConn {
	for c := range l.idle {
		if source == "" || c.source == source {
			return c
		}
	}
	return nil
}

func (l *connLimiter) release(c *limitedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.idle, c)
	l.total--
	if l.bySource[c.source]--; l.bySource[c.source] <= 0 {
		delete(l.bySource, c.source)
	}
}

// connState is the http.Server's ConnState hook: it tracks which admitted
// connections are idle keep-alives.
func (l *connLimiter) connState(nc net.Conn, st http.ConnState) {
	c, ok := nc.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if st == http.StateIdle {
		l.idle[c] = struct{}{}
	} else {
		delete(l.idle, c)
	}
}

// refuse answers a connection over a cap with a 503 naming the limit, then
// closes it. It reads the request's headers first (briefly): an HTTP client
// takes an answer that comes before its request for a broken connection.
// Past maxLingering refusals in progress, connections are closed at once.
func (l *connLimiter) refuse(nc net.Conn, reason string) {
	l.refusals.WithLabelValues(reason).Inc()
	if l.lingering.Add(1) > maxLingering {
		l.lingering.Add(-1)
		nc.Close()
		return
	}
	var body string
	switch reason {
	case refuseSourceConns:
		body = fmt.Sprintf("too many connections from your address (at most %d): connection refused\n", l.perSource)
	default:
		body = fmt.Sprintf("the relay is at its connection limit (%d): connection refused, try again later\n", l.max)
	}
	resp := fmt.Sprintf("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"+
		"Content-Length: %d\r\nConnection: close\r\nRetry-After: 1\r\nX-Linksim-Refused: %s\r\n\r\n%s", len(body), reason, body)
	go func() {
		defer l.lingering.Add(-1)
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(refuseLinger))
		var head []byte
		buf := make([]byte, 1024)
		for len(head) < 8<<10 && !bytes.Contains(head, []byte("\r\n\r\n")) {
			n, err := nc.Read(buf)
			head = append(head, buf[:n]...)
			if err != nil {
				break
			}
		}
		if _, err := io.WriteString(nc, resp); err != nil {
			return
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.CloseWrite() // the client reads the answer to its end
		}
		io.Copy(io.Discard, io.LimitReader(nc, 64<<10))
	}()
}
