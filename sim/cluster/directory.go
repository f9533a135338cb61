package cluster

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// account is how an account is kept: the account and its device ids, in
// one value, so that linking and removing change both at once. Mirrors are
// the ids of its mirror companions, on no device list.
type account struct {
	store.Account
	Devices []uint32 `json:"devices"`
	Mirrors []uint32 `json:"mirrors,omitempty"`
}

// listed is the device list senders encrypt for: Devices less Mirrors.
func (a account) listed() []uint32 {
	return slices.DeleteFunc(slices.Clone(a.Devices), func(id uint32) bool { return slices.Contains(a.Mirrors, id) })
}

// keyOwner is what a Noise key belongs to.
type keyOwner struct {
	store.Address
	Removed bool `json:",omitempty"`
}

// The device record is store.Device as JSON; its SignedPreKey encodes
// through its exported fields (id, public key, signature).

func checkUser(user string) error {
	if user == "" || strings.IndexByte(user, 0) >= 0 {
		return fmt.Errorf("bad user name %q", user)
	}
	return nil
}

// claimKey makes noiseKey the key of a: ErrKeyTaken if it belongs to a
// device or to a removed one.
func (n *Node) claimKey(ctx context.Context, noiseKey []byte, a store.Address) error {
	if len(noiseKey) == 0 {
		return errors.New("device without a noise key")
	}
	b, err := json.Marshal(keyOwner{Address: a})
	if err != nil {
		return err
	}
	_, err = n.kv.keys.Create(ctx, hex.EncodeToString(noiseKey), b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return store.ErrKeyTaken
	}
	return err
}

// releaseKey undoes claimKey after the device could not be stored.
func (n *Node) releaseKey(ctx context.Context, noiseKey []byte) {
	if err := purge(ctx, n.kv.keys, hex.EncodeToString(noiseKey)); err != nil {
		n.log.Error("releasing a noise key claimed for a device not stored", "err", err)
	}
}

// putDevice writes a device's record and its first prekeys.
func (n *Node) putDevice(ctx context.Context, d store.Device, prekeys []*pb.PreKey) error {
	if err := putJSON(ctx, n.kv.devices, devKey(d.Address), d); err != nil {
		return err
	}
	var stored preKeySet
	stored.add(prekeys, len(prekeys))
	return putJSON(ctx, n.kv.prekeys, devKey(d.Address), stored)
}

func (n *Node) CreateAccount(a store.Account, phone store.Device, prekeys []*pb.PreKey) error {
	if err := checkUser(a.User); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if phone.User != a.User || phone.Device != 0 {
		return fmt.Errorf("cluster: create account %s: phone must be device 0 of the account", a.User)
	}
	ctx, cancel := n.ctx()
	defer cancel()
	err := n.createAccount(ctx, a, phone, prekeys)
	if err != nil {
		return fmt.Errorf("cluster: create account %s: %w", a.User, err)
	}
	return nil
}

// createAccount claims the phone's key, then creates the account (which
// fails if it exists), then writes the phone. A crash between the steps
// leaves a claimed key or an account without its phone record: the
// registration failed, and the client registers again under another key.
func (n *Node) createAccount(ctx context.Context, a store.Account, phone store.Device, prekeys []*pb.PreKey) error {
	if err := n.claimKey(ctx, phone.NoiseKey, phone.Address); err != nil {
		return err
	}
	a.MaxDevice = 0
	b, err := json.Marshal(account{Account: a, Devices: []uint32{0}})
	if err == nil {
		_, err = n.kv.accounts.Create(ctx, enc(a.User), b)
	}
	if err != nil {
		n.releaseKey(ctx, phone.NoiseKey)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return store.ErrAccountExists
		}
		return err
	}
	return n.putDevice(ctx, phone, prekeys)
}

func (n *Node) account(ctx context.Context, user string) (account, uint64, error) {
	var a account
	rev, err := getJSON(ctx, n.kv.accounts, enc(user), &a)
	return a, rev, err
}

func (n *Node) Account(user string) (store.Account, error) {
	ctx, cancel := n.ctx()
	defer cancel()
	a, _, err := n.account(ctx, user)
	if err != nil {
		return store.Account{}, fmt.Errorf("cluster: account %s: %w", user, err)
	}
	return a.Account, nil
}

func (n *Node) device(ctx context.Context, a store.Address) (store.Device, error) {
	var d store.Device
	_, err := getJSON(ctx, n.kv.devices, devKey(a), &d)
	return d, err
}

func (n *Node) Device(a store.Address) (store.Device, error) {
	ctx, cancel := n.ctx()
	defer cancel()
	d, err := n.device(ctx, a)
	if err != nil {
		return store.Device{}, fmt.Errorf("cluster: device %s: %w", a, err)
	}
	return d, nil
}

func (n *Node) DeviceByKey(noiseKey []byte) (store.Device, error) {
	if len(noiseKey) == 0 {
		return store.Device{}, fmt.Errorf("cluster: device by key: %w", store.ErrNotFound)
	}
	ctx, cancel := n.ctx()
	defer cancel()
	var owner keyOwner
	if _, err := getJSON(ctx, n.kv.keys, hex.EncodeToString(noiseKey), &owner); err != nil {
		return store.Device{}, fmt.Errorf("cluster: device by key: %w", err)
	}
	if owner.Removed {
		return store.Device{Address: owner.Address}, fmt.Errorf("cluster: device by key: %w", store.ErrRemoved)
	}
	d, err := n.device(ctx, owner.Address)
	if err != nil {
		return store.Device{}, fmt.Errorf("cluster: device by key: %w", err)
	}
	return d, nil
}

