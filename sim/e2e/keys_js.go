package e2e

// In the web app the identity key is made on the way to the first QR code,
// and filippo.io/edwards25519 builds its base-point table on first use:
// 40-80 ms of cold WebAssembly (profiled) before the code shows. The ladder
// needs no table, and the Noise key has just run its code. The table is
// then first built by XEdDSA signing (the signed prekey), while the code
// shows (docs/performance.md, "Page opened → QR drawn, session 8").
const baseTable = false
