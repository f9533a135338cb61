package e2e

import (
	"bytes"
	"context"
	"errors"

	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/wire/pb"
)

// Warm runs a session start once between two throwaway stores in memory:
// a bundle processed, a prekey message encrypted and decrypted. A runtime
// that compiles code on its first use (WebAssembly in V8: lazily, and in a
// baseline tier first) then has that code ready for the device's first
// real decrypt, its phone's history: in Chromium that decrypt took
// 160-250 ms cold against 17-49 ms after this (docs/performance.md,
// session 7). It touches no state of any device.
func Warm() error {
	phone, err := Open(kv.NewMem())
	if err != nil {
		return err
	}
	companion, err := Open(kv.NewMem())
	if err != nil {
		return err
	}
	k, err := companion.Keys(1)
	if err != nil {
		return err
	}
	to, from := Address{User: "warm", Device: 1}, Address{User: "warm", Device: 0}
	ctx := context.Background()
	b := &pb.Bundle{Address: &pb.Address{User: to.User, Device: to.Device}, RegistrationId: k.RegistrationId,
		IdentityKey: k.IdentityKey, SignedPrekey: k.SignedPrekey, Prekey: k.Prekeys[0]}
	if err := phone.ProcessBundle(ctx, b); err != nil {
		return err
	}
	msg := []byte("warm")
	t, c, err := phone.Encrypt(ctx, to, msg)
	if err != nil {
		return err
	}
	got, err := companion.Decrypt(ctx, from, t, c)
	if err != nil {
		return err
	}
	if t != pb.CipherType_PREKEY_MESSAGE || !bytes.Equal(got, msg) {
		return errors.New("e2e: warm-up session did not round-trip a prekey message")
	}
	return nil
}
