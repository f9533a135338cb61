package scenarios

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/reports"
	"github.com/linksim/linksim/sim/device"
)

// State in step across a user's devices (docs/protocol.md §18): read state,
// contacts, profile and chat flags travel end to end encrypted as
// self-messages, each write ordered by a Lamport version.
var syncFlows = []Flow{
	{
		Feature: "State in step across devices", Outcome: "reading on the phone clears unread on the web and reading on the web clears it on the phone, with one read receipt per message",
		Labels: []string{Sync}, Timeout: 30 * time.Second,
		Run: readInStep,
		// bob's two messages to alice's phone and web, then alice's reply
		// to bob's phone with a copy to her web.
		Expect: harness.Expect{Messages: 3, Deliveries: 2*2 + 2, Devices: 3},
	},
	{
		Feature: "State in step across devices", Outcome: "contacts, profile and archive/pin/mute changed after linking reach every device, a concurrent rename converges, and a device offline meanwhile catches up",
		Labels: []string{Sync}, Timeout: 30 * time.Second,
		Run: stateInStep,
		// bob's first message, to alice's phone and both web clients.
		Expect: harness.Expect{Messages: 1, Deliveries: 3, Devices: 3},
	},
}

// syncView is what one device shows of the state synced across its user's
// devices: the synced keys, contact names, and per chat the unread count
// and flags.
type syncView struct {
	state    map[string]device.Setting
	contacts map[string]string
	chats    map[string]string // peer -> "unread=1 pinned=false muted=false archived=false"
}

func viewOf(d *device.Device) syncView {
	v := syncView{state: d.SyncedState(), contacts: d.Contacts(), chats: map[string]string{}}
	for _, c := range d.Chats() {
		v.chats[c.Peer] = fmt.Sprintf("unread=%d pinned=%v muted=%v archived=%v", c.Unread, c.Pinned, c.Muted, c.Archived)
	}
	return v
}

// inStep checks that devices (the first is the reference, usually the
// phone) show the same synced state, contact names, unread counts and chat
// flags; it names every device that differs, and how.
func inStep(devices []*device.Device) error {
	ref := viewOf(devices[0])
	var errs []error
	for _, d := range devices[1:] {
		v := viewOf(d)
		for _, diff := range []struct {
			what string
			same bool
			got  any
			want any
		}{
			{"synced state", maps.Equal(v.state, ref.state), v.state, ref.state},
			{"contact names", maps.Equal(v.contacts, ref.contacts), v.contacts, ref.contacts},
			{"chats", maps.Equal(v.chats, ref.chats), v.chats, ref.chats},
		} {
			if !diff.same {
				errs = append(errs, fmt.Errorf("%s shows %s %v; %s shows %v", d.Name(), diff.what, diff.got, devices[0].Name(), diff.want))
			}
		}
	}
	return errors.Join(errs...)
}

// awaitInStep waits until devices are in step.
func awaitInStep(ctx context.Context, devices ...*device.Device) error {
	names := make([]string, len(devices))
	for i, d := range devices {
		names[i] = d.Name()
	}
	return await(ctx, "devices "+strings.Join(names, ", ")+" to show the same synced state", func() error { return inStep(devices) })
}

// readReceipts counts the read receipts that arrived on device for msg.
func readReceipts(env *harness.Env, device, msg string) int {
	n := 0
	for _, e := range env.Recorder().Events() {
		if e.Kind == reports.KindReceipt && e.Receipt == reports.Read && e.Device == device && e.Msg == msg {
			n++
		}
	}
	return n
}

// oneReadReceipt checks that sender got exactly one read receipt for each of
// ids, however many of the reader's devices show them read.
func oneReadReceipt(env *harness.Env, sender string, ids []string) error {
	var errs []error
	for _, id := range ids {
		if n := readReceipts(env, sender, id); n != 1 {
			errs = append(errs, fmt.Errorf("%s got %d read receipts for message %s, want exactly 1", sender, n, id))
		}
	}
	return errors.Join(errs...)
}

// settleReceipts has reader's phone reply to sender and waits until the
// reply arrived: every receipt sent before it is queued before it, so the
// receipt count read afterwards is final.
func settleReceipts(ctx context.Context, reader, sender *harness.User) error {
	id, err := reader.Phone.SendText(ctx, sender.Phone.Self().User, "seen, thanks")
	if err != nil {
		return err
	}
	return await(ctx, sender.Phone.Name()+" to get the reply", func() error {
		if !slices.ContainsFunc(sender.Phone.Messages(reader.Phone.Self().User), func(m device.Message) bool { return m.ID == id }) {
			return errors.New("not yet")
		}
		return nil
	})
}

