package e2e

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// QR is what a companion shows for the phone to scan: the pairing ref the
// relay issued, and the companion's Noise and identity public keys and a
// fresh secret. The phone proves it read the code by an HMAC with the
// secret (see SignDeviceIdentity).
type QR struct {
	Ref         string // from PairRef; base64url-like, never contains a comma
	NoiseKey    []byte // 32 bytes, Curve25519
	IdentityKey []byte // 33 bytes, type-prefixed (Store.IdentityKey)
	AdvSecret   []byte // 32 random bytes
}

const qrVersion = "v1"

// qrKeys names the base64 fields after the ref, with their lengths.
var qrKeys = []struct {
	name string
	len  int
}{{"noise key", 32}, {"identity key", 33}, {"adv secret", 32}}

// maxRef bounds a ref's length; the relay's are 22 characters.
const maxRef = 64

// checkRef accepts a ref a PairScan can carry and a user can read: 1 to
// maxRef printable ASCII characters, no comma or space.
func checkRef(ref string) error {
	if ref == "" {
		return errors.New("e2e: qr: empty ref")
	}
	if len(ref) > maxRef {
		return fmt.Errorf("e2e: qr: ref of %d bytes, want at most %d", len(ref), maxRef)
	}
	for i := range len(ref) {
		if c := ref[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("e2e: qr: ref has byte %#02x at %d, want printable ASCII", c, i)
		}
	}
	return nil
}

// String returns the text to encode in the QR code, version 1:
//
//	v1,<ref>,<noise key>,<identity key>,<adv secret>
//
// with the keys in standard, padded base64.
func (q QR) String() string {
	enc := base64.StdEncoding.EncodeToString
	return strings.Join([]string{qrVersion, q.Ref, enc(q.NoiseKey), enc(q.IdentityKey), enc(q.AdvSecret)}, ",")
}

// ParseQR parses the text of a QR code made by QR.String.
func ParseQR(s string) (QR, error) {
	f := strings.Split(s, ",")
	if f[0] != qrVersion {
		return QR{}, fmt.Errorf("e2e: qr: version %.10q, want %q", f[0], qrVersion)
	}
	if len(f) != 5 {
		return QR{}, fmt.Errorf("e2e: qr: %d fields, want 5 (v1,ref,noise key,identity key,adv secret)", len(f))
	}
	if err := checkRef(f[1]); err != nil {
		return QR{}, err
	}
	keys := make([][]byte, len(qrKeys))
	for i, k := range qrKeys {
		b, err := base64.StdEncoding.DecodeString(f[2+i])
		if err != nil {
			return QR{}, fmt.Errorf("e2e: qr: %s: bad base64: %w", k.name, err)
		}
		if len(b) != k.len {
			return QR{}, fmt.Errorf("e2e: qr: %s is %d bytes, want %d", k.name, len(b), k.len)
		}
		// The decoder skips line breaks and ignores stray low bits; a
		// payload must have the one spelling String gives it.
		if base64.StdEncoding.EncodeToString(b) != f[2+i] {
			return QR{}, fmt.Errorf("e2e: qr: %s: not canonical base64", k.name)
		}
		keys[i] = b
	}
	return QR{Ref: f[1], NoiseKey: keys[0], IdentityKey: keys[1], AdvSecret: keys[2]}, nil
}
