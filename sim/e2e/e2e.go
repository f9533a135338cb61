// Package e2e is a device's end-to-end encryption: Signal sessions (via
// go.mau.fi/libsignal) kept in a kv.KV, the device identity signatures that
// bind a companion to its account when pairing, the pairing QR payload, and
// media encryption (streaming AES-256-CBC and a truncated HMAC, as WhatsApp
// encrypts media).
package e2e

import (
	"errors"
	"fmt"
	"strconv"

	"go.mau.fi/libsignal/logger"
)

var (
	// ErrNoSession means there is no session with the peer: fetch its
	// bundle (to send) or ask it to resend with a new session (to receive).
	ErrNoSession = errors.New("no session")
	// ErrDuplicate means the message key was already used: almost always a
	// redelivered message that was decrypted before.
	ErrDuplicate = errors.New("message already decrypted")
	// ErrBadSignature means a signature does not verify, or was made by a
	// key other than the expected one.
	ErrBadSignature = errors.New("bad signature")
	// ErrNoKeyIndexList means keys came without the account's signed
	// device list, so nothing vouches for the device.
	ErrNoKeyIndexList = errors.New("no signed device list")
	// ErrHMACMismatch means the device identity was not made with our adv
	// secret: the QR code was read by someone else, or it was tampered with.
	ErrHMACMismatch = errors.New("device identity HMAC mismatch")
)

// Address names one device of one user.
type Address struct {
	User   string
	Device uint32
}

// String returns "user:device", as libsignal's SignalAddress does.
func (a Address) String() string {
	return a.User + ":" + strconv.FormatUint(uint64(a.Device), 10)
}

// Prefix is where a Store keeps its keys in the kv.KV; deleting the prefix
// forgets the device's identity and every session. Layout:
//
//	signal/identity              32-byte identity private key (written last on creation)
//	signal/registration-id       4 bytes, big endian
//	signal/next-prekey-id        4 bytes, big endian; the id the next one-time prekey gets
//	signal/prekey/<id>           one-time prekey: 32-byte private key; id is 8 decimal digits
//	signal/signed-prekey/<id>    32-byte private key, then the 64-byte signature of its public key
//	signal/session/<addr>        libsignal SessionRecord; addr is Address.String
//	signal/peer-identity/<addr>  the peer's 33-byte identity key, last seen
const Prefix = "signal/"

const (
	keyIdentity     = Prefix + "identity"
	keyRegID        = Prefix + "registration-id"
	keyNextPreKeyID = Prefix + "next-prekey-id"
	prefixPreKey    = Prefix + "prekey/"
	prefixSigned    = Prefix + "signed-prekey/"
	prefixSession   = Prefix + "session/"
	prefixPeerID    = Prefix + "peer-identity/"
)

func idKey(prefix string, id uint32) string {
	return fmt.Sprintf("%s%08d", prefix, id)
}

// libsignal prints its warnings and errors to stdout, which would mix with
// the output of whatever runs the simulator. Everything it logs it also
// returns as an error, which we wrap, so nothing is lost by muting it.
func init() {
	if logger.Logger == nil {
		var l logger.Loggable = quiet{}
		logger.Setup(&l)
	}
}

type quiet struct{}

func (quiet) Debug(string, string)   {}
func (quiet) Info(string, string)    {}
func (quiet) Warning(string, string) {}
func (quiet) Error(string, string)   {}
func (quiet) Configure(string)       {}