// unreadOn waits until the chat with peer shows want unread on each device.
func unreadOn(ctx context.Context, peer string, want int, devices ...*device.Device) error {
	return await(ctx, fmt.Sprintf("the chat with %s to show %d unread on every device", peer, want), func() error {
		for _, d := range devices {
			got := -1
			for _, c := range d.Chats() {
				if c.Peer == peer {
					got = c.Unread
				}
			}
			if got != want {
				return fmt.Errorf("%s shows %d unread", d.Name(), got)
			}
		}
		return nil
	})
}

func readInStep(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 1, 0)
	if err != nil {
		return err
	}
	phone, web, bobUser := alice.Phone.Device, alice.Web(0), bob.Phone.Self().User
	var ids []string
	for _, reader := range []*device.Device{phone, web} {
		id, err := bob.Phone.SendText(ctx, alice.Phone.Self().User, "read me on "+reader.Name())
		if err != nil {
			return err
		}
		ids = append(ids, id)
		if err := unreadOn(ctx, bobUser, 1, phone, web); err != nil {
			return err
		}
		if err := reader.MarkRead(ctx, bobUser); err != nil {
			return err
		}
		if err := unreadOn(ctx, bobUser, 0, phone, web); err != nil {
			return err
		}
	}
	// Nothing is left unread anywhere: marking read again sends nothing.
	if err := errors.Join(phone.MarkRead(ctx, bobUser), web.MarkRead(ctx, bobUser)); err != nil {
		return err
	}
	if err := awaitInStep(ctx, phone, web); err != nil {
		return err
	}
	if err := settleReceipts(ctx, alice, bob); err != nil {
		return err
	}
	if err := oneReadReceipt(env, bob.Phone.Name(), ids); err != nil {
		return err
	}
	return clean(ctx, env)
}

func stateInStep(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 2, 0)
	if err != nil {
		return err
	}
	aliceUser, bobUser, carol := alice.Phone.Self().User, bob.Phone.Self().User, env.User("carol")
	if _, err := bob.Phone.SendText(ctx, aliceUser, "hello alice"); err != nil {
		return err
	}
	if err := unreadOn(ctx, bobUser, 1, alice.Devices()...); err != nil {
		return err
	}
	// alice's second web client is closed while everything changes.
	alice.Webs[1].Close()
	phone, web := alice.Phone.Device, alice.Web(0)
	pushName, about := "Alice on the web", "Synced, not fetched"
	for _, change := range []func() error{
		func() error { return alice.Phone.AddContact(ctx, carol, "Carol") },
		func() error { return phone.Pin(ctx, bobUser, true) },
		func() error { return phone.Mute(ctx, bobUser, true) },
		func() error { return web.Archive(ctx, bobUser, true) },
		func() error { return web.SetProfile(ctx, &pushName, &about) },
	} {
		if err := change(); err != nil {
			return err
		}
	}
	// Both rename bob at once: whichever write has the higher version
	// (then device id) wins, on every device.
	var wg sync.WaitGroup
	renames := make([]error, 2)
	for i, d := range []*device.Device{phone, web} {
		wg.Go(func() { renames[i] = d.SetContact(ctx, bobUser, "Bob, as "+d.Name()+" calls him") })
	}
	wg.Wait()
	if err := errors.Join(renames...); err != nil {
		return err
	}
	if err := awaitInStep(ctx, phone, web); err != nil {
		return err
	}
	back, err := env.Reopen(ctx, alice, 1)
	if err != nil {
		return err
	}
	if err := awaitInStep(ctx, phone, web, back); err != nil {
		return err
	}
	return syncedAs(back, bobUser, map[string]string{
		device.SettingContact + carol: "Carol", device.SettingPin + bobUser: "1", device.SettingMute + bobUser: "1",
		device.SettingArchive + bobUser: "1", device.SettingPushName: pushName, device.SettingAbout: about,
	})
}

// syncedAs checks the synced values d holds, and that its chat with peer
// shows the flags set.
func syncedAs(d *device.Device, peer string, want map[string]string) error {
	var errs []error
	for k, v := range want {
		if s, _ := d.Setting(k); s.Value != v {
			errs = append(errs, fmt.Errorf("%s holds %s = %q, want %q", d.Name(), k, s.Value, v))
		}
	}
	for _, c := range d.Chats() {
		if c.Peer == peer && !(c.Pinned && c.Muted && c.Archived) {
			errs = append(errs, fmt.Errorf("%s shows the chat with %s pinned %v, muted %v, archived %v; want all set", d.Name(), peer, c.Pinned, c.Muted, c.Archived))
		}
	}
	return errors.Join(errs...)
}
