// Package kv is the key-value persistence every simulated device keeps its
// state in: an in-memory map for throwaway devices, a bbolt file for devices
// that must survive a restart.
package kv

// KV is a flat, ordered key space. Keys are compared byte-wise and must not be
// empty. Implementations are safe for concurrent use.
type KV interface {
	// Get returns the value stored under key; ok is false when there is none.
	Get(key string) (value []byte, ok bool, err error)
	Put(key string, value []byte) error
	// Delete removes key; removing a missing key is not an error.
	Delete(key string) error
	// Scan calls fn for each key with the prefix, in ascending key order.
	// fn sees a snapshot taken before its first call, so it may modify the
	// KV. An error from fn stops the scan and is returned as is.
	Scan(prefix string, fn func(key string, value []byte) error) error
	// DeletePrefix removes every key with the prefix (used to wipe state on
	// logout). The empty prefix removes everything.
	DeletePrefix(prefix string) error
}
