package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/linksim/linksim/sim/wire/pb"
)

// Bucket layout. A device key (devKey) is the user, a 0x00 byte, and the
// device id as 4 big-endian bytes, so one user's devices sort together and
// in id order.
//
//	accounts  user -> JSON Account
//	devices   devKey -> JSON deviceRecord
//	lists     user -> the user's device ids, packed (lists.go)
//	keys      Noise key -> devKey
//	removed   Noise key -> devKey of the removed device (tombstone)
//	(prekeys  in a file of its own: prekeys.go)
//	qlog      every queue's items, in commit order (queue.go)
//	sentids   devKey + message id -> when it was sent (sent.go)
//	sentmeta  devKey -> the sender's oldest and last sent ids (sent.go)
var (
	bAccounts  = []byte("accounts")
	bDevices   = []byte("devices")
	bKeys      = []byte("keys")
	bRemoved   = []byte("removed")
	bPreKeys   = []byte("prekeys") // before prekeys had a file of their own
	bSentMeta  = []byte("sentmeta")
	allBuckets = [][]byte{bAccounts, bDevices, bKeys, bRemoved, bSentIDs, bSentMeta}
)

// Options tunes a Bolt store. The zero value is the default.
type Options struct {
	// NoSync skips fsync on commit: faster, and no longer crash-safe.
	// Only for throwaway stores.
	NoSync bool
	// MaxQueuedBytes caps the encoded bytes waiting in one device's queue:
	// an Enqueue that would exceed it fails with ErrQueueFull. 0: no cap.
	MaxQueuedBytes int64
	// DedupWindow is how many message ids Enqueue remembers per sender
	// (Batch.MessageID) and DedupAge for how long, at most; past either,
	// the oldest are forgotten, in bulk: down to 15/16 of the window and
	// of the age. 0: no limit.
	DedupWindow int
	DedupAge    time.Duration
}

// Bolt is the Store on one bbolt file. It is safe for concurrent use.
type Bolt struct {
	db      *bolt.DB
	opt     Options
	group   *committer // group commit: every write after open
	acks    *ackLog    // acknowledged items, deleted lazily
	index   *queueIndex
	pk      *bolt.DB // the prekey file
	pkGroup *committer
}

var _ Store = (*Bolt)(nil)

// OpenBolt opens or creates the store file at path, and the prekey file
// next to it (path without its extension, then "-prekeys.db"). bbolt locks
// the files; OpenBolt gives up after a second if another process holds one.
func OpenBolt(path string, opt Options) (*Bolt, error) {
	db, err := bolt.Open(path, 0o600, boltOptions(opt))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &Bolt{db: db, opt: opt, acks: &ackLog{}, index: newQueueIndex()}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if tx.Bucket(bLists) == nil {
			if _, err := tx.CreateBucket(bLists); err != nil {
				return err
			}
			if err := buildLists(tx); err != nil {
				return err
			}
		}
		if err := tx.DeleteBucket(bSentOrd); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		if err := moveSent(tx); err != nil {
			return err
		}
		return loadQueues(tx, s.index)
	})
	if err == nil {
		err = s.openPreKeys(strings.TrimSuffix(path, filepath.Ext(path)) + "-prekeys.db")
	}
	if err != nil {
		db.Close()
		if s.pk != nil {
			s.pk.Close()
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s.group = newCommitter(db, s.acks)
	s.pkGroup = newCommitter(s.pk, noLazyWrites{})
	return s, nil
}

// CommitStats is what the store's writes cost the disk so far: how many
// transactions the group commit made (bbolt syncs each twice: the pages,
// then the meta page), how many writes they carried (each Enqueue, each
// registration, ...), and how many pages they wrote besides the meta page.
type CommitStats struct {
	Commits, Writes, Pages int64
}

// CommitStats counts the commits of the queue file (not the prekey file).
func (s *Bolt) CommitStats() CommitStats {
	st := s.db.Stats()
	return CommitStats{Commits: s.group.commits.Load(), Writes: s.group.writes.Load(), Pages: st.TxStats.GetWrite()}
}

func boltOptions(opt Options) *bolt.Options {
	return &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType, NoSync: opt.NoSync}
}

// Close releases the files once running writes are done; later calls fail.
func (s *Bolt) Close() error {
	s.group.close()
	s.pkGroup.close()
	return errors.Join(s.db.Close(), s.pk.Close())
}

