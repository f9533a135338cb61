package device

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/wire/pb"
)

// Keys of a user's synced state (docs/protocol.md §18). A key ending in "/"
// takes the user it is about after it: "pin/+15550101".
const (
	SettingContact  = "contact/"          // the contact's name
	SettingRead     = "read/"             // the id of the last message read in the chat with the user
	SettingArchive  = "archive/"          // "1": the chat is archived
	SettingPin      = "pin/"              // "1": the chat is pinned
	SettingMute     = "mute/"             // "1": the chat is muted
	SettingPushName = "profile/push_name" // this user's push name
	SettingAbout    = "profile/about"     // this user's about text
)

// Setting is one key of the synced state as a device holds it: the value of
// the newest write, by Version and then Device.
type Setting struct {
	Value   string
	Version uint64 // the write's Lamport clock
	Device  uint32 // the device that wrote it
}

// appState is a device's copy of its user's synced state: a last-writer-wins
// register per key, ordered by (Lamport version, device id), so every device
// that has seen the same writes holds the same values whatever order they
// came in.
type appState struct {
	st kv.KV

	mu    sync.Mutex
	clock uint64 // the highest version written or seen
	by    map[string]Setting
}

func newAppState(st kv.KV) *appState { return &appState{st: st, by: make(map[string]Setting)} }

func (a *appState) load() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st.Scan(prefixAppState, func(key string, v []byte) error {
		var m pb.AppStateMutation
		if err := pb.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("corrupt synced state %s: %w", key, err)
		}
		a.by[m.Key] = Setting{Value: m.Value, Version: m.Version, Device: m.Device}
		a.clock = max(a.clock, m.Version)
		return nil
	})
}

// wins reports whether m is newer than what a holds for its key.
func (a *appState) wins(m *pb.AppStateMutation) bool {
	cur, ok := a.by[m.Key]
	return !ok || cmp.Or(cmp.Compare(m.Version, cur.Version), cmp.Compare(m.Device, cur.Device)) > 0
}

// write makes a local change by device dev, one version past anything seen.
func (a *appState) write(key, value string, dev uint32) (*pb.AppStateMutation, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := &pb.AppStateMutation{Key: key, Value: value, Version: a.clock + 1, Device: dev}
	return m, a.keep(m)
}

// merge takes a write from another device; false means what a holds is as
// new or newer, and nothing changed.
func (a *appState) merge(m *pb.AppStateMutation) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.clock = max(a.clock, m.Version)
	if !a.wins(m) {
		return false, nil
	}
	return true, a.keep(m)
}

func (a *appState) keep(m *pb.AppStateMutation) error {
	raw, err := pb.Marshal(m)
	if err != nil {
		return err
	}
	if err := a.st.Put(prefixAppState+m.Key, raw); err != nil {
		return err
	}
	a.by[m.Key] = Setting{Value: m.Value, Version: m.Version, Device: m.Device}
	a.clock = max(a.clock, m.Version)
	return nil
}

func (a *appState) get(key string) (Setting, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.by[key]
	return s, ok
}

// mutations lists the held writes that pass keep, in key order.
func (a *appState) mutations(keep func(Setting) bool) []*pb.AppStateMutation {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*pb.AppStateMutation
	for k, s := range a.by {
		if keep(s) {
			out = append(out, &pb.AppStateMutation{Key: k, Value: s.Value, Version: s.Version, Device: s.Device})
		}
	}
	slices.SortFunc(out, func(x, y *pb.AppStateMutation) int { return strings.Compare(x.Key, y.Key) })
	return out
}

func (a *appState) snapshot() map[string]Setting {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.by)
}

// validSetting reports whether key is one this version knows; others are
// kept (a newer client's) but do nothing here.
func validSetting(key string) bool {
	if key == SettingPushName || key == SettingAbout {
		return true
	}
	for _, p := range []string{SettingContact, SettingRead, SettingArchive, SettingPin, SettingMute} {
		if user, ok := strings.CutPrefix(key, p); ok {
			return user != ""
		}
	}
	return false
}

// Setting returns the synced value of key, e.g. SettingPin+"+15550101".
func (d *Device) Setting(key string) (Setting, bool) { return d.state.get(key) }

// SyncedState is every key of the user's synced state as this device holds
// it: devices that saw the same changes hold equal maps.
func (d *Device) SyncedState() map[string]Setting { return d.state.snapshot() }

// SetContact names user in this user's contacts, on every one of its
// devices.
func (d *Device) SetContact(ctx context.Context, user, name string) error {
	return d.change(ctx, SettingContact+user, name)
}

// Archive archives (or unarchives) the chat with peer on every device of
// this user.
func (d *Device) Archive(ctx context.Context, peer string, on bool) error {
	return d.change(ctx, SettingArchive+peer, flag(on))
}

// Pin pins (or unpins) the chat with peer on every device of this user.
func (d *Device) Pin(ctx context.Context, peer string, on bool) error {
	return d.change(ctx, SettingPin+peer, flag(on))
}

