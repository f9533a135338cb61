// Package storetest is the conformance check of the relay's store contract
// (store.Store): every implementation, the bbolt file and the JetStream
// cluster store alike, must pass Check.
package storetest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// Check runs the contract's checks against s and returns an error listing
// every misbehaviour, one per line, or nil. s may hold other data: Check
// uses users of its own and never relies on totals. It takes at most 4
// companions per account, and a store whose options cap queues below 64 KiB
// fails it.
func Check(s store.Store) error {
	c := &checker{s: s, run: newRun()}
	for _, check := range []func(){
		c.accounts, c.companions, c.profiles, c.prekeys, c.bundles,
		c.queues, c.dedup, c.stale, c.removal,
	} {
		check()
	}
	if len(c.errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(c.errs, "\n"))
}

type checker struct {
	s    store.Store
	run  string
	keys byte
	errs []string
}

func newRun() string {
	var b [4]byte
	rand.Read(b[:])
	n := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
	return fmt.Sprintf("+1%010d", n%10_000_000_000)
}

func (c *checker) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

// user is a user name of this run: runs on a shared store do not collide.
func (c *checker) user(name string) string { return c.run + name }

// device returns a device with a Noise key unique to this run.
func (c *checker) device(user string, id uint32) store.Device {
	c.keys++
	key := []byte(c.run + hex.EncodeToString([]byte{c.keys}))
	return store.Device{
		Address:        store.Address{User: user, Device: id},
		NoiseKey:       key,
		RegistrationID: 7 + id,
		IdentityKey:    append([]byte{5}, key...),
		SignedPreKey:   &pb.SignedPreKey{Id: 1, PublicKey: []byte{5, c.keys}, Signature: []byte{c.keys}},
		Platform:       "storetest",
		CreatedUnixMs:  1700000000000,
	}
}

func prekeys(from, n uint32) []*pb.PreKey {
	var out []*pb.PreKey
	for id := from; id < from+n; id++ {
		out = append(out, &pb.PreKey{Id: id, PublicKey: []byte{5, byte(id)}})
	}
	return out
}

// account creates user with its phone and n prekeys, or records why not.
func (c *checker) account(user string, n uint32) (store.Device, bool) {
	phone := c.device(user, 0)
	if err := c.s.CreateAccount(store.Account{User: user, PushName: "p " + user, CreatedUnixMs: 1}, phone, prekeys(1, n)); err != nil {
		c.errorf("create account %s: %v", user, err)
		return phone, false
	}
	return phone, true
}

func (c *checker) companion(user string, id uint32, n uint32) (store.Device, bool) {
	d := c.device(user, id)
	if err := c.s.AddCompanion(d, prekeys(1, n), 4); err != nil {
		c.errorf("add companion %s: %v", d.Address, err)
		return d, false
	}
	return d, true
}

func (c *checker) accounts() {
	u := c.user("1")
	phone, ok := c.account(u, 3)
	if !ok {
		return
	}
	if err := c.s.CreateAccount(store.Account{User: u}, c.device(u, 0), nil); !errors.Is(err, store.ErrAccountExists) {
		c.errorf("a second account %s: %v, want ErrAccountExists", u, err)
	}
	other := c.user("2")
	taken := c.device(other, 0)
	taken.NoiseKey = phone.NoiseKey
	if err := c.s.CreateAccount(store.Account{User: other}, taken, nil); !errors.Is(err, store.ErrKeyTaken) {
		c.errorf("an account with a taken noise key: %v, want ErrKeyTaken", err)
	}
	if _, err := c.s.Account(other); !errors.Is(err, store.ErrNotFound) {
		c.errorf("account refused for its key exists anyway: %v, want ErrNotFound", err)
	}
	a, err := c.s.Account(u)
	if err != nil || a.User != u || a.PushName != "p "+u || a.MaxDevice != 0 {
		c.errorf("account %s = %+v (%v), want its user and push name, MaxDevice 0", u, a, err)
	}
	d, err := c.s.Device(phone.Address)
	if err != nil || !sameDevice(d, phone) {
		c.errorf("device %s = %+v (%v), want %+v", phone.Address, d, err, phone)
	}
	d, err = c.s.DeviceByKey(phone.NoiseKey)
	if err != nil || d.Address != phone.Address {
		c.errorf("device by key of %s = %v (%v)", phone.Address, d.Address, err)
	}
	if _, err := c.s.DeviceByKey([]byte(c.run + "nobody")); !errors.Is(err, store.ErrNotFound) {
		c.errorf("device by an unknown key: %v, want ErrNotFound", err)
	}
	if _, err := c.s.Account(c.user("nobody")); !errors.Is(err, store.ErrNotFound) {
		c.errorf("unknown account: %v, want ErrNotFound", err)
	}
	if _, err := c.s.DeviceIDs(c.user("nobody")); !errors.Is(err, store.ErrNotFound) {
		c.errorf("device ids of an unknown account: %v, want ErrNotFound", err)
	}
	if _, err := c.s.Device(store.Address{User: u, Device: 9}); !errors.Is(err, store.ErrNotFound) {
		c.errorf("unknown device: %v, want ErrNotFound", err)
	}
}

