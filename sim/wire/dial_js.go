package wire

import "github.com/coder/websocket"

// dialOptions is nil in a browser: its WebSocket opens its own connection,
// so dial cannot be honoured there.
func dialOptions(DialFunc) *websocket.DialOptions { return nil }