// Mute mutes (or unmutes) the chat with peer on every device of this user.
func (d *Device) Mute(ctx context.Context, peer string, on bool) error {
	return d.change(ctx, SettingMute+peer, flag(on))
}

func flag(on bool) string {
	if on {
		return "1"
	}
	return ""
}

// change writes key locally, applies it, and tells our other devices.
func (d *Device) change(ctx context.Context, key, value string) error {
	return d.changeAll(ctx, map[string]string{key: value})
}

func (d *Device) changeAll(ctx context.Context, kvs map[string]string) error {
	for _, key := range slices.Sorted(maps.Keys(kvs)) {
		m, err := d.state.write(key, kvs[key], d.self.Device)
		if err == nil {
			err = d.applySetting(m)
		}
		if err != nil {
			return fmt.Errorf("%s: change %s: %w", d.cfg.Name, key, err)
		}
	}
	if err := d.flushSync(ctx); err != nil {
		return fmt.Errorf("%s: sync to own devices: %w", d.cfg.Name, err)
	}
	return nil
}

// flushSync sends our other devices every write of ours they have not been
// sent yet, as one self-message. A send that failed (offline, closed) is
// sent by the next flush: writes are marked sent only once the relay has
// them, and every connection flushes.
func (d *Device) flushSync(ctx context.Context) error {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	mark, err := getUint(d.cfg.State, keySyncSent)
	if err != nil {
		return err
	}
	ms := d.state.mutations(func(s Setting) bool { return s.Device == d.self.Device && s.Version > mark })
	if len(ms) == 0 {
		return nil
	}
	id := NewMessageID()
	c := &pb.Content{Kind: &pb.Content_AppState{AppState: &pb.AppStateSync{Mutations: ms}}}
	if err := d.keepSent(id, d.self.User, c); err != nil {
		return err
	}
	if err := d.fanOut(ctx, id, d.self.User, c, nil); err != nil {
		return err
	}
	for _, m := range ms {
		mark = max(mark, m.Version)
		d.emit(Event{Kind: SyncSent, MessageID: id, Text: m.Key})
	}
	return putUint(d.cfg.State, keySyncSent, mark)
}

// flushSyncNow flushes on a fresh connection: writes made while offline,
// or whose send failed, go out now.
func (d *Device) flushSyncNow() {
	ctx, cancel := context.WithTimeout(d.ctx, 3*d.cfg.CallTimeout)
	defer cancel()
	if err := d.flushSync(ctx); err != nil && d.ctx.Err() == nil {
		d.log.Warn("sync to own devices", "err", err)
	}
}

// receiveAppState merges what another device of ours changed. Only our own
// devices may change our state: anyone else's is dropped.
func (d *Device) receiveAppState(from e2e.Address, s *pb.AppStateSync) error {
	if from.User != d.self.User {
		d.log.Warn("synced state from another user, dropped", "from", from.String())
		return nil
	}
	return d.mergeState(from, s.Mutations)
}

func (d *Device) mergeState(from e2e.Address, ms []*pb.AppStateMutation) error {
	for _, m := range ms {
		if !validSetting(m.Key) {
			d.log.Debug("unknown synced key", "key", m.Key)
		}
		won, err := d.state.merge(m)
		if err != nil {
			return err
		}
		// Reading is never undone: a read that lost to a later one on
		// the same chat still marks its messages read.
		if won || strings.HasPrefix(m.Key, SettingRead) {
			if err := d.applySetting(m); err != nil {
				return err
			}
		}
		d.emit(Event{Kind: SyncApplied, From: from, Text: m.Key})
	}
	return nil
}

// applySetting makes a change show where the device keeps it apart from the
// synced state: contact names and read messages.
func (d *Device) applySetting(m *pb.AppStateMutation) error {
	if user, ok := strings.CutPrefix(m.Key, SettingContact); ok {
		return d.chats.setName(user, m.Value)
	}
	if peer, ok := strings.CutPrefix(m.Key, SettingRead); ok && m.Device != d.self.Device {
		return d.chats.markReadUpTo(peer, m.Value)
	}
	return nil
}

// flagged fills in each chat's synced flags, and lists pinned chats first
// and archived ones last.
func (d *Device) flagged(chats []Chat) []Chat {
	for i := range chats {
		c := &chats[i]
		c.Archived = d.isSet(SettingArchive + c.Peer)
		c.Pinned = d.isSet(SettingPin + c.Peer)
		c.Muted = d.isSet(SettingMute + c.Peer)
	}
	slices.SortStableFunc(chats, func(x, y Chat) int {
		return cmp.Compare(boolRank(x.Archived)-boolRank(x.Pinned), boolRank(y.Archived)-boolRank(y.Pinned))
	})
	return chats
}

func (d *Device) isSet(key string) bool {
	s, _ := d.state.get(key)
	return s.Value != ""
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}