func devKey(a Address) []byte {
	k := make([]byte, 0, len(a.User)+5)
	k = append(k, a.User...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, a.Device)
}

func parseDevKey(k []byte) Address {
	if len(k) < 5 {
		return Address{}
	}
	return Address{User: string(k[:len(k)-5]), Device: binary.BigEndian.Uint32(k[len(k)-4:])}
}

func checkUser(user string) error {
	if user == "" || strings.IndexByte(user, 0) >= 0 {
		return fmt.Errorf("store: bad user name %q", user)
	}
	return nil
}

// deviceRecord is how a Device is stored.
type deviceRecord struct {
	User           string `json:"user"`
	Device         uint32 `json:"device"`
	NoiseKey       []byte `json:"noise_key"`
	RegistrationID uint32 `json:"registration_id"`
	IdentityKey    []byte `json:"identity_key"`
	SPKID          uint32 `json:"spk_id"`
	SPKPub         []byte `json:"spk_pub"`
	SPKSig         []byte `json:"spk_sig"`
	Identity       []byte `json:"identity,omitempty"`
	Platform       string `json:"platform,omitempty"`
	Mirror         bool   `json:"mirror,omitempty"`
	CreatedUnixMs  int64  `json:"created_unix_ms"`
}

func encodeDevice(d Device) ([]byte, error) {
	return json.Marshal(deviceRecord{
		User: d.User, Device: d.Device, NoiseKey: d.NoiseKey,
		RegistrationID: d.RegistrationID, IdentityKey: d.IdentityKey,
		SPKID: d.SignedPreKey.GetId(), SPKPub: d.SignedPreKey.GetPublicKey(), SPKSig: d.SignedPreKey.GetSignature(),
		Identity: d.Identity, Platform: d.Platform, Mirror: d.Mirror, CreatedUnixMs: d.CreatedUnixMs,
	})
}

func decodeDevice(b []byte) (Device, error) {
	var r deviceRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return Device{}, fmt.Errorf("store: corrupt device record: %w", err)
	}
	return Device{
		Address:  Address{User: r.User, Device: r.Device},
		NoiseKey: r.NoiseKey, RegistrationID: r.RegistrationID, IdentityKey: r.IdentityKey,
		SignedPreKey: &pb.SignedPreKey{Id: r.SPKID, PublicKey: r.SPKPub, Signature: r.SPKSig},
		Identity:     r.Identity, Platform: r.Platform, Mirror: r.Mirror, CreatedUnixMs: r.CreatedUnixMs,
	}, nil
}

func getAccount(tx *bolt.Tx, user string) (Account, error) {
	v := tx.Bucket(bAccounts).Get([]byte(user))
	if v == nil {
		return Account{}, ErrNotFound
	}
	var a Account
	if err := json.Unmarshal(v, &a); err != nil {
		return Account{}, fmt.Errorf("store: corrupt account %q: %w", user, err)
	}
	return a, nil
}

func putAccount(tx *bolt.Tx, a Account) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return tx.Bucket(bAccounts).Put([]byte(a.User), b)
}

func getDevice(tx *bolt.Tx, a Address) (Device, error) {
	v := tx.Bucket(bDevices).Get(devKey(a))
	if v == nil {
		return Device{}, ErrNotFound
	}
	return decodeDevice(v)
}

// putDevice writes a new device with its key index,
// failing with ErrKeyTaken if its Noise key is in use or removed. Its
// prekeys go to the prekey file once this commits.
func putDevice(tx *bolt.Tx, d Device) error {
	if len(d.NoiseKey) == 0 {
		return errors.New("store: device without a noise key")
	}
	if tx.Bucket(bKeys).Get(d.NoiseKey) != nil || tx.Bucket(bRemoved).Get(d.NoiseKey) != nil {
		return ErrKeyTaken
	}
	rec, err := encodeDevice(d)
	if err != nil {
		return err
	}
	k := devKey(d.Address)
	if err := tx.Bucket(bDevices).Put(k, rec); err != nil {
		return err
	}
	if err := tx.Bucket(bKeys).Put(d.NoiseKey, k); err != nil {
		return err
	}
	return listDevice(tx, d.Address, d.Mirror)
}
