package relay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/wire"
)

// tcpFrom opens a plain TCP connection to the relay from source address ip
// (any 127.0.0.0/8 address works on loopback).
func tcpFrom(t testing.TB, s relayAddr, ip string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: waitFor}
	nc, err := d.Dial("tcp", strings.TrimPrefix(s.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// get sends GET path on nc, keeping it alive, and returns the answer.
func getOn(t testing.TB, nc net.Conn, br *bufio.Reader, path string) *http.Response {
	t.Helper()
	nc.SetDeadline(time.Now().Add(waitFor))
	if _, err := io.WriteString(nc, "GET "+path+" HTTP/1.1\r\nHost: relay\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp
}

// closedByRelay checks that the relay closes nc within waitFor, having
// sent nothing more.
func closedByRelay(t *testing.T, nc net.Conn, br *bufio.Reader, what string) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(waitFor))
	if _, err := br.ReadByte(); err == nil || isTimeout(err) {
		t.Fatalf("%s: connection still open after %v (read: %v)", what, waitFor, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// refused checks that the relay answered nc with a 503 naming reason.
func refused(t *testing.T, nc net.Conn, reason string) {
	t.Helper()
	nc.SetDeadline(time.Now().Add(waitFor))
	io.WriteString(nc, "GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("want a 503 (%s), got %v", reason, err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Linksim-Refused") != reason || !strings.Contains(string(body), "refused") {
		t.Fatalf("answered %s %q (%q), want 503 refused for %s", resp.Status, resp.Header.Get("X-Linksim-Refused"), body, reason)
	}
}

// awaitTCPConns waits until the relay holds n TCP connections.
func awaitTCPConns(t *testing.T, s *Server, n int) {
	t.Helper()
	awaitCount(t, "TCP connections", n, func() int {
		s.conns.mu.Lock()
		defer s.conns.mu.Unlock()
		return s.conns.total
	})
}

// awaitIdle waits until n of the relay's connections are idle keep-alives.
func awaitIdle(t *testing.T, s *Server, n int) {
	t.Helper()
	awaitCount(t, "idle keep-alive connections", n, func() int {
		s.conns.mu.Lock()
		defer s.conns.mu.Unlock()
		return len(s.conns.idle)
	})
}

// Slow and idle HTTP clients are closed: they must not pile up until the
// relay runs out of files (issue 12: 20,000 idle keep-alives).
func TestHTTPTimeouts(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{Limits: Limits{ReadHeaderTimeout: 200 * time.Millisecond, HTTPIdleTimeout: 200 * time.Millisecond}})

	idle := tcpFrom(t, s, "127.0.0.1")
	br := bufio.NewReader(idle)
	if resp := getOn(t, idle, br, "/healthz"); resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %s", resp.Status)
	}
	closedByRelay(t, idle, br, "idle keep-alive connection")

	slow := tcpFrom(t, s, "127.0.0.1")
	io.WriteString(slow, "GET /healthz HTTP/1.1\r\n") // the rest never comes
	closedByRelay(t, slow, bufio.NewReader(slow), "connection sending headers slowly")
	awaitTCPConns(t, s, 0)
}

// A media upload whose body stalls is cut at MediaTransferTimeout: the
// connection and the upload's temporary file do not stay forever.
func TestMediaTransferTimeout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startRelay(t, Config{DataDir: dir, Limits: Limits{MediaTransferTimeout: 300 * time.Millisecond}})
	alice := phone(t, s, "alice", "+15550100")
	tok := alice.uploadToken(blob(10_000))
	nc := tcpFrom(t, s, "127.0.0.1")
	fmt.Fprintf(nc, "PUT %s HTTP/1.1\r\nHost: relay\r\nContent-Length: 10000\r\n\r\n", tok.Url)
	nc.Write(blob(10_000)[:4000]) // and the rest never comes
	nc.SetReadDeadline(time.Now().Add(waitFor))
	if _, err := io.ReadAll(nc); isTimeout(err) {
		t.Fatalf("stalled upload still open after %v", waitFor)
	}
	if blobs, tmp := stored(t, dir); len(blobs)+len(tmp) != 0 {
		t.Fatalf("a cut upload left blobs %v and temporary files %v", blobs, tmp)
	}
}

// Connections are capped per source address and in total, refused with a
// 503 that says why; idle keep-alives make room; devices connect again as
// soon as there is room.
func TestConnectionCaps(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{Limits: Limits{MaxConns: 6, MaxConnsPerSource: 3}})
	var held []net.Conn
	for _, ip := range []string{"127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.2"} {
		held = append(held, tcpFrom(t, s, ip))
	}
	awaitTCPConns(t, s, 5)
	refused(t, tcpFrom(t, s, "127.0.0.1"), refuseSourceConns)
	// A WebSocket is refused the same way.
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	nk, _ := wire.GenerateKey()
	if _, err := wire.Dial(ctx, s.WSURL(), nk, s.Key()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("WebSocket over the per-source cap: %v, want a 503", err)
	}

	// At the total cap, connections are refused until one is an idle
	// keep-alive, which is closed to make room.
	ka := tcpFrom(t, s, "127.0.0.3")
	awaitTCPConns(t, s, 6)
	refused(t, tcpFrom(t, s, "127.0.0.4"), refuseConns)
	kaBuf := bufio.NewReader(ka)
	getOn(t, ka, kaBuf, "/healthz")
	awaitIdle(t, s, 1)
	admitted := tcpFrom(t, s, "127.0.0.4")
	closedByRelay(t, ka, kaBuf, "idle keep-alive at the total cap")
	if resp := getOn(t, admitted, bufio.NewReader(admitted), "/healthz"); resp.StatusCode != http.StatusOK {
		t.Fatalf("connection admitted in the idle one's place: %s", resp.Status)
	}

	admitted.Close()
	held[0].Close()
	held[1].Close()
	awaitTCPConns(t, s, 3)
	stillServes(t, s)
	m := scrape(t, s)
	for _, want := range []string{
		`linksim_relay_refusals_total{reason="source_connections"} 2`,
		`linksim_relay_refusals_total{reason="connections"} 1`,
		"linksim_relay_tcp_connections ",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
