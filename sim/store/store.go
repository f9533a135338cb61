// Package store is the relay's persistence: accounts, devices, prekeys,
// profiles and the durable per-device message queues. The relay sees it only
// through the Store interface, so a clustered backend can replace the one
// implementation here, Bolt (a bbolt file, pure Go).
package store

import (
	"errors"
	"strconv"

	"github.com/linksim/linksim/sim/wire/pb"
)

// Errors a Store returns; callers test them with errors.Is.
var (
	ErrNotFound       = errors.New("not found")
	ErrAccountExists  = errors.New("account exists")
	ErrKeyTaken       = errors.New("noise key already belongs to a device")
	ErrRemoved        = errors.New("device was removed")
	ErrTooManyDevices = errors.New("account has the maximum number of companions")
	ErrDeviceID       = errors.New("device id not above every id the account used")
	ErrStale          = errors.New("device list changed")
	ErrQueueFull      = errors.New("device queue full")
)

// QueueFullError is ErrQueueFull for one target device.
type QueueFullError struct{ To Address }

func (e *QueueFullError) Error() string        { return e.To.String() + ": " + ErrQueueFull.Error() }
func (e *QueueFullError) Is(target error) bool { return target == ErrQueueFull }

// Address names one device of one user.
type Address struct {
	User   string
	Device uint32
}

// String returns "user:device".
func (a Address) String() string {
	return a.User + ":" + strconv.FormatUint(uint64(a.Device), 10)
}

// Account is one user. MaxDevice is the highest device id the account ever
// used, so that a removed companion's id is never given out again.
type Account struct {
	User           string
	PushName       string
	About          string
	AboutSetUnixMs int64
	MaxDevice      uint32
	CreatedUnixMs  int64
	// KeyIndexList is the phone's last serialized SignedKeyIndexList: the
	// companions it vouches for. Empty until it sets one.
	KeyIndexList []byte `json:",omitempty"`
}

// Device is one registered device and its public keys. Identity is the
// serialized SignedDeviceIdentity a companion was linked with (empty for the
// phone).
type Device struct {
	Address
	NoiseKey       []byte
	RegistrationID uint32
	IdentityKey    []byte
	SignedPreKey   *pb.SignedPreKey
	Identity       []byte
	Platform       string
	// Mirror marks a mirror companion (docs/protocol.md §19): it talks
	// only to its own phone and is on no device list.
	Mirror        bool
	CreatedUnixMs int64
}

// Directory is who exists: accounts, their devices and keys, and profiles.
type Directory interface {
	// CreateAccount stores a new account whose device 0 is phone, with its
	// first one-time prekeys. ErrAccountExists, ErrKeyTaken.
	CreateAccount(a Account, phone Device, prekeys []*pb.PreKey) error
	// Account returns the account, or ErrNotFound.
	Account(user string) (Account, error)
	// Device returns a device, or ErrNotFound.
	Device(a Address) (Device, error)
	// DeviceByKey finds the device of a Noise static key. For a key whose
	// device was removed it returns ErrRemoved and a Device holding only
	// the old address; for an unknown key, ErrNotFound.
	DeviceByKey(noiseKey []byte) (Device, error)
	// DeviceIDs returns the account's device ids, ascending, or
	// ErrNotFound when there is no such account.
	DeviceIDs(user string) ([]uint32, error)
	// ListedIDs is DeviceIDs without mirror companions: the device list
	// that senders encrypt for and Send is checked against.
	ListedIDs(user string) ([]uint32, error)
	// AddCompanion links a device to an existing account, atomically
	// checking that d.Device is above every id the account used
	// (ErrDeviceID), that the account has fewer than maxCompanions
	// companions (ErrTooManyDevices) and that the Noise key is free
	// (ErrKeyTaken).
	AddCompanion(d Device, prekeys []*pb.PreKey, maxCompanions int) error
	// RemoveDevices deletes the devices with their queues, prekeys and
	// sent-message records, and remembers their Noise keys as removed. Ids
	// that are not devices are skipped; the removed devices are returned.
	RemoveDevices(user string, ids []uint32) ([]Device, error)
	// SetProfile changes the push name and/or the about text (nil leaves
	// one as it is); setting the about text records nowMs.
	SetProfile(user string, pushName, about *string, nowMs int64) error
	// SetKeyIndexList replaces the account's signed device list.
	SetKeyIndexList(user string, signed []byte) error

	// AddPreKeys stores one-time prekeys, ignoring ids already stored and
	// any beyond max stored; it returns how many are stored afterwards.
	AddPreKeys(a Address, prekeys []*pb.PreKey, max int) (int, error)
	// SetSignedPreKey replaces the device's signed prekey.
	SetSignedPreKey(a Address, spk *pb.SignedPreKey) error
	// PreKeyCount returns how many one-time prekeys the device has left.
	PreKeyCount(a Address) (int, error)
	// TakeBundles returns a bundle per address, each with one one-time
	// prekey that is deleted in the same transaction (none when the device
	// ran out), and how many each device has left. An address that is not
	// a device fails the whole call with ErrNotFound and consumes nothing.
	TakeBundles(addrs []Address) ([]*pb.Bundle, []int, error)
}

