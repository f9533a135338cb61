package relay

import (
	"crypto/ecdh"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/linksim/linksim/sim/wire"
)

// loadOrCreateKey reads the relay's Noise static private key (32 raw bytes)
// from path, or makes one and writes it there. Keeping it is what lets a
// restarted relay prove the key its devices pinned.
func loadOrCreateKey(path string) (wire.KeyPair, error) {
	priv, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		kp, err := wire.GenerateKey()
		if err != nil {
			return wire.KeyPair{}, fmt.Errorf("generate key: %w", err)
		}
		// Write then rename, so a crash never leaves half a key that the
		// next start would refuse.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, kp.Private, 0o600); err != nil {
			return wire.KeyPair{}, fmt.Errorf("write key: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return wire.KeyPair{}, fmt.Errorf("write key: %w", err)
		}
		return kp, nil
	}
	if err != nil {
		return wire.KeyPair{}, fmt.Errorf("read key: %w", err)
	}
	kp, err := keyPair(priv)
	if err != nil {
		return wire.KeyPair{}, fmt.Errorf("key file %s: %w", path, err)
	}
	return kp, nil
}

// keyPair completes a Noise static private key with its public key.
func keyPair(priv []byte) (wire.KeyPair, error) {
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		return wire.KeyPair{}, err
	}
	return wire.KeyPair{Private: priv, Public: k.PublicKey().Bytes()}, nil
}
