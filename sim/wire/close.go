package wire

import (
	"errors"

	"github.com/coder/websocket"
)

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