func sameDevice(a, b store.Device) bool {
	return a.Address == b.Address && bytes.Equal(a.NoiseKey, b.NoiseKey) && a.RegistrationID == b.RegistrationID &&
		bytes.Equal(a.IdentityKey, b.IdentityKey) && a.Platform == b.Platform && a.CreatedUnixMs == b.CreatedUnixMs &&
		bytes.Equal(a.Identity, b.Identity) && a.SignedPreKey.GetId() == b.SignedPreKey.GetId() &&
		bytes.Equal(a.SignedPreKey.GetPublicKey(), b.SignedPreKey.GetPublicKey()) &&
		bytes.Equal(a.SignedPreKey.GetSignature(), b.SignedPreKey.GetSignature())
}

func (c *checker) companions() {
	u := c.user("3")
	if _, ok := c.account(u, 1); !ok {
		return
	}
	if err := c.s.AddCompanion(c.device(u, 0), nil, 4); !errors.Is(err, store.ErrDeviceID) {
		c.errorf("companion with id 0: %v, want ErrDeviceID", err)
	}
	if _, ok := c.companion(u, 2, 2); !ok {
		return
	}
	if err := c.s.AddCompanion(c.device(u, 1), nil, 4); !errors.Is(err, store.ErrDeviceID) {
		c.errorf("companion 1 after companion 2: %v, want ErrDeviceID", err)
	}
	for id := uint32(3); id <= 5; id++ {
		if _, ok := c.companion(u, id, 0); !ok {
			return
		}
	}
	if err := c.s.AddCompanion(c.device(u, 6), nil, 4); !errors.Is(err, store.ErrTooManyDevices) {
		c.errorf("5th companion: %v, want ErrTooManyDevices", err)
	}
	taken := c.device(u, 7)
	phone, _ := c.s.Device(store.Address{User: u})
	taken.NoiseKey = phone.NoiseKey
	if err := c.s.AddCompanion(taken, nil, 5); !errors.Is(err, store.ErrKeyTaken) {
		c.errorf("companion with the phone's noise key: %v, want ErrKeyTaken", err)
	}
	ids, err := c.s.DeviceIDs(u)
	if err != nil || !slices.Equal(ids, []uint32{0, 2, 3, 4, 5}) {
		c.errorf("device ids of %s = %v (%v), want [0 2 3 4 5]", u, ids, err)
	}
	if a, err := c.s.Account(u); err != nil || a.MaxDevice != 5 {
		c.errorf("MaxDevice of %s = %d (%v), want 5", u, a.MaxDevice, err)
	}
}

func (c *checker) profiles() {
	u := c.user("4")
	if _, ok := c.account(u, 0); !ok {
		return
	}
	name, about := "new name", "busy"
	if err := c.s.SetProfile(u, &name, nil, 5); err != nil {
		c.errorf("set push name: %v", err)
	}
	if err := c.s.SetProfile(u, nil, &about, 6); err != nil {
		c.errorf("set about: %v", err)
	}
	a, err := c.s.Account(u)
	if err != nil || a.PushName != name || a.About != about || a.AboutSetUnixMs != 6 {
		c.errorf("profile after setting it = %+v (%v), want push name %q, about %q set at 6", a, err, name, about)
	}
	if err := c.s.SetKeyIndexList(u, []byte("signed list")); err != nil {
		c.errorf("set key index list: %v", err)
	}
	if a, err := c.s.Account(u); err != nil || string(a.KeyIndexList) != "signed list" {
		c.errorf("key index list = %q (%v), want the one set", a.KeyIndexList, err)
	}
	if err := c.s.SetProfile(c.user("nobody"), &name, nil, 1); !errors.Is(err, store.ErrNotFound) {
		c.errorf("set profile of an unknown account: %v, want ErrNotFound", err)
	}
}

