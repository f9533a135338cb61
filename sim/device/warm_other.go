//go:build !js

package device

// warmCrypto: native code is compiled ahead of time; warming would only
// cost the CPU of load tests pairing thousands of companions.
const warmCrypto = false
