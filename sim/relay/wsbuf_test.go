package relay

import (
	"bufio"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A client may send its first WebSocket message (Noise's -> e) in the same
// write as its upgrade request; the relay must not lose it when it swaps
// net/http's buffers for its own small ones, and answers with message 2.
func TestFirstMessageWithUpgradeRequest(t *testing.T) {
	s := startRelay(t, Config{})
	addr := strings.TrimPrefix(s.URL(), "http://")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))

	ephemeral := make([]byte, 32)
	rand.Read(ephemeral)
	// A masked binary frame with a zero mask: the payload goes as is.
	frame := append([]byte{0x82, 0x80 | byte(len(ephemeral)), 0, 0, 0, 0}, ephemeral...)
	req := "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := nc.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}

	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %s, want 101", resp.Status)
	}
	head := make([]byte, 2)
	if _, err := io.ReadFull(br, head); err != nil {
		t.Fatalf("no handshake message 2 after a message 1 sent with the upgrade request: %v", err)
	}
	if op, n := head[0]&0x0f, int(head[1]&0x7f); op != 0x2 || n <= len(ephemeral) {
		t.Fatalf("relay answered with opcode %#x, %d bytes; want handshake message 2 (binary, more than %d bytes)", op, n, len(ephemeral))
	}
}