func (c *checker) prekeys() {
	u := c.user("5")
	phone, ok := c.account(u, 3)
	if !ok {
		return
	}
	a := phone.Address
	if n, err := c.s.PreKeyCount(a); err != nil || n != 3 {
		c.errorf("prekeys after registering 3: %d (%v)", n, err)
	}
	// ids 2 and 3 are stored already; 4..9 are new but only 2 fit under 5.
	if n, err := c.s.AddPreKeys(a, prekeys(2, 8), 5); err != nil || n != 5 {
		c.errorf("add prekeys up to 5: %d stored (%v), want 5", n, err)
	}
	if n, err := c.s.PreKeyCount(a); err != nil || n != 5 {
		c.errorf("prekey count = %d (%v), want 5", n, err)
	}
	if _, err := c.s.AddPreKeys(store.Address{User: u, Device: 9}, prekeys(1, 1), 5); !errors.Is(err, store.ErrNotFound) {
		c.errorf("add prekeys to an unknown device: %v, want ErrNotFound", err)
	}
	spk := &pb.SignedPreKey{Id: 2, PublicKey: []byte{5, 2}, Signature: []byte("sig 2")}
	if err := c.s.SetSignedPreKey(a, spk); err != nil {
		c.errorf("set signed prekey: %v", err)
	}
	if d, err := c.s.Device(a); err != nil || d.SignedPreKey.GetId() != 2 || string(d.SignedPreKey.GetSignature()) != "sig 2" {
		c.errorf("signed prekey after setting it: %v (%v)", d.SignedPreKey, err)
	}
}

func (c *checker) bundles() {
	u := c.user("6")
	phone, ok := c.account(u, 2)
	if !ok {
		return
	}
	web, ok := c.companion(u, 1, 0)
	if !ok {
		return
	}
	bs, left, err := c.s.TakeBundles([]store.Address{phone.Address, web.Address})
	if err != nil || len(bs) != 2 || len(left) != 2 {
		c.errorf("take bundles: %d bundles, %v left (%v)", len(bs), left, err)
		return
	}
	if b := bs[0]; b.GetPrekey().GetId() != 1 || b.GetRegistrationId() != phone.RegistrationID ||
		!bytes.Equal(b.GetIdentityKey(), phone.IdentityKey) || b.GetAddress().GetUser() != u || left[0] != 1 {
		c.errorf("phone's bundle = %v with %d left, want prekey 1 (the lowest id), its keys, 1 left", b, left[0])
	}
	if bs[1].GetPrekey() != nil || left[1] != 0 || bs[1].GetSignedPrekey().GetId() != 1 {
		c.errorf("bundle of a device without prekeys = %v with %d left, want no prekey, its signed prekey", bs[1], left[1])
	}
	_, _, err = c.s.TakeBundles([]store.Address{phone.Address, {User: u, Device: 9}})
	if !errors.Is(err, store.ErrNotFound) {
		c.errorf("take bundles naming an unknown device: %v, want ErrNotFound", err)
	}
	if n, err := c.s.PreKeyCount(phone.Address); err != nil || n != 1 {
		c.errorf("prekeys after a failed take = %d (%v), want 1: a failed take consumes nothing", n, err)
	}
	bs, _, err = c.s.TakeBundles([]store.Address{phone.Address})
	if err != nil || bs[0].GetPrekey().GetId() != 2 {
		c.errorf("second take = %v (%v), want prekey 2", bs, err)
	}
}

func delivery(from store.Address, id string) *pb.Delivery {
	return &pb.Delivery{ServerUnixMs: 1, From: &pb.Address{User: from.User, Device: from.Device},
		Item: &pb.Delivery_Message{Message: &pb.Message{MessageId: id, Type: pb.CipherType_SIGNAL_MESSAGE, Ciphertext: []byte("ct " + id)}}}
}

func messageID(d *pb.Delivery) string { return d.GetMessage().GetMessageId() }

