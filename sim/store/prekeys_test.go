package store

import (
	"encoding/binary"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// A store written when prekeys were nested buckets of the main file gets
// them moved to the prekey file on open, and the main file loses them.
func TestPreKeysMovedOutOfMainFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.db")
	s, err := OpenBolt(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustAccount(t, s, "+1000000", 1)
	phone := Address{User: "+1000000"}
	s.Close()
	// Rewrite it as the older layout kept it: prekeys 7 and 8 in the main
	// file, none in the prekey file.
	old, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = old.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bPreKeys)
		if err != nil {
			return err
		}
		dev, err := b.CreateBucket(devKey(phone))
		if err != nil {
			return err
		}
		for _, id := range []uint32{7, 8} {
			if err := dev.Put(binary.BigEndian.AppendUint32(nil, id), []byte{5, byte(id)}); err != nil {
				return err
			}
		}
		return nil
	})
	old.Close()
	if err != nil {
		t.Fatal(err)
	}
	pk, err := bolt.Open(filepath.Join(filepath.Dir(path), "relay-prekeys.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	pk.Update(func(tx *bolt.Tx) error { return tx.Bucket(bPreKeysFile).Delete(devKey(phone)) })
	pk.Close()

	s, err = OpenBolt(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.PreKeyCount(phone); n != 2 || err != nil {
		t.Fatalf("prekeys after the move: %d, %v; want 2", n, err)
	}
	bundles, left, err := s.TakeBundles([]Address{phone})
	if err != nil || bundles[0].GetPrekey().GetId() != 7 || left[0] != 1 {
		t.Fatalf("bundle after the move: %v, left %v, %v; want prekey 7, 1 left", bundles, left, err)
	}
	s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bPreKeys) != nil {
			t.Error("the main file still holds prekeys after the move")
		}
		return nil
	})
}
