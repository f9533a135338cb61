//go:build !js

package kv

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucket = []byte("linksim")

// Bolt is a KV in a bbolt file, all keys in one bucket. Every Put, Delete
// and PutBatch is its own transaction, synced to disk before it returns.
type Bolt struct {
	db *bolt.DB
}

// OpenBolt opens or creates the bbolt file at path. A file is locked by the
// process that has it open; OpenBolt gives up after a second rather than
// wait for another process to let go.
func OpenBolt(path string) (*Bolt, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("kv: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("kv: open %s: create bucket: %w", path, err)
	}
	return &Bolt{db: db}, nil
}

// Close releases the file. The Bolt must not be used afterwards.
func (b *Bolt) Close() error {
	return b.db.Close()
}

func (b *Bolt) Get(key string) (value []byte, ok bool, err error) {
	err = b.db.View(func(tx *bolt.Tx) error {
		// A cursor, unlike Bucket.Get, tells an empty value from a
		// missing key.
		k, v := tx.Bucket(bucket).Cursor().Seek([]byte(key))
		if k != nil && string(k) == key {
			// v is only valid inside the transaction.
			value, ok = append([]byte{}, v...), true
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("kv: get %q: %w", key, err)
	}
	return value, ok, nil
}

func (b *Bolt) Put(key string, value []byte) error {
	err := b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Put([]byte(key), value)
	})
	if err != nil {
		return fmt.Errorf("kv: put %q: %w", key, err)
	}
	return nil
}

// PutBatch puts every entry in one transaction, synced to disk once.
func (b *Bolt) PutBatch(entries []Entry) error {
	err := b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket)
		for _, e := range entries {
			if e.Key == "" {
				return errEmptyKey
			}
			if err := bk.Put([]byte(e.Key), e.Value); err != nil {
				return fmt.Errorf("%q: %w", e.Key, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kv: put %d entries: %w", len(entries), err)
	}
	return nil
}

func (b *Bolt) Delete(key string) error {
	err := b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Delete([]byte(key))
	})
	if err != nil {
		return fmt.Errorf("kv: delete %q: %w", key, err)
	}
	return nil
}

func (b *Bolt) Scan(prefix string, fn func(key string, value []byte) error) error {
	// fn runs after the read transaction ends: bbolt can deadlock when one
	// goroutine holds a read transaction and starts a write.
	var keys []string
	var values [][]byte
	err := b.db.View(func(tx *bolt.Tx) error {
		each(tx, prefix, func(k, v []byte) {
			keys = append(keys, string(k))
			values = append(values, append([]byte{}, v...))
		})
		return nil
	})
	if err != nil {
		return fmt.Errorf("kv: scan %q: %w", prefix, err)
	}
	for i, k := range keys {
		if err := fn(k, values[i]); err != nil {
			return err
		}
	}
	return nil
}

func (b *Bolt) DeletePrefix(prefix string) error {
	err := b.db.Update(func(tx *bolt.Tx) error {
		// Collect first: deleting through a cursor while iterating it
		// can skip keys.
		var keys [][]byte
		each(tx, prefix, func(k, _ []byte) {
			keys = append(keys, append([]byte{}, k...))
		})
		bk := tx.Bucket(bucket)
		for _, k := range keys {
			if err := bk.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kv: delete prefix %q: %w", prefix, err)
	}
	return nil
}

// each calls fn for every key with the prefix, in order, inside tx.
func each(tx *bolt.Tx, prefix string, fn func(k, v []byte)) {
	p := []byte(prefix)
	c := tx.Bucket(bucket).Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		fn(k, v)
	}
}