func (c *checker) queues() {
	alice, bob := c.user("7"), c.user("8")
	a, ok1 := c.account(alice, 0)
	b, ok2 := c.account(bob, 0)
	if !ok1 || !ok2 {
		return
	}
	depth := c.s.Depth()
	var seqs []uint64
	for i := range 5 {
		id := fmt.Sprintf("m%d", i)
		res, err := c.s.Enqueue(store.Batch{Sender: a.Address, UnixMs: int64(100 + i),
			Items: []store.Item{{To: b.Address, Delivery: delivery(a.Address, id)}}})
		if err != nil || res.Dup || len(res.Seqs) != 1 || res.UnixMs != int64(100+i) {
			c.errorf("enqueue %s: %+v (%v)", id, res, err)
			return
		}
		if len(seqs) > 0 && res.Seqs[0] <= seqs[len(seqs)-1] {
			c.errorf("seq of %s = %d, not above the last, %d", id, res.Seqs[0], seqs[len(seqs)-1])
		}
		seqs = append(seqs, res.Seqs[0])
	}
	if n, err := c.s.Len(b.Address); err != nil || n != 5 {
		c.errorf("queue length = %d (%v), want 5", n, err)
	}
	if got := c.s.Depth() - depth; got < 5 {
		c.errorf("depth grew by %d after 5 enqueued, want at least 5", got)
	}
	items, err := c.s.Read(b.Address, 0, 3)
	if err != nil || len(items) != 3 || messageID(items[0]) != "m0" || items[0].GetSeq() != seqs[0] || items[2].GetSeq() != seqs[2] {
		c.errorf("read 3 from the start = %v (%v), want m0..m2 with their seqs", ids(items), err)
	}
	if len(items) > 0 && (string(items[0].GetMessage().GetCiphertext()) != "ct m0" || items[0].GetFrom().GetUser() != alice) {
		c.errorf("read item = %v, want what was enqueued", items[0])
	}
	items, err = c.s.Read(b.Address, seqs[2], 10)
	if err != nil || len(items) != 2 || messageID(items[0]) != "m3" {
		c.errorf("read after m2 = %v (%v), want m3 m4", ids(items), err)
	}
	if n, err := c.s.Ack(b.Address, []uint64{seqs[0], seqs[1], seqs[1] + 1_000_000}); err != nil || n != 2 {
		c.errorf("ack m0, m1 and an unknown seq: %d deleted (%v), want 2", n, err)
	}
	// Acking another device's seq deletes nothing of that device.
	if n, err := c.s.Ack(a.Address, []uint64{seqs[2]}); err != nil || n != 0 {
		c.errorf("alice acking bob's seq: %d deleted (%v), want 0", n, err)
	}
	items, err = c.s.Read(b.Address, 0, 10)
	if err != nil || !slices.Equal(ids(items), []string{"m2", "m3", "m4"}) {
		c.errorf("read after acking m0, m1 = %v (%v), want m2 m3 m4", ids(items), err)
	}
	if _, err := c.s.Read(store.Address{User: bob, Device: 9}, 0, 1); !errors.Is(err, store.ErrNotFound) {
		c.errorf("read the queue of an unknown device: %v, want ErrNotFound", err)
	}
	_, err = c.s.Enqueue(store.Batch{Sender: a.Address, UnixMs: 1, Items: []store.Item{
		{To: b.Address, Delivery: delivery(a.Address, "x")}, {To: store.Address{User: bob, Device: 9}, Delivery: delivery(a.Address, "x")}}})
	if !errors.Is(err, store.ErrNotFound) {
		c.errorf("enqueue to an unknown device: %v, want ErrNotFound", err)
	}
	if n, err := c.s.Len(b.Address); err != nil || n != 3 {
		c.errorf("queue length after a failed enqueue = %d (%v), want 3: a failed batch enqueues nothing", n, err)
	}
}

func ids(items []*pb.Delivery) []string {
	out := make([]string, len(items))
	for i, d := range items {
		out[i] = messageID(d)
	}
	return out
}

func (c *checker) dedup() {
	alice, bob := c.user("9"), c.user("10")
	a, ok1 := c.account(alice, 0)
	b, ok2 := c.account(bob, 0)
	if !ok1 || !ok2 {
		return
	}
	web, ok := c.companion(bob, 1, 0)
	if !ok {
		return
	}
	batch := func(ms int64) store.Batch {
		return store.Batch{Sender: a.Address, MessageID: "once", UnixMs: ms, Items: []store.Item{
			{To: b.Address, Delivery: delivery(a.Address, "once")}, {To: web.Address, Delivery: delivery(a.Address, "once")}}}
	}
	if _, ok, err := c.s.Sent(a.Address, "once"); err != nil || ok {
		c.errorf("sent before sending: %v (%v), want false", ok, err)
	}
	if res, err := c.s.Enqueue(batch(500)); err != nil || res.Dup || len(res.Seqs) != 2 {
		c.errorf("first enqueue of a message id: %+v (%v)", res, err)
	}
	if ms, ok, err := c.s.Sent(a.Address, "once"); err != nil || !ok || ms != 500 {
		c.errorf("sent after sending = %d, %v (%v), want 500, true", ms, ok, err)
	}
	res, err := c.s.Enqueue(batch(900))
	if err != nil || !res.Dup || res.UnixMs != 500 {
		c.errorf("second enqueue of the same message id: %+v (%v), want Dup at 500", res, err)
	}
	for _, to := range []store.Address{b.Address, web.Address} {
		if n, err := c.s.Len(to); err != nil || n != 1 {
			c.errorf("queue of %s after a duplicate = %d (%v), want 1", to, n, err)
		}
	}
}

