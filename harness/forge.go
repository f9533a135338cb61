package harness

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/linksim/linksim/phone"
	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/wire/pb"
)

// Ways to tamper with a QR payload, as an attacker or a bad camera would.
const (
	TamperRef      = "ref"       // a ref the relay never issued
	TamperNoiseKey = "noise-key" // another companion's Noise key
	TamperAdv      = "adv"       // a different adv secret: the HMAC will not match
)

// TamperQR returns qr with one field changed.
func TamperQR(qr, field string) (string, error) {
	q, err := e2e.ParseQR(qr)
	if err != nil {
		return "", err
	}
	flip := func(b []byte) []byte {
		b = slices.Clone(b)
		b[len(b)-1] ^= 0x5A
		return b
	}
	switch field {
	case TamperRef:
		q.Ref = "forged" + q.Ref[6:]
	case TamperNoiseKey:
		q.NoiseKey = flip(q.NoiseKey)
	case TamperAdv:
		q.AdvSecret = flip(q.AdvSecret)
	default:
		return "", fmt.Errorf("tamper QR: unknown field %q", field)
	}
	return q.String(), nil
}

// ForgedScan scans qr as p's account would, but with the account signature
// made by a key that is not the account's: the relay must refuse it.
func ForgedScan(ctx context.Context, p *phone.Phone, qr string) error {
	q, err := e2e.ParseQR(qr)
	if err != nil {
		return err
	}
	rogue, err := e2e.Open(kv.NewMem())
	if err != nil {
		return err
	}
	devices, err := p.Devices(ctx, p.Self().User)
	if err != nil {
		return err
	}
	k := slices.Max(devices) + 1
	id := &pb.DeviceIdentity{User: p.Self().User, Device: k, TimestampUnix: time.Now().Unix(), KeyIndex: k}
	signed, err := e2e.SignDeviceIdentity(rogue, id, q.IdentityKey, q.AdvSecret)
	if err != nil {
		return err
	}
	scan := &pb.PairScan{Ref: q.Ref, CompanionNoiseKey: q.NoiseKey, CompanionIdentityKey: q.IdentityKey, Identity: signed}
	_, err = p.Call(ctx, &pb.Frame{Body: &pb.Frame_PairScan{PairScan: scan}})
	return err
}
