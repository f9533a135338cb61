package scenarios

import (
	"context"
	"fmt"
	"slices"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/webclient/driver"
)

var browserSyncFlows = []Flow{
	{
		Feature: "State in step across devices", Outcome: "in a browser: read on the phone clears the unread badge, read in the browser clears the phone, one receipt each; a rename and archive/pin/mute from the phone show; an about text set in the browser reaches the phone",
		Labels: []string{Sync, Browser}, Timeout: browserTimeout, Configure: browserEnv(nil),
		Run: browserInStep,
		// The history's message; bob's next to alice's phone and browser;
		// alice's reply to bob with a copy to her browser.
		Expect: harness.Expect{Messages: 3, Deliveries: 1 + 2 + 2, Devices: 3},
	},
	{
		Feature: "State in step across devices", Outcome: "a browser cut off while the phone reads, renames, pins, mutes and archives shows all of it once its link heals, and sends no second read receipt",
		Labels: []string{Sync, Browser, Reconnect, Fault}, Timeout: browserTimeout, Configure: browserEnv(faulty),
		Run: browserCatchUp,
		// The history's message; alice's reply to bob with a copy to her browser.
		Expect: harness.Expect{Messages: 2, Deliveries: 1 + 2, Devices: 3},
	},
}

// browserChat waits until w lists the chat with peer and ok accepts it.
func browserChat(ctx context.Context, w *harness.Web, peer, what string, ok func(driver.Chat) bool) error {
	return await(ctx, fmt.Sprintf("%s to show the chat with %s %s", w.Name(), peer, what), func() error {
		chats, err := w.Chats(ctx)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(chats, func(c driver.Chat) bool { return c.Peer == peer })
		if i < 0 {
			return fmt.Errorf("no such chat in %+v", chats)
		}
		if !ok(chats[i]) {
			return fmt.Errorf("it shows %+v", chats[i])
		}
		return nil
	})
}

func browserInStep(ctx context.Context, env *harness.Env) error {
	alice, bob, w, _, err := historyInBrowser(ctx, env)
	if err != nil {
		return err
	}
	aliceUser, bobUser := alice.Phone.Self().User, bob.Phone.Self().User
	ids := []string{alice.Phone.Messages(bobUser)[0].ID} // from the history
	if err := browserChat(ctx, w, bobUser, "1 unread", func(c driver.Chat) bool { return c.Unread == 1 }); err != nil {
		return err
	}
	if err := alice.Phone.MarkRead(ctx, bobUser); err != nil {
		return err
	}
	if err := browserChat(ctx, w, bobUser, "read (no badge)", func(c driver.Chat) bool { return c.Unread == 0 }); err != nil {
		return err
	}

	const text = "read me in the browser"
	id, err := bob.Phone.SendText(ctx, aliceUser, text)
	if err != nil {
		return err
	}
	ids = append(ids, id)
	if err := browserChat(ctx, w, bobUser, "1 unread", func(c driver.Chat) bool { return c.Unread == 1 }); err != nil {
		return err
	}
	if err := w.OpenChat(ctx, bobUser); err != nil { // opening reads it
		return err
	}
	if _, err := shows(ctx, w, text, driver.In, ""); err != nil {
		return err
	}
	if err := unreadOn(ctx, bobUser, 0, alice.Phone.Device); err != nil {
		return err
	}

	if err := alice.Phone.AddContact(ctx, bobUser, "Bobby"); err != nil {
		return err
	}
	for _, set := range []func() error{
		func() error { return alice.Phone.Pin(ctx, bobUser, true) },
		func() error { return alice.Phone.Mute(ctx, bobUser, true) },
		func() error { return alice.Phone.Archive(ctx, bobUser, true) },
	} {
		if err := set(); err != nil {
			return err
		}
	}
	if err := browserChat(ctx, w, bobUser, `named "Bobby", pinned, muted and archived`, func(c driver.Chat) bool {
		return c.Name == "Bobby" && c.Pinned && c.Muted && c.Archived
	}); err != nil {
		return err
	}

	const about = "Set in the browser, synced to the phone"
	if err := w.SetAbout(ctx, about); err != nil {
		return err
	}
	if err := await(ctx, "alice's phone to hold the about text set in the browser", func() error {
		if s, _ := alice.Phone.Setting(device.SettingAbout); s.Value != about {
			return fmt.Errorf("it holds %q", s.Value)
		}
		return nil
	}); err != nil {
		return err
	}

	return oneReceiptEach(ctx, env, alice, bob, w, ids)
}

func browserCatchUp(ctx context.Context, env *harness.Env) error {
	alice, bob, w, _, err := historyInBrowser(ctx, env)
	if err != nil {
		return err
	}
	bobUser := bob.Phone.Self().User
	ids := []string{alice.Phone.Messages(bobUser)[0].ID}
	if err := browserChat(ctx, w, bobUser, `named "Bob", 1 unread`, func(c driver.Chat) bool { return c.Name == "Bob" && c.Unread == 1 }); err != nil {
		return err
	}
	net, lift, err := blackholePage(ctx, env, w)
	if err != nil {
		return err
	}
	changes := []func() error{
		net.Reset,
		func() error { return banner(ctx, w, "reconnecting", "Reconnecting…") },
		func() error { return alice.Phone.MarkRead(ctx, bobUser) },
		func() error { return alice.Phone.AddContact(ctx, bobUser, "Bobby") },
		func() error { return alice.Phone.Pin(ctx, bobUser, true) },
		func() error { return alice.Phone.Mute(ctx, bobUser, true) },
		func() error { return alice.Phone.Archive(ctx, bobUser, true) },
	}
	for _, change := range changes {
		if err := change(); err != nil {
			lift()
			return err
		}
	}
	lift()
	if err := net.Reset(); err != nil { // ends the reconnect stuck in the blackhole
		return err
	}
	if err := browserChat(ctx, w, bobUser, `named "Bobby", read, pinned, muted and archived`, func(c driver.Chat) bool {
		return c.Name == "Bobby" && c.Unread == 0 && c.Pinned && c.Muted && c.Archived
	}); err != nil {
		return err
	}
	// Opening the chat reads nothing new: the phone read it already.
	if err := w.OpenChat(ctx, bobUser); err != nil {
		return err
	}
	return oneReceiptEach(ctx, env, alice, bob, w, ids)
}

// oneReceiptEach lets the receipts settle (the page shows the phone's
// "seen, thanks"), then checks bob got exactly one read receipt for each of
// ids and the ledger is clean.
func oneReceiptEach(ctx context.Context, env *harness.Env, alice, bob *harness.User, w *harness.Web, ids []string) error {
	if err := settleReceipts(ctx, alice, bob); err != nil {
		return err
	}
	if _, err := shows(ctx, w, "seen, thanks", driver.Out, ""); err != nil {
		return err
	}
	if err := oneReadReceipt(env, bob.Phone.Name(), ids); err != nil {
		return err
	}
	return clean(ctx, env)
}
