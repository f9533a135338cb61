package wire

import "github.com/coder/websocket"

// dialOptions ignores dial: in a browser the page's WebSocket opens the
// connection, and no source address can be chosen.
func dialOptions(DialFunc) *websocket.DialOptions { return nil }
