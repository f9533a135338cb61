package store

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/linksim/linksim/sim/wire/pb"
)

func (s *Bolt) CreateAccount(a Account, phone Device, prekeys []*pb.PreKey) error {
	if err := checkUser(a.User); err != nil {
		return err
	}
	if phone.User != a.User || phone.Device != 0 {
		return fmt.Errorf("store: create account %s: phone must be device 0 of the account", a.User)
	}
	err := s.group.write(func(tx *bolt.Tx) error {
		if tx.Bucket(bAccounts).Get([]byte(a.User)) != nil {
			return ErrAccountExists
		}
		a.MaxDevice = 0
		if err := putAccount(tx, a); err != nil {
			return err
		}
		return putDevice(tx, phone)
	})
	if err == nil {
		err = s.setPreKeys(phone.Address, prekeys)
	}
	if err != nil {
		return fmt.Errorf("store: create account %s: %w", a.User, err)
	}
	return nil
}

func (s *Bolt) Account(user string) (a Account, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		a, err = getAccount(tx, user)
		return err
	})
	if err != nil {
		return Account{}, fmt.Errorf("store: account %s: %w", user, err)
	}
	return a, nil
}

func (s *Bolt) Device(a Address) (d Device, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		d, err = getDevice(tx, a)
		return err
	})
	if err != nil {
		return Device{}, fmt.Errorf("store: device %s: %w", a, err)
	}
	return d, nil
}

func (s *Bolt) DeviceByKey(noiseKey []byte) (d Device, err error) {
	if len(noiseKey) == 0 {
		return Device{}, fmt.Errorf("store: device by key: %w", ErrNotFound)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		if k := tx.Bucket(bKeys).Get(noiseKey); k != nil {
			d, err = getDevice(tx, parseDevKey(k))
			return err
		}
		if k := tx.Bucket(bRemoved).Get(noiseKey); k != nil {
			d = Device{Address: parseDevKey(k)}
			return ErrRemoved
		}
		return ErrNotFound
	})
	if err != nil {
		return d, fmt.Errorf("store: device by key: %w", err)
	}
	return d, nil
}

func (s *Bolt) DeviceIDs(user string) (ids []uint32, err error) {
	return s.ids(user, deviceIDs)
}

func (s *Bolt) ListedIDs(user string) (ids []uint32, err error) {
	return s.ids(user, listedIDs)
}

func (s *Bolt) ids(user string, list func(*bolt.Tx, string) []uint32) (ids []uint32, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bAccounts).Get([]byte(user)) == nil {
			return ErrNotFound
		}
		ids = list(tx, user)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: devices of %s: %w", user, err)
	}
	return ids, nil
}

func (s *Bolt) AddCompanion(d Device, prekeys []*pb.PreKey, maxCompanions int) error {
	err := s.group.write(func(tx *bolt.Tx) error {
		a, err := getAccount(tx, d.User)
		if err != nil {
			return err
		}
		if d.Device <= a.MaxDevice {
			return ErrDeviceID
		}
		if len(deviceIDs(tx, d.User))-1 >= maxCompanions {
			return ErrTooManyDevices
		}
		a.MaxDevice = d.Device
		if err := putAccount(tx, a); err != nil {
			return err
		}
		return putDevice(tx, d)
	})
	if err == nil {
		err = s.setPreKeys(d.Address, prekeys)
	}
	if err != nil {
		return fmt.Errorf("store: add companion %s: %w", d.Address, err)
	}
	return nil
}

func (s *Bolt) RemoveDevices(user string, ids []uint32) ([]Device, error) {
	var removed []Device
	err := s.group.write(func(tx *bolt.Tx) error {
		removed = nil
		for _, id := range ids {
			a := Address{User: user, Device: id}
			d, err := getDevice(tx, a)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			k := devKey(a)
			if err := forgetSender(tx, k); err != nil {
				return err
			}
			// The queue's items are deleted lazily, as acked ones are:
			// those left by a crash are deleted on open. After the
			// transaction's enqueues to the device, in commit order.
			tx.OnCommit(func() {
				s.acks.add(s.index.drop(string(k)))
				s.group.kickLazy()
			})
			if err := tx.Bucket(bDevices).Delete(k); err != nil {
				return err
			}
			if err := unlistDevice(tx, a); err != nil {
				return err
			}
			if err := tx.Bucket(bKeys).Delete(d.NoiseKey); err != nil {
				return err
			}
			if err := tx.Bucket(bRemoved).Put(d.NoiseKey, k); err != nil {
				return err
			}
			removed = append(removed, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: remove devices of %s: %w", user, err)
	}
	// The devices are gone: their prekeys can no longer be reached, so a
	// failure here leaves garbage, nothing wrong.
	s.dropPreKeys(removed)
	return removed, nil
}

func (s *Bolt) SetProfile(user string, pushName, about *string, nowMs int64) error {
	err := s.group.write(func(tx *bolt.Tx) error {
		a, err := getAccount(tx, user)
		if err != nil {
			return err
		}
		if pushName != nil {
			a.PushName = *pushName
		}
		if about != nil {
			a.About, a.AboutSetUnixMs = *about, nowMs
		}
		return putAccount(tx, a)
	})
	if err != nil {
		return fmt.Errorf("store: set profile of %s: %w", user, err)
	}
	return nil
}
