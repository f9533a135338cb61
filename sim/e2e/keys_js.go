package e2e

// In the web app the identity key is made on the way to the first QR code,
// and filippo.io/edwards25519 builds its base-point table on first use:
// 40-65 ms of cold WebAssembly before the code shows, where a ladder, whose
// code the Noise key has just run, takes a few. The table is then first
// built by XEdDSA signing (the signed prekey), while the code shows.
const baseTable = false
