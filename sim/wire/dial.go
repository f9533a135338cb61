//go:build !js

package wire

import (
	"net/http"

	"github.com/coder/websocket"
)

// dialOptions opens the WebSocket's TCP connection through dial, if set.
func dialOptions(dial DialFunc) *websocket.DialOptions {
	if dial == nil {
		return nil
	}
	// The connection is hijacked for the WebSocket, so the transport pools
	// nothing and can be dropped after the handshake.
	return &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{DialContext: dial}}}
}
