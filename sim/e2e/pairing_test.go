package e2e

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/linksim/linksim/sim/wire/pb"
)

func TestDeviceIdentity(t *testing.T) {
	phone, companion, eve := newStore(t), newStore(t), newStore(t)
	secret := bytes.Repeat([]byte{7}, 32)
	id := &pb.DeviceIdentity{User: "+15550100", Device: 3, TimestampUnix: 1700000000, KeyIndex: 1}

	// forge rebuilds an offer from fields, with a valid HMAC, as someone
	// who knows the adv secret but not the phone's key could.
	forge := func(s *pb.SignedDeviceIdentity) *pb.SignedDeviceIdentityHMAC {
		b, err := proto.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		return &pb.SignedDeviceIdentityHMAC{Details: b, Hmac: mac(secret, b)}
	}
	details, _ := proto.Marshal(id)
	accountMsg := concat(accountSigPrefix, details, companion.IdentityKey())

	tests := []struct {
		name  string
		offer func() *pb.SignedDeviceIdentityHMAC
		want  error // from OpenDeviceIdentity
	}{
		{"valid", func() *pb.SignedDeviceIdentityHMAC { return sign(t, phone, id, companion, secret) }, nil},
		{"tampered hmac", func() *pb.SignedDeviceIdentityHMAC {
			h := sign(t, phone, id, companion, secret)
			h.Hmac[0] ^= 1
			return h
		}, ErrHMACMismatch},
		{"tampered details", func() *pb.SignedDeviceIdentityHMAC {
			h := sign(t, phone, id, companion, secret)
			h.Details[len(h.Details)-1] ^= 1
			return h
		}, ErrHMACMismatch},
		{"other adv secret", func() *pb.SignedDeviceIdentityHMAC {
			return sign(t, phone, id, companion, bytes.Repeat([]byte{8}, 32))
		}, ErrHMACMismatch},
		{"signed by another account", func() *pb.SignedDeviceIdentityHMAC { return sign(t, eve, id, companion, secret) }, ErrBadSignature},
		{"forged account signature", func() *pb.SignedDeviceIdentityHMAC {
			return forge(&pb.SignedDeviceIdentity{Details: details, AccountSignatureKey: phone.IdentityKey(), AccountSignature: eve.Sign(accountMsg)})
		}, ErrBadSignature},
		{"details changed after signing", func() *pb.SignedDeviceIdentityHMAC {
			other, _ := proto.Marshal(&pb.DeviceIdentity{User: "+15550100", Device: 4})
			return forge(&pb.SignedDeviceIdentity{Details: other, AccountSignatureKey: phone.IdentityKey(), AccountSignature: phone.Sign(accountMsg)})
		}, ErrBadSignature},
		{"signed for another companion", func() *pb.SignedDeviceIdentityHMAC { return sign(t, phone, id, eve, secret) }, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, got, err := OpenDeviceIdentity(tt.offer(), secret, companion.IdentityKey(), phone.IdentityKey())
			if !errors.Is(err, tt.want) {
				t.Fatalf("OpenDeviceIdentity: %v, want %v", err, tt.want)
			}
			if tt.want != nil {
				return
			}
			if !proto.Equal(got, id) {
				t.Errorf("opened identity %v, want %v", got, id)
			}
			if err := CounterSign(companion, s); err != nil {
				t.Fatal(err)
			}
			got, err = VerifyDeviceIdentity(s, companion.IdentityKey(), phone.IdentityKey())
			if err != nil || !proto.Equal(got, id) {
				t.Errorf("VerifyDeviceIdentity = %v, %v; want %v", got, err, id)
			}
		})
	}
}

func TestVerifyDeviceIdentityRejects(t *testing.T) {
	phone, companion, eve := newStore(t), newStore(t), newStore(t)
	secret := bytes.Repeat([]byte{7}, 32)
	id := &pb.DeviceIdentity{User: "+15550100", Device: 3}
	signed := func() *pb.SignedDeviceIdentity {
		s, _, err := OpenDeviceIdentity(sign(t, phone, id, companion, secret), secret, companion.IdentityKey(), phone.IdentityKey())
		if err != nil {
			t.Fatal(err)
		}
		if err := CounterSign(companion, s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name    string
		mutate  func(s *pb.SignedDeviceIdentity)
		account []byte
	}{
		{"device signature by another key", func(s *pb.SignedDeviceIdentity) {
			if err := CounterSign(eve, s); err != nil {
				t.Fatal(err)
			}
		}, phone.IdentityKey()},
		{"device signature flipped", func(s *pb.SignedDeviceIdentity) { s.DeviceSignature[5] ^= 1 }, phone.IdentityKey()},
		{"no device signature", func(s *pb.SignedDeviceIdentity) { s.DeviceSignature = nil }, phone.IdentityKey()},
		{"account signature flipped", func(s *pb.SignedDeviceIdentity) { s.AccountSignature[5] ^= 1 }, phone.IdentityKey()},
		{"other account", func(*pb.SignedDeviceIdentity) {}, eve.IdentityKey()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := signed()
			tt.mutate(s)
			if _, err := VerifyDeviceIdentity(s, companion.IdentityKey(), tt.account); !errors.Is(err, ErrBadSignature) {
				t.Errorf("VerifyDeviceIdentity: %v, want ErrBadSignature", err)
			}
		})
	}
}

func sign(t *testing.T, phone *Store, id *pb.DeviceIdentity, companion *Store, secret []byte) *pb.SignedDeviceIdentityHMAC {
	t.Helper()
	h, err := SignDeviceIdentity(phone, id, companion.IdentityKey(), secret)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
