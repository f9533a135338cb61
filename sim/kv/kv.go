// Package kv is the key-value persistence every simulated device keeps its
// state in: an in-memory map for throwaway devices, a bbolt file for devices
// that must survive a restart.
package kv

// KV is a flat, ordered key space. Keys are compared byte-wise and must not be
// empty. Implementations are safe for concurrent use.
type KV interface {
	// Get returns the value stored under key; ok is false when there is none.
	Get(key string) (value []byte, ok bool, err error)
	// Put stores value under key. A read sees it at once; it is durable
	// when Put returns, unless the KV is a Syncer.
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

// Entry is one key and the value to put under it.
type Entry struct {
	Key   string
	Value []byte
}

// Batcher is a KV that can put many entries at once, in one storage
// transaction: a device writing a hundred prekeys then waits for one
// commit instead of a hundred. PutBatch writes all of the entries or, on
// error, may have written none of them.
type Batcher interface {
	PutBatch(entries []Entry) error
}

// PutAll puts every entry into k: in one batch when k is a Batcher, else
// one Put after another (stopping at the first error).
func PutAll(k KV, entries []Entry) error {
	if b, ok := k.(Batcher); ok {
		return b.PutBatch(entries)
	}
	for _, e := range entries {
		if err := k.Put(e.Key, e.Value); err != nil {
			return err
		}
	}
	return nil
}

// Syncer is a KV whose writes return before they are durable, in the order
// made (a browser's IndexedDB, written behind: the device's work does not
// wait for a commit per write). Sync returns once every write made before
// the call is durable, or the error that kept one from being so; after such
// an error every Sync fails, since later writes may have landed without it.
type Syncer interface {
	Sync() error
}

// Sync waits until every write made to k so far is durable: at once when k
// is not a Syncer, whose writes are durable when they return. A device
// calls it before anything it sends, so that what the relay or a peer
// learns never rests on state a crash could lose.
func Sync(k KV) error {
	if s, ok := k.(Syncer); ok {
		return s.Sync()
	}
	return nil
}