func (n *Node) DeviceIDs(user string) ([]uint32, error) {
	ctx, cancel := n.ctx()
	defer cancel()
	a, _, err := n.account(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("cluster: devices of %s: %w", user, err)
	}
	return a.Devices, nil
}

func (n *Node) ListedIDs(user string) ([]uint32, error) {
	ctx, cancel := n.ctx()
	defer cancel()
	a, _, err := n.account(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("cluster: devices of %s: %w", user, err)
	}
	return a.listed(), nil
}

// AddCompanion claims the key, writes the device, then adds it to the
// account's list with a compare-and-set that checks the id and the count;
// if that fails, the device and the key are let go again.
func (n *Node) AddCompanion(d store.Device, prekeys []*pb.PreKey, maxCompanions int) error {
	ctx, cancel := n.ctx()
	defer cancel()
	err := n.addCompanion(ctx, d, prekeys, maxCompanions)
	if err != nil {
		return fmt.Errorf("cluster: add companion %s: %w", d.Address, err)
	}
	return nil
}

func (n *Node) addCompanion(ctx context.Context, d store.Device, prekeys []*pb.PreKey, maxCompanions int) error {
	check := func(a *account) error {
		switch {
		case d.Device <= a.MaxDevice:
			return store.ErrDeviceID
		case len(a.Devices)-1 >= maxCompanions:
			return store.ErrTooManyDevices
		}
		return nil
	}
	a, _, err := n.account(ctx, d.User)
	if err != nil {
		return err
	}
	if err := check(&a); err != nil {
		return err
	}
	if err := n.claimKey(ctx, d.NoiseKey, d.Address); err != nil {
		return err
	}
	if err := n.putDevice(ctx, d, prekeys); err != nil {
		n.releaseKey(ctx, d.NoiseKey)
		return err
	}
	err = n.updateAccount(ctx, d.User, func(a *account) error {
		if err := check(a); err != nil {
			return err
		}
		a.MaxDevice = d.Device
		a.Devices = append(a.Devices, d.Device)
		if d.Mirror {
			a.Mirrors = append(a.Mirrors, d.Device)
		}
		return nil
	})
	if err != nil {
		// Only ours is let go: a companion that won the same id keeps its
		// record.
		if cur, gerr := n.device(ctx, d.Address); gerr == nil && string(cur.NoiseKey) == string(d.NoiseKey) {
			purge(ctx, n.kv.devices, devKey(d.Address))
			purge(ctx, n.kv.prekeys, devKey(d.Address))
		}
		n.releaseKey(ctx, d.NoiseKey)
	}
	return err
}

// RemoveDevices takes the devices off the account's list first, so that
// sends to them fail from then on, then drops their queues, prekeys and
// records and marks their keys removed.
func (n *Node) RemoveDevices(user string, ids []uint32) ([]store.Device, error) {
	ctx, cancel := n.ctx()
	defer cancel()
	removed, err := n.removeDevices(ctx, user, ids)
	if err != nil {
		return nil, fmt.Errorf("cluster: remove devices of %s: %w", user, err)
	}
	return removed, nil
}

func (n *Node) removeDevices(ctx context.Context, user string, ids []uint32) ([]store.Device, error) {
	var gone []uint32
	err := n.updateAccount(ctx, user, func(a *account) error {
		gone = nil
		a.Devices = slices.DeleteFunc(a.Devices, func(id uint32) bool {
			if slices.Contains(ids, id) {
				gone = append(gone, id)
				return true
			}
			return false
		})
		a.Mirrors = slices.DeleteFunc(a.Mirrors, func(id uint32) bool { return slices.Contains(ids, id) })
		return nil
	})
	if err != nil {
		return nil, err
	}
	var removed []store.Device
	for _, id := range gone {
		a := store.Address{User: user, Device: id}
		d, err := n.device(ctx, a)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return removed, err
		}
		b, err := json.Marshal(keyOwner{Address: a, Removed: true})
		if err != nil {
			return removed, err
		}
		if err := put(ctx, n.kv.keys, hex.EncodeToString(d.NoiseKey), b); err != nil {
			return removed, err
		}
		err = retry(ctx, func(ctx context.Context) error {
			return n.q.Purge(ctx, jetstream.WithPurgeSubject(queueSubject(a)))
		})
		if err != nil {
			return removed, err
		}
		for _, k := range []struct {
			kv  jetstream.KeyValue
			key string
		}{{n.kv.prekeys, devKey(a)}, {n.kv.devices, devKey(a)}} {
			if err := purge(ctx, k.kv, k.key); err != nil {
				return removed, err
			}
		}
		removed = append(removed, d)
	}
	return removed, nil
}

func (n *Node) SetProfile(user string, pushName, about *string, nowMs int64) error {
	ctx, cancel := n.ctx()
	defer cancel()
	err := n.updateAccount(ctx, user, func(a *account) error {
		if pushName != nil {
			a.PushName = *pushName
		}
		if about != nil {
			a.About, a.AboutSetUnixMs = *about, nowMs
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cluster: set profile of %s: %w", user, err)
	}
	return nil
}

func (n *Node) SetKeyIndexList(user string, signed []byte) error {
	ctx, cancel := n.ctx()
	defer cancel()
	err := n.updateAccount(ctx, user, func(a *account) error {
		a.KeyIndexList = signed
		return nil
	})
	if err != nil {
		return fmt.Errorf("cluster: set key index list of %s: %w", user, err)
	}
	return nil
}
