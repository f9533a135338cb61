package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/linksim/linksim/sim/wire/pb"
)

// Prefixes of the signed messages, so that an account signature can never
// pass for a device signature or the reverse.
var (
	accountSigPrefix = []byte{0x06, 0x00}
	deviceSigPrefix  = []byte{0x06, 0x01}
)

// SignDeviceIdentity is the phone's half of pairing: it vouches that the
// companion whose identity key is companionIdentityKey is device id of its
// account. With details the serialized DeviceIdentity:
//
//	account_signature = Sign(0x06 0x00 || details || companionIdentityKey), by the phone's identity key
//	identity          = SignedDeviceIdentity{details, account_signature_key: phone identity key, account_signature}
//	result            = SignedDeviceIdentityHMAC{details: serialized identity, hmac: HMAC-SHA256(advSecret, serialized identity)}
//
// The HMAC proves to the companion that the phone read its QR code, which is
// the only place advSecret appears.
func SignDeviceIdentity(phone *Store, id *pb.DeviceIdentity, companionIdentityKey, advSecret []byte) (*pb.SignedDeviceIdentityHMAC, error) {
	details, err := pb.Marshal(id)
	if err != nil {
		return nil, fmt.Errorf("e2e: sign device identity: %w", err)
	}
	signed, err := pb.Marshal(&pb.SignedDeviceIdentity{
		Details:             details,
		AccountSignatureKey: phone.IdentityKey(),
		AccountSignature:    phone.Sign(concat(accountSigPrefix, details, companionIdentityKey)),
	})
	if err != nil {
		return nil, fmt.Errorf("e2e: sign device identity: %w", err)
	}
	return &pb.SignedDeviceIdentityHMAC{Details: signed, Hmac: mac(advSecret, signed)}, nil
}

// OpenDeviceIdentity is the companion's check of the phone's offer: the
// HMAC under advSecret (ErrHMACMismatch), then that the account signature
// key is accountIdentityKey, the phone's registered key, and that its
// signature covers companionIdentityKey (ErrBadSignature).
func OpenDeviceIdentity(h *pb.SignedDeviceIdentityHMAC, advSecret, companionIdentityKey, accountIdentityKey []byte) (*pb.SignedDeviceIdentity, *pb.DeviceIdentity, error) {
	if !hmac.Equal(h.GetHmac(), mac(advSecret, h.GetDetails())) {
		return nil, nil, fmt.Errorf("e2e: open device identity: %w", ErrHMACMismatch)
	}
	var s pb.SignedDeviceIdentity
	if err := pb.Unmarshal(h.GetDetails(), &s); err != nil {
		return nil, nil, fmt.Errorf("e2e: open device identity: %w", err)
	}
	id, err := VerifyAccountSignature(&s, companionIdentityKey, accountIdentityKey)
	if err != nil {
		return nil, nil, fmt.Errorf("e2e: open device identity: %w", err)
	}
	return &s, id, nil
}

// CounterSign is the companion's acceptance, after OpenDeviceIdentity: it
// fills in
//
//	device_signature = Sign(0x06 0x01 || details || companionIdentityKey || account_signature_key), by the companion's identity key
func CounterSign(companion *Store, s *pb.SignedDeviceIdentity) error {
	if len(s.GetDetails()) == 0 || len(s.GetAccountSignatureKey()) == 0 {
		return errors.New("e2e: counter-sign: device identity has no details or account key")
	}
	s.DeviceSignature = companion.Sign(concat(deviceSigPrefix, s.Details, companion.IdentityKey(), s.AccountSignatureKey))
	return nil
}

// VerifyDeviceIdentity is the relay's check before it links a companion:
// both signatures, and that the account signature is by accountIdentityKey.
// It returns the identity the phone vouched for.
func VerifyDeviceIdentity(s *pb.SignedDeviceIdentity, companionIdentityKey, accountIdentityKey []byte) (*pb.DeviceIdentity, error) {
	id, err := VerifyAccountSignature(s, companionIdentityKey, accountIdentityKey)
	if err != nil {
		return nil, fmt.Errorf("e2e: verify device identity: %w", err)
	}
	msg := concat(deviceSigPrefix, s.GetDetails(), companionIdentityKey, s.GetAccountSignatureKey())
	if !Verify(companionIdentityKey, msg, s.GetDeviceSignature()) {
		return nil, fmt.Errorf("e2e: verify device identity: device signature: %w", ErrBadSignature)
	}
	return id, nil
}

// VerifyAccountSignature checks that s carries accountIdentityKey's
// signature over 0x06 0x00 || details || companionIdentityKey, and decodes
// its details. The relay checks it at scan time, before the companion has
// counter-signed.
func VerifyAccountSignature(s *pb.SignedDeviceIdentity, companionIdentityKey, accountIdentityKey []byte) (*pb.DeviceIdentity, error) {
	if !bytes.Equal(s.GetAccountSignatureKey(), accountIdentityKey) {
		return nil, fmt.Errorf("account signature by another key than the account's: %w", ErrBadSignature)
	}
	msg := concat(accountSigPrefix, s.GetDetails(), companionIdentityKey)
	if !Verify(accountIdentityKey, msg, s.GetAccountSignature()) {
		return nil, fmt.Errorf("account signature: %w", ErrBadSignature)
	}
	var id pb.DeviceIdentity
	if err := pb.Unmarshal(s.GetDetails(), &id); err != nil {
		return nil, fmt.Errorf("details: %w", err)
	}
	return &id, nil
}

func mac(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

func concat(parts ...[]byte) []byte {
	return bytes.Join(parts, nil)
}
