package wire

import (
	"context"
	"errors"
)

// socket is the WebSocket under a Conn: coder/websocket natively
// (socket_ws.go), the browser's own WebSocket in a page (socket_js.go), so
// that the web app links neither net/http nor crypto/tls.
type socket interface {
	// read returns the next message, which must be binary.
	read(ctx context.Context) ([]byte, error)
	write(ctx context.Context, msg []byte) error
	// setReadLimit makes read fail, and the socket close with status 1009,
	// on a message longer than n bytes.
	setReadLimit(n int64)
	close(code int, reason string) error
	closeNow() error
}

// WebSocket close codes (RFC 6455 §7.4.1).
const (
	statusNormalClosure   = 1000
	statusProtocolError   = 1002
	statusPolicyViolation = 1008
	statusMessageTooBig   = 1009
)

var errTextMessage = errors.New("text message")
