package relay

import (
	"regexp"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
)

// Limits of docs/protocol.md §13 that are not configurable.
const (
	maxMessageID     = 64
	maxEnvelopes     = 1024
	maxAddresses     = 256 // per FetchBundles
	maxUsers         = 256 // per GetDevices
	maxUploadPreKeys = 200
	maxStoredPreKeys = 1000
	preKeysLow       = 10
	window           = 256 // unacknowledged deliveries per device
	maxPushName      = 64  // bytes
	maxAbout         = 139 // characters
	maxPlatform      = 64  // bytes
	maxReceiptIDs    = 1024
)

var userRE = regexp.MustCompile(`^\+[0-9]{6,15}$`)

func checkUser(user string) error {
	if !userRE.MatchString(user) {
		return badRequest("user %q is not a phone number like +15550100", user)
	}
	return nil
}

// publicKey reports whether b looks like a serialized Curve25519 public key:
// 33 bytes, type byte 0x05.
func publicKey(b []byte) bool {
	return len(b) == 33 && b[0] == 0x05
}

// checkKeys checks a device's Signal keys: an identity key, a signed prekey
// signed by it, and at most maxUploadPreKeys one-time prekeys.
func checkKeys(k *pb.SignalKeys) error {
	if k == nil {
		return badRequest("no keys")
	}
	if !publicKey(k.GetIdentityKey()) {
		return badRequest("identity key is not a 33-byte public key")
	}
	if err := checkSignedPreKey(k.GetIdentityKey(), k.GetSignedPrekey()); err != nil {
		return err
	}
	return checkPreKeys(k.GetPrekeys())
}

func checkSignedPreKey(identityKey []byte, spk *pb.SignedPreKey) error {
	if spk == nil {
		return badRequest("no signed prekey")
	}
	if !publicKey(spk.GetPublicKey()) {
		return badRequest("signed prekey is not a 33-byte public key")
	}
	if !e2e.Verify(identityKey, spk.GetPublicKey(), spk.GetSignature()) {
		return fail(pb.ErrorCode_BAD_SIGNATURE, "signed prekey signature does not verify")
	}
	return nil
}

func checkPreKeys(pks []*pb.PreKey) error {
	if len(pks) > maxUploadPreKeys {
		return badRequest("%d prekeys, at most %d per request", len(pks), maxUploadPreKeys)
	}
	for _, pk := range pks {
		if !publicKey(pk.GetPublicKey()) {
			return badRequest("prekey %d is not a 33-byte public key", pk.GetId())
		}
	}
	return nil
}

func checkMessageID(id string) error {
	if len(id) < 1 || len(id) > maxMessageID {
		return badRequest("message id of %d bytes, want 1 to %d", len(id), maxMessageID)
	}
	return nil
}
