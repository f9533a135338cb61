package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/linksim/linksim/sim/wire/pb"
)

// One-time prekeys live in a file of their own (prekeys.db next to the
// store's file), one value per device: devKey -> the device's prekeys packed
// oldest first, each a 4-byte id, a 1-byte length and the public key. They
// were most of the queue database (a nested bucket per device, a page or
// two each); apart, queue commits never touch them, and a bundle fetch
// rewrites one value.
var bPreKeysFile = []byte("prekeys")

// packedPreKeys is one device's prekeys as stored.
type packedPreKeys []byte

func (p packedPreKeys) each(fn func(id uint32, pub []byte) bool) error {
	for len(p) > 0 {
		if len(p) < 5 || len(p) < 5+int(p[4]) {
			return errors.New("store: corrupt prekey record")
		}
		n := 5 + int(p[4])
		if !fn(binary.BigEndian.Uint32(p), p[5:n]) {
			return nil
		}
		p = p[n:]
	}
	return nil
}

// add appends the prekeys whose ids are not stored yet, up to max stored,
// and returns the result and its count.
func (p packedPreKeys) add(prekeys []*pb.PreKey, max int) (packedPreKeys, int, error) {
	have := map[uint32]bool{}
	if err := p.each(func(id uint32, _ []byte) bool { have[id] = true; return true }); err != nil {
		return nil, 0, err
	}
	out := append(packedPreKeys(nil), p...)
	for _, pk := range prekeys {
		if len(have) >= max {
			break
		}
		if have[pk.GetId()] {
			continue
		}
		pub := pk.GetPublicKey()
		if len(pub) > 255 {
			return nil, 0, fmt.Errorf("store: prekey %d: public key of %d bytes", pk.GetId(), len(pub))
		}
		out = binary.BigEndian.AppendUint32(out, pk.GetId())
		out = append(append(out, byte(len(pub))), pub...)
		have[pk.GetId()] = true
	}
	return out, len(have), nil
}

// openPreKeys opens the prekey file; a store written before it existed
// has its prekeys moved over from the main file.
func (s *Bolt) openPreKeys(path string) error {
	db, err := bolt.Open(path, 0o600, boltOptions(s.opt))
	if err != nil {
		return err
	}
	s.pk = db
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bPreKeysFile)
		return err
	})
	if err != nil {
		return err
	}
	return s.movePreKeys()
}

// movePreKeys moves the nested prekey buckets of an older main file into
// the prekey file: written there first, then deleted here, so a crash in
// between only repeats the move.
func (s *Bolt) movePreKeys() error {
	old := map[string]packedPreKeys{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bPreKeys)
		if b == nil {
			return nil
		}
		return b.ForEachBucket(func(k []byte) error {
			var keys []*pb.PreKey
			b.Bucket(k).ForEach(func(id, pub []byte) error {
				keys = append(keys, &pb.PreKey{Id: binary.BigEndian.Uint32(id), PublicKey: append([]byte(nil), pub...)})
				return nil
			})
			p, _, err := packedPreKeys(nil).add(keys, len(keys))
			old[string(k)] = p
			return err
		})
	})
	if err != nil || len(old) == 0 {
		return err
	}
	err = s.pk.Update(func(tx *bolt.Tx) error {
		for k, p := range old {
			if err := tx.Bucket(bPreKeysFile).Put([]byte(k), p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bPreKeys) })
}

// setPreKeys replaces the prekeys of devices just created: anything left
// under their key (a crash between the two files' commits) is dropped.
func (s *Bolt) setPreKeys(a Address, prekeys []*pb.PreKey) error {
	p, _, err := packedPreKeys(nil).add(prekeys, len(prekeys))
	if err != nil {
		return err
	}
	return s.pkGroup.write(func(tx *bolt.Tx) error {
		return tx.Bucket(bPreKeysFile).Put(devKey(a), p)
	})
}

