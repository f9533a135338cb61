//go:build !js

package wire

import (
	"context"
	"errors"
	"net/http"

	"github.com/coder/websocket"
)

type wsSocket struct{ c *websocket.Conn }

func (s wsSocket) read(ctx context.Context) ([]byte, error) {
	typ, msg, err := s.c.Read(ctx)
	if err == nil && typ != websocket.MessageBinary {
		err = errTextMessage
	}
	return msg, err
}

func (s wsSocket) write(ctx context.Context, msg []byte) error {
	return s.c.Write(ctx, websocket.MessageBinary, msg)
}

func (s wsSocket) setReadLimit(n int64) { s.c.SetReadLimit(n) }

func (s wsSocket) close(code int, reason string) error {
	return s.c.Close(websocket.StatusCode(code), reason)
}

func (s wsSocket) closeNow() error { return s.c.CloseNow() }

func dialSocket(ctx context.Context, url string, dial DialFunc) (socket, error) {
	var opts *websocket.DialOptions
	if dial != nil {
		// The connection is hijacked for the WebSocket, so the transport
		// pools nothing and can be dropped after the handshake.
		opts = &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{DialContext: dial}}}
	}
	ws, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		return nil, err
	}
	return wsSocket{ws}, nil
}

// Accept runs the responder side of the handshake on an accepted WebSocket.
func Accept(ctx context.Context, ws *websocket.Conn, local KeyPair) (*Conn, error) {
	c, err := handshake(ctx, wsSocket{ws}, local, nil)
	if err != nil {
		ws.Close(statusProtocolError, "handshake failed")
		return nil, err
	}
	return c, nil
}

// CloseReason is the reason the peer gave in the WebSocket close frame that
// ended a connection, if err (from ReadFrame or WriteFrame) is that close;
// otherwise "".
func CloseReason(err error) string {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Reason
	}
	return ""
}