// Batch is what one Send (or receipt) enqueues: all of its items commit in
// one transaction, or none do.
type Batch struct {
	Sender Address
	// MessageID, when set, makes the batch idempotent: if Sender already
	// enqueued a batch with this id, nothing is enqueued and the result is
	// Dup with the first commit's time.
	MessageID string
	// Expect holds, per user, the device ids the items were addressed
	// against; if any user's list differs at commit, Enqueue fails with
	// ErrStale. Nil checks nothing.
	Expect map[string][]uint32
	// UnixMs is recorded with MessageID and returned on a duplicate.
	UnixMs int64
	Items  []Item
}

// Item is one delivery for one device's queue; Enqueue sets its Seq.
type Item struct {
	To       Address
	Delivery *pb.Delivery
}

// Result says what Enqueue did.
type Result struct {
	Dup    bool
	UnixMs int64    // the commit time the sender was acked with
	Seqs   []uint64 // per item, its seq (nil when Dup)
}

// Queues are the durable per-device queues. Items are ordered by a per-device
// seq that only grows.
type Queues interface {
	// Enqueue commits a batch. Concurrent calls are grouped into shared
	// transactions (group commit), so many senders share one disk sync.
	// ErrStale when Expect no longer holds, ErrNotFound when a target
	// device does not exist, ErrQueueFull (wrapped with the target's
	// address) when a target's queue would exceed its byte cap.
	Enqueue(b Batch) (Result, error)
	// Sent reports whether sender already enqueued messageID, and when,
	// within the store's dedup window.
	Sent(sender Address, messageID string) (unixMs int64, ok bool, err error)
	// Read returns up to max items of the device's queue with seq > after,
	// in seq order; fewer than max only when no more were queued.
	Read(a Address, after uint64, max int) ([]*pb.Delivery, error)
	// Ack deletes the items with these seqs (missing ones are skipped) and
	// returns how many it deleted: Read and Len leave them out at once.
	// The delete may become durable later than Ack returns, so a crash may
	// bring acked items back (to be delivered again, which devices ignore),
	// never lose one that was not acked.
	Ack(a Address, seqs []uint64) (int, error)
	// Len returns how many items wait in the device's queue.
	Len(a Address) (int, error)
	// Depth returns how many items wait in all queues.
	Depth() int64
	// QueuedBytes returns how many encoded bytes wait in all queues.
	QueuedBytes() int64
}

// Store is all of the relay's persistent state.
type Store interface {
	Directory
	Queues
	Close() error
}

// ListCache is a Store that can answer ListedIDs from a cache, which may
// trail writes made elsewhere (through another relay node) by a moment. A
// caller uses it only where a list that differs from what it expects is
// read again with ListedIDs before it is acted on: the check of a Send.
type ListCache interface {
	CachedListedIDs(user string) ([]uint32, error)
}