// dropPreKeys deletes removed devices' prekeys.
func (s *Bolt) dropPreKeys(removed []Device) error {
	if len(removed) == 0 {
		return nil
	}
	return s.pkGroup.write(func(tx *bolt.Tx) error {
		for _, d := range removed {
			if err := tx.Bucket(bPreKeysFile).Delete(devKey(d.Address)); err != nil {
				return err
			}
		}
		return nil
	})
}

// mustExist fails with ErrNotFound unless every address is a device.
func (s *Bolt) mustExist(addrs ...Address) ([]Device, error) {
	devs := make([]Device, len(addrs))
	err := s.db.View(func(tx *bolt.Tx) error {
		for i, a := range addrs {
			d, err := getDevice(tx, a)
			if err != nil {
				return fmt.Errorf("%s: %w", a, err)
			}
			devs[i] = d
		}
		return nil
	})
	return devs, err
}

func (s *Bolt) AddPreKeys(a Address, prekeys []*pb.PreKey, max int) (n int, err error) {
	if _, err = s.mustExist(a); err == nil {
		err = s.pkGroup.write(func(tx *bolt.Tx) error {
			b := tx.Bucket(bPreKeysFile)
			var p packedPreKeys
			p, n, err = packedPreKeys(b.Get(devKey(a))).add(prekeys, max)
			if err != nil {
				return err
			}
			return b.Put(devKey(a), p)
		})
	}
	if err != nil {
		return 0, fmt.Errorf("store: add prekeys of %s: %w", a, err)
	}
	return n, nil
}

func (s *Bolt) SetSignedPreKey(a Address, spk *pb.SignedPreKey) error {
	err := s.group.write(func(tx *bolt.Tx) error {
		d, err := getDevice(tx, a)
		if err != nil {
			return err
		}
		d.SignedPreKey = spk
		rec, err := encodeDevice(d)
		if err != nil {
			return err
		}
		return tx.Bucket(bDevices).Put(devKey(a), rec)
	})
	if err != nil {
		return fmt.Errorf("store: set signed prekey of %s: %w", a, err)
	}
	return nil
}

func (s *Bolt) PreKeyCount(a Address) (n int, err error) {
	if _, err = s.mustExist(a); err == nil {
		err = s.pk.View(func(tx *bolt.Tx) error {
			return packedPreKeys(tx.Bucket(bPreKeysFile).Get(devKey(a))).each(func(uint32, []byte) bool { n++; return true })
		})
	}
	if err != nil {
		return 0, fmt.Errorf("store: prekey count of %s: %w", a, err)
	}
	return n, nil
}

func (s *Bolt) TakeBundles(addrs []Address) (bundles []*pb.Bundle, left []int, err error) {
	devs, err := s.mustExist(addrs...)
	if err != nil {
		return nil, nil, fmt.Errorf("store: take bundles: %w", err)
	}
	// Group commit, because every sender starting a session fetches
	// bundles: the deletes of many fetches share one commit.
	err = s.pkGroup.write(func(tx *bolt.Tx) error {
		bundles, left = make([]*pb.Bundle, len(addrs)), make([]int, len(addrs))
		b := tx.Bucket(bPreKeysFile)
		for i, a := range addrs {
			d := devs[i]
			bundles[i] = &pb.Bundle{
				Address:        &pb.Address{User: a.User, Device: a.Device},
				RegistrationId: d.RegistrationID,
				IdentityKey:    d.IdentityKey,
				SignedPrekey:   d.SignedPreKey,
			}
			p := packedPreKeys(b.Get(devKey(a)))
			first := true
			err := p.each(func(id uint32, pub []byte) bool {
				if first {
					bundles[i].Prekey = &pb.PreKey{Id: id, PublicKey: append([]byte(nil), pub...)}
					p, first = p[5+len(pub):], false
				} else {
					left[i]++
				}
				return true
			})
			if err != nil {
				return err
			}
			if bundles[i].Prekey != nil {
				if err := b.Put(devKey(a), append([]byte(nil), p...)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store: take bundles: %w", err)
	}
	return bundles, left, nil
}
