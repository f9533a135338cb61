package device

// warmCrypto: in the browser the first decrypt runs cold code (e2e.Warm),
// so a companion warms it while its QR code shows.
const warmCrypto = true
