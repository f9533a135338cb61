package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/linksim/linksim/sim/wire/pb"
)

// addPreKeys stores prekeys in the device's prekey bucket up to max stored,
// skipping ids it has, and returns the count afterwards.
func addPreKeys(tx *bolt.Tx, k []byte, prekeys []*pb.PreKey, max int) (int, error) {
	b := tx.Bucket(bPreKeys).Bucket(k)
	if b == nil {
		return 0, ErrNotFound
	}
	n := countKeys(b)
	for _, pk := range prekeys {
		if n >= max {
			break
		}
		id := binary.BigEndian.AppendUint32(nil, pk.GetId())
		if b.Get(id) != nil {
			continue
		}
		if err := b.Put(id, pk.GetPublicKey()); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

func (s *Bolt) AddPreKeys(a Address, prekeys []*pb.PreKey, max int) (n int, err error) {
	err = s.group.write(func(tx *bolt.Tx) error {
		n, err = addPreKeys(tx, devKey(a), prekeys, max)
		return err
	})
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
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bPreKeys).Bucket(devKey(a))
		if b == nil {
			return ErrNotFound
		}
		n = countKeys(b)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: prekey count of %s: %w", a, err)
	}
	return n, nil
}

func (s *Bolt) TakeBundles(addrs []Address) (bundles []*pb.Bundle, left []int, err error) {
	// Group commit, because every sender starting a session fetches
	// bundles: the deletes of many fetches share one commit.
	err = s.group.write(func(tx *bolt.Tx) error {
		bundles, left = make([]*pb.Bundle, len(addrs)), make([]int, len(addrs))
		for i, a := range addrs {
			d, err := getDevice(tx, a)
			if err != nil {
				return fmt.Errorf("%s: %w", a, err)
			}
			b := &pb.Bundle{
				Address:        &pb.Address{User: a.User, Device: a.Device},
				RegistrationId: d.RegistrationID,
				IdentityKey:    d.IdentityKey,
				SignedPrekey:   d.SignedPreKey,
			}
			pks := tx.Bucket(bPreKeys).Bucket(devKey(a))
			if pks == nil {
				return fmt.Errorf("%s: no prekey bucket: %w", a, ErrNotFound)
			}
			if k, v := pks.Cursor().First(); k != nil {
				b.Prekey = &pb.PreKey{Id: binary.BigEndian.Uint32(k), PublicKey: append([]byte(nil), v...)}
				if err := pks.Delete(append([]byte(nil), k...)); err != nil {
					return err
				}
			}
			left[i] = countKeys(pks)
			bundles[i] = b
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store: take bundles: %w", err)
	}
	return bundles, left, nil
}