func (c *checker) stale() {
	alice, bob := c.user("11"), c.user("12")
	a, ok1 := c.account(alice, 0)
	b, ok2 := c.account(bob, 0)
	if !ok1 || !ok2 {
		return
	}
	send := func(id string, expect []uint32) error {
		_, err := c.s.Enqueue(store.Batch{Sender: a.Address, MessageID: id, UnixMs: 1,
			Expect: map[string][]uint32{bob: expect}, Items: []store.Item{{To: b.Address, Delivery: delivery(a.Address, "s")}}})
		return err
	}
	if err := send("s1", []uint32{0}); err != nil {
		c.errorf("enqueue expecting bob's list: %v", err)
	}
	if _, ok := c.companion(bob, 1, 0); !ok {
		return
	}
	if err := send("s2", []uint32{0}); !errors.Is(err, store.ErrStale) {
		c.errorf("enqueue expecting a list that changed: %v, want ErrStale", err)
	}
	if _, ok, _ := c.s.Sent(a.Address, "s2"); ok {
		c.errorf("a stale enqueue's message id is remembered: its resend would be lost")
	}
	if n, err := c.s.Len(b.Address); err != nil || n != 1 {
		c.errorf("bob's queue after a stale enqueue = %d (%v), want 1", n, err)
	}
}

func (c *checker) removal() {
	u, sender := c.user("13"), c.user("14")
	phone, ok1 := c.account(u, 0)
	s, ok2 := c.account(sender, 0)
	if !ok1 || !ok2 {
		return
	}
	web, ok := c.companion(u, 1, 3)
	if !ok {
		return
	}
	if _, err := c.s.Enqueue(store.Batch{Sender: s.Address, UnixMs: 1, Items: []store.Item{
		{To: web.Address, Delivery: delivery(s.Address, "r")}}}); err != nil {
		c.errorf("enqueue to the companion: %v", err)
	}
	removed, err := c.s.RemoveDevices(u, []uint32{1, 7})
	if err != nil || len(removed) != 1 || removed[0].Address != web.Address {
		c.errorf("remove devices 1 and 7 (not a device) = %v (%v), want device 1 only", removed, err)
	}
	if ids, err := c.s.DeviceIDs(u); err != nil || !slices.Equal(ids, []uint32{0}) {
		c.errorf("device ids after removing 1 = %v (%v), want [0]", ids, err)
	}
	d, err := c.s.DeviceByKey(web.NoiseKey)
	if !errors.Is(err, store.ErrRemoved) || d.Address != web.Address {
		c.errorf("device by a removed key = %v (%v), want ErrRemoved with the old address", d.Address, err)
	}
	if _, err := c.s.Len(web.Address); !errors.Is(err, store.ErrNotFound) {
		c.errorf("queue of a removed device: %v, want ErrNotFound", err)
	}
	if _, err := c.s.PreKeyCount(web.Address); !errors.Is(err, store.ErrNotFound) {
		c.errorf("prekeys of a removed device: %v, want ErrNotFound", err)
	}
	again := c.device(u, 2)
	again.NoiseKey = web.NoiseKey
	if err := c.s.AddCompanion(again, nil, 4); !errors.Is(err, store.ErrKeyTaken) {
		c.errorf("a companion with a removed key: %v, want ErrKeyTaken", err)
	}
	if err := c.s.AddCompanion(c.device(u, 1), nil, 4); !errors.Is(err, store.ErrDeviceID) {
		c.errorf("reusing a removed companion's id: %v, want ErrDeviceID", err)
	}
	if _, ok := c.companion(u, 2, 0); !ok {
		return
	}
	if d, err := c.s.Device(phone.Address); err != nil || d.Address != phone.Address {
		c.errorf("the phone after removing a companion: %v", err)
	}
}
