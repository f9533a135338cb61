// Package wire is linksim's transport: protobuf frames (package pb) carried over
// a WebSocket and encrypted by a Noise XX_25519_AESGCM_SHA256 session. It is the
// only code that touches sockets and handshakes; the relay and every device use
// it, natively and compiled to WebAssembly.
package wire
