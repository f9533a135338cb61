package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// SetKeyIndexList replaces the account's signed device list.
func (s *Bolt) SetKeyIndexList(user string, signed []byte) error {
	err := s.group.write(func(tx *bolt.Tx) error {
		a, err := getAccount(tx, user)
		if err != nil {
			return err
		}
		a.KeyIndexList = signed
		return putAccount(tx, a)
	})
	if err != nil {
		return fmt.Errorf("store: set key index list of %s: %w", user, err)
	}
	return nil
}
