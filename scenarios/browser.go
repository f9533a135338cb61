package scenarios

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
	"github.com/linksim/linksim/webclient/driver"
)

// Browser flows run the real web app (the client compiled to WebAssembly)
// in headless Chromium and read the QR code from its pixels. The device in
// the page cannot report to the harness, so harness.Web records in the
// ledger what the page shows (see its doc): browser devices are held to the
// same ledger as native ones, with latencies as observed by polling.
var browserFlows = []Flow{
	{
		Feature: "Web client in a browser", Outcome: "links by scanning a screenshot of its QR code and lists the chats from history",
		Labels: []string{Browser, Smoke, Pairing}, Timeout: browserTimeout, Configure: browserEnv(nil),
		Run:    browserLinks,
		Expect: historyOnly,
	},
	{
		Feature: "Web client in a browser", Outcome: "in a phone-sized window 320 px wide shows the whole QR code, which links",
		Labels: []string{Browser, Pairing}, Timeout: browserTimeout, Configure: browserEnv(nil),
		Run:    browserNarrowWindow,
		Expect: historyOnly,
	},
	{
		Feature: "Web client in a browser", Outcome: "rotates its QR code; the rotated-out code is refused as expired and the current one links",
		Labels: []string{Browser, Pairing}, Timeout: browserTimeout,
		Configure: browserEnv(func(c *harness.Config) {
			c.Relay.RefFirstTTL = 1500 * time.Millisecond
			c.Relay.RefNextTTL = 1500 * time.Millisecond
		}),
		Run: browserQRRotates,
	},
	{
		Feature: "Web client in a browser", Outcome: `shows "QR code expired - click to reload" when every code ran out, and a reloaded code links`,
		Labels: []string{Browser, Pairing}, Timeout: browserTimeout,
		Configure: browserEnv(func(c *harness.Config) {
			c.Relay.RefCount = 2
			c.Relay.RefFirstTTL = 700 * time.Millisecond
			c.Relay.RefNextTTL = 700 * time.Millisecond
		}),
		Run: browserQRExpires,
	},
	{
		Feature: "Web client in a browser", Outcome: "sends and receives messages with the phones, and its ticks reach delivered and read",
		Labels: []string{Browser, Messaging}, Timeout: browserTimeout, Configure: browserEnv(nil),
		Run: browserMessaging,
		// The history's message, then one each from bob's phone, alice's
		// phone and her browser, each owed to the 3 devices but the sender.
		Expect: harness.Expect{Messages: 1 + 3, Deliveries: 1 + 3*3, Devices: 4},
	},
	{
		Feature: "Web client in a browser", Outcome: `cut off through the fault proxy, it shows "Reconnecting…"; healed, it gets what was sent meanwhile, nothing lost`,
		Labels: []string{Browser, Reconnect}, Timeout: browserTimeout, Configure: browserEnv(faulty),
		Run: browserCutOff,
		// history; bob's three while alice's browser is cut off (to her
		// phone and browser); the browser's reply (to bob and her phone)
		Expect: harness.Expect{Messages: 1 + 3 + 1, Deliveries: 1 + 3*2 + 2, Devices: 3},
	},
	{
		Feature: "Web client in a browser", Outcome: "its page crashes mid-conversation and is reopened on the same profile: still linked, every message once, still messaging",
		Labels: []string{Browser, Reconnect, Fault}, Timeout: browserTimeout, Configure: browserEnv(nil),
		Run: browserCrash,
		// The history's; the browser's two (to bob and her phone); bob's
		// five, three as the page crashes and two while it is down (to her
		// phone and browser).
		Expect: harness.Expect{Messages: 1 + 2 + 5, Deliveries: 1 + 2*2 + 5*2, Devices: 3},
	},
	{
		Feature: "Web client in a browser", Outcome: "a page reload keeps the session: still linked, same chats, still messaging",
		Labels: []string{Browser, Reconnect}, Timeout: browserTimeout, Configure: browserEnv(nil),
		Run: browserReload,
		// The history's, the browser's to bob and bob's to alice (each owed
		// to 2 devices).
		Expect: harness.Expect{Messages: 1 + 2, Deliveries: 1 + 2*2, Devices: 3},
	},
	{
		Feature: "Web client in a browser", Outcome: "logging out from the web updates the phone's device list and shows a fresh QR code",
		Labels: []string{Browser, Pairing}, Timeout: browserTimeout, Configure: browserEnv(nil),
		Run:    browserLogout,
		Expect: historyOnly,
	},
	{
		Feature: "Web client in a browser", Outcome: "removed by the phone, it returns to a QR code",
		Labels: []string{Browser, Pairing}, Timeout: browserTimeout, Configure: browserEnv(nil),
		Run:    browserRemovedByPhone,
		Expect: historyOnly,
	},
	{
		Feature: "Web client in a browser", Outcome: "an about text changed on the web is seen by a contact",
		Labels: []string{Browser, Profile}, Timeout: browserTimeout, Configure: browserEnv(nil),
		Run:    browserAbout,
		Expect: historyOnly,
	},
	{
		Feature: "Web client in a browser", Outcome: "offers no voice or video call anywhere",
		Labels: []string{Browser}, Timeout: browserTimeout, Configure: browserEnv(nil),
		Run:    browserNoCalls,
		Expect: historyOnly,
	},
	{
		Feature: "Web client in a browser", Outcome: "an image and a document from a phone preview on the page, and download verified",
		Labels: []string{Browser, Media}, Timeout: browserTimeout, Configure: browserEnv(nil),
		Run: browserMediaReceived,
		// The history's, then two files from bob's phone to alice's phone and browser.
		Expect: harness.Expect{Messages: 1 + 2, Deliveries: 1 + 2*2, Devices: 2},
	},
	{
		Feature: "Web client in a browser", Outcome: "an image attached on the page reaches the peer's phone and the sender's phone, verified",
		Labels: []string{Browser, Media}, Timeout: browserTimeout, Configure: browserEnv(nil),
		Run: browserMediaSent,
		// The history's, then a file from the browser to bob's and alice's phones.
		Expect: harness.Expect{Messages: 1 + 1, Deliveries: 1 + 2, Devices: 2},
	},
	{
		Feature: "Web client in a browser", Outcome: "a media blob tampered with at the relay is rejected on the page, with the error and nothing of it shown",
		Labels: []string{Browser, Media, Security, Fault}, Timeout: browserTimeout, Configure: browserEnv(nil),
		Run:    browserMediaTampered,
		Expect: harness.Expect{Messages: 1 + 1, Deliveries: 1 + 2, Devices: 2},
	},
}

// browserTimeout bounds a browser flow: a few seconds normally, the rest is
// headroom for a loaded machine.
const browserTimeout = 60 * time.Second

// browserEnv is the Configure of browser flows: it builds the web app and
// starts the shared Chromium before the flow's clock starts (a cold build
// takes over a minute), then applies more, if any. A failure here shows
// again, with its cause, when the flow opens its first page.
func browserEnv(more func(*harness.Config)) func(*harness.Config) {
	return func(c *harness.Config) {
		ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
		defer cancel()
		_ = harness.PrepareBrowsers(ctx)
		if more != nil {
			more(c)
		}
	}
}

// historyOnly is the ledger of a flow whose only message is withHistory's:
// bob's, to alice's phone.
var historyOnly = harness.Expect{Messages: 1, Deliveries: 1, Devices: 1}

// withHistory registers alice and bob, names bob in alice's contacts, and
// has bob write to alice, so a web client alice links gets a chat from
// history sync.
func withHistory(ctx context.Context, env *harness.Env) (alice, bob *harness.User, err error) {
	if alice, err = env.NewUser(ctx, "alice", 0); err != nil {
		return
	}
	if bob, err = env.NewUser(ctx, "bob", 0); err != nil {
		return
	}
	if err = alice.Phone.AddContact(ctx, bob.Phone.Self().User, "Bob"); err != nil {
		return
	}
	if _, err = bob.Phone.SendText(ctx, alice.Phone.Self().User, "hi alice, before you had a web client"); err != nil {
		return
	}
	err = await(ctx, "alice's phone to get bob's message", func() error {
		if len(alice.Phone.Messages(bob.Phone.Self().User)) == 0 {
			return errors.New("no chat with bob yet")
		}
		return nil
	})
	return
}

// qrOnlyInPixels checks that no part of the QR payload w shows can be read
// from the page as text: a harness must read the pixels, as a phone does.
func qrOnlyInPixels(ctx context.Context, w *harness.Web) error {
	q, err := w.ReadQR(ctx)
	if err != nil {
		return err
	}
	p, err := e2e.ParseQR(q.Payload)
	if err != nil {
		return err
	}
	exposed, err := w.Exposed(ctx)
	if err != nil {
		return err
	}
	for name, part := range map[string]string{
		"ref": p.Ref, "noise key": base64.StdEncoding.EncodeToString(p.NoiseKey),
		"identity key": base64.StdEncoding.EncodeToString(p.IdentityKey), "adv secret": base64.StdEncoding.EncodeToString(p.AdvSecret),
	} {
		if strings.Contains(exposed, part) {
			return fmt.Errorf("%s: the QR payload's %s can be read from the page's DOM, globals or storage", w.Name(), name)
		}
	}
	return nil
}

// historyInBrowser is withHistory, then a browser web client alice links:
// the start of most browser flows.
func historyInBrowser(ctx context.Context, env *harness.Env) (alice, bob *harness.User, w *harness.Web, dev uint32, err error) {
	if alice, bob, err = withHistory(ctx, env); err != nil {
		return
	}
	w, dev, err = linkedBrowser(ctx, env, alice)
	return
}

// linkedBrowser opens a browser web client for u and links it.
func linkedBrowser(ctx context.Context, env *harness.Env, u *harness.User) (*harness.Web, uint32, error) {
	w, err := env.Browser(ctx, u.Name+"/browser-1")
	if err != nil {
		return nil, 0, err
	}
	dev, err := env.LinkBrowser(ctx, u.Phone, w)
	return w, dev, err
}

// lists waits until the chat list of w has a chat named name whose last
// message is last ("" for any).
func lists(ctx context.Context, w *harness.Web, name, last string) error {
	return await(ctx, fmt.Sprintf("%s to list a chat with %s", w.Name(), name), func() error {
		chats, err := w.Chats(ctx)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(chats, func(c driver.Chat) bool { return c.Name == name && (last == "" || c.Last == last) }) {
			return fmt.Errorf("chats are %+v", chats)
		}
		return nil
	})
}

// shows waits until w's open conversation shows a message with text in
// direction dir whose status is at least status ("" for any).
func shows(ctx context.Context, w *harness.Web, text, dir, status string) (driver.Message, error) {
	var found driver.Message
	err := await(ctx, fmt.Sprintf("%s to show %q (%s, %s)", w.Name(), text, dir, status), func() error {
		msgs, err := w.Messages(ctx)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Text == text && m.Direction == dir && (status == "" || driver.StatusAtLeast(m.Status, status)) {
				found = m
				return nil
			}
		}
		return fmt.Errorf("messages are %+v", msgs)
	})
	return found, err
}

// cleanWith waits until the ledger is clean, reading the open conversation
// of each browser web client into it meanwhile.
func cleanWith(ctx context.Context, env *harness.Env, webs ...*harness.Web) error {
	return await(ctx, "every message to reach every device exactly once, in order", func() error {
		for _, w := range webs {
			if err := w.Observe(ctx); err != nil {
				return err
			}
		}
		return env.Check()
	})
}

// companions waits until u's phone lists exactly want as its companions.
func companions(ctx context.Context, u *harness.User, want ...uint32) error {
	return await(ctx, fmt.Sprintf("%s's phone to list companions %v", u.Name, want), func() error {
		got, err := u.Phone.LinkedDevices(ctx)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("it lists %v", got)
		}
		return nil
	})
}

func browserLinks(ctx context.Context, env *harness.Env) error {
	alice, _, err := withHistory(ctx, env)
	if err != nil {
		return err
	}
	w, err := env.Browser(ctx, alice.Name+"/browser-1")
	if err != nil {
		return err
	}
	if err := qrOnlyInPixels(ctx, w); err != nil {
		return err
	}
	dev, err := env.LinkBrowser(ctx, alice.Phone, w)
	if err != nil {
		return err
	}
	if err := lists(ctx, w, "Bob", "hi alice, before you had a web client"); err != nil {
		return err
	}
	if err := companions(ctx, alice, dev); err != nil {
		return err
	}
	return cleanWith(ctx, env, w)
}

func browserQRRotates(ctx context.Context, env *harness.Env) error {
	alice, err := env.NewUser(ctx, "alice", 0)
	if err != nil {
		return err
	}
	w, err := env.Browser(ctx, "alice/browser-1")
	if err != nil {
		return err
	}
	first, err := w.ReadQR(ctx)
	if err != nil {
		return err
	}
	if err := await(ctx, w.Name()+" to rotate its QR code", func() error {
		q, err := w.ReadQR(ctx)
		if err != nil {
			return err
		}
		if q.Payload == first.Payload {
			return errors.New("it still shows the first code")
		}
		return nil
	}); err != nil {
		return err
	}
	_, err = harness.ScanQR(ctx, alice.Phone, first)
	if got := device.Code(err); got != pb.ErrorCode_REF_EXPIRED {
		return fmt.Errorf("scanning the rotated-out code: relay answered %v (code %s), want REF_EXPIRED", err, got)
	}
	if err := companions(ctx, alice); err != nil {
		return err
	}
	dev, err := env.LinkBrowser(ctx, alice.Phone, w)
	if err != nil {
		return fmt.Errorf("linking with the current code: %w", err)
	}
	return companions(ctx, alice, dev)
}

func browserQRExpires(ctx context.Context, env *harness.Env) error {
	alice, err := env.NewUser(ctx, "alice", 0)
	if err != nil {
		return err
	}
	w, err := env.Browser(ctx, "alice/browser-1")
	if err != nil {
		return err
	}
	if err := w.WaitScreen(ctx, driver.ScreenExpired); err != nil {
		return err
	}
	const want = "QR code expired - click to reload"
	if txt, err := w.ExpiredText(ctx); err != nil {
		return err
	} else if !regexp.MustCompile(`^` + regexp.QuoteMeta(want)).MatchString(txt) {
		return fmt.Errorf("the expired screen says %q, want %q", txt, want)
	}
	if _, err := w.ReadQR(ctx); !errors.Is(err, driver.ErrExpired) {
		return fmt.Errorf("reading a QR code on the expired screen: %v, want %v", err, driver.ErrExpired)
	}
	if err := w.ReloadQR(ctx); err != nil {
		return err
	}
	dev, err := env.LinkBrowser(ctx, alice.Phone, w)
	if err != nil {
		return fmt.Errorf("linking after the reload: %w", err)
	}
	return companions(ctx, alice, dev)
}

func browserMessaging(ctx context.Context, env *harness.Env) error {
	alice, bob, err := withHistory(ctx, env)
	if err != nil {
		return err
	}
	if _, err := env.AddWeb(ctx, bob); err != nil { // a native web client too
		return err
	}
	w, _, err := linkedBrowser(ctx, env, alice)
	if err != nil {
		return err
	}
	aliceUser, bobUser := alice.Phone.Self().User, bob.Phone.Self().User
	if err := w.OpenChat(ctx, bobUser); err != nil {
		return err
	}
	// phone -> web: bob's phone writes; alice's phone writes too (a copy of
	// her own message reaches her browser).
	if _, err := bob.Phone.SendText(ctx, aliceUser, "bob's phone to alice"); err != nil {
		return err
	}
	if _, err := shows(ctx, w, "bob's phone to alice", driver.In, ""); err != nil {
		return err
	}
	if _, err := alice.Phone.SendText(ctx, bobUser, "alice's phone to bob"); err != nil {
		return err
	}
	if _, err := shows(ctx, w, "alice's phone to bob", driver.Out, driver.StatusDelivered); err != nil {
		return err
	}
	// web -> phone: the ticks reach delivered, and read once bob reads.
	sent, err := w.Send(ctx, "alice's browser to bob")
	if err != nil {
		return err
	}
	if err := await(ctx, "bob's phone to get the browser's message", func() error {
		if !slices.ContainsFunc(bob.Phone.Messages(aliceUser), func(m device.Message) bool { return m.ID == sent.ID }) {
			return errors.New("not yet")
		}
		return nil
	}); err != nil {
		return err
	}
	if _, err := shows(ctx, w, sent.Text, driver.Out, driver.StatusDelivered); err != nil {
		return err
	}
	if err := bob.Phone.MarkRead(ctx, aliceUser); err != nil {
		return err
	}
	if _, err := shows(ctx, w, sent.Text, driver.Out, driver.StatusRead); err != nil {
		return err
	}
	return cleanWith(ctx, env, w)
}

func browserReload(ctx context.Context, env *harness.Env) error {
	alice, bob, w, dev, err := historyInBrowser(ctx, env)
	if err != nil {
		return err
	}
	before, err := w.Chats(ctx)
	if err != nil {
		return err
	}
	if err := w.Reload(ctx); err != nil {
		return err
	}
	if err := w.WaitScreen(ctx, driver.ScreenLinked); err != nil {
		return fmt.Errorf("after a reload: %w", err)
	}
	if err := lists(ctx, w, "Bob", before[0].Last); err != nil {
		return err
	}
	if err := await(ctx, w.Name()+" to be online again", func() error {
		s, err := w.ConnectionStatus(ctx)
		if err != nil || s != "online" {
			return fmt.Errorf("connection status %q (%v)", s, err)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := companions(ctx, alice, dev); err != nil {
		return err
	}
	// The same device still sends and receives.
	if err := w.OpenChat(ctx, bob.Phone.Self().User); err != nil {
		return err
	}
	if _, err := w.Send(ctx, "after the reload"); err != nil {
		return err
	}
	if _, err := bob.Phone.SendText(ctx, alice.Phone.Self().User, "seen after the reload"); err != nil {
		return err
	}
	if _, err := shows(ctx, w, "seen after the reload", driver.In, ""); err != nil {
		return err
	}
	return cleanWith(ctx, env, w)
}

func browserLogout(ctx context.Context, env *harness.Env) error {
	alice, _, w, dev, err := historyInBrowser(ctx, env)
	if err != nil {
		return err
	}
	if err := companions(ctx, alice, dev); err != nil {
		return err
	}
	if err := w.Logout(ctx); err != nil {
		return err
	}
	if err := w.WaitScreen(ctx, driver.ScreenQR); err != nil {
		return fmt.Errorf("after logging out: %w", err)
	}
	if _, err := w.ReadQR(ctx); err != nil {
		return fmt.Errorf("the fresh QR code after logging out: %w", err)
	}
	if err := companions(ctx, alice); err != nil {
		return err
	}
	return await(ctx, "alice's phone to drop the browser from its device list", func() error {
		if got := alice.Phone.KnownDevices(alice.Phone.Self().User); !slices.Equal(got, []uint32{0}) {
			return fmt.Errorf("it knows %v", got)
		}
		return nil
	})
}

func browserRemovedByPhone(ctx context.Context, env *harness.Env) error {
	alice, _, w, dev, err := historyInBrowser(ctx, env)
	if err != nil {
		return err
	}
	if err := alice.Phone.Unlink(ctx, dev); err != nil {
		return err
	}
	if err := w.WaitScreen(ctx, driver.ScreenQR); err != nil {
		return fmt.Errorf("after the phone removed it: %w", err)
	}
	if chats, err := w.Chats(ctx); err != nil || len(chats) != 0 {
		return fmt.Errorf("after removal %s still lists chats %+v (%v)", w.Name(), chats, err)
	}
	if _, err := w.ReadQR(ctx); err != nil {
		return fmt.Errorf("the fresh QR code after removal: %w", err)
	}
	return companions(ctx, alice)
}

func browserAbout(ctx context.Context, env *harness.Env) error {
	alice, bob, w, _, err := historyInBrowser(ctx, env)
	if err != nil {
		return err
	}
	const about = "Out hiking, back Monday"
	if err := w.SetAbout(ctx, about); err != nil {
		return err
	}
	return await(ctx, "bob to see alice's new about text", func() error {
		p, err := bob.Phone.Profile(ctx, alice.Phone.Self().User)
		if err != nil {
			return err
		}
		if p.About != about || p.PushName != "alice" {
			return fmt.Errorf("bob sees name %q, about %q; want %q, %q", p.PushName, p.About, "alice", about)
		}
		return nil
	})
}

// callWords are what a call control would say somewhere: in its test id,
// text, aria-label or title.
var callWords = regexp.MustCompile(`(?i)\b(call|calls|calling|video|videos|voice)\b|call-|-call|videocall|voicecall`)

func browserNoCalls(ctx context.Context, env *harness.Env) error {
	_, bob, w, _, err := historyInBrowser(ctx, env)
	if err != nil {
		return err
	}
	if err := noCallControls(ctx, w, "chat list"); err != nil {
		return err
	}
	if err := w.OpenChat(ctx, bob.Phone.Self().User); err != nil {
		return err
	}
	if err := noCallControls(ctx, w, "conversation"); err != nil {
		return err
	}
	if _, err := w.About(ctx); err != nil { // opens the profile panel
		return err
	}
	return noCallControls(ctx, w, "profile panel")
}

// noCallControls checks that nothing on w's page offers a call: no control
// a user can operate mentions one anywhere, and nothing at all names one in
// its test id, label or title. Text a user only reads may: the notice that
// a call rings on the phone says so.
func noCallControls(ctx context.Context, w *harness.Web, where string) error {
	controls, err := w.Controls(ctx)
	if err != nil {
		return err
	}
	for _, c := range controls {
		fields := []string{c.TestID, c.Label, c.Title}
		if c.Operable {
			fields = append(fields, c.Text)
		}
		for _, s := range fields {
			if callWords.MatchString(s) {
				return fmt.Errorf("%s, %s: <%s data-testid=%q aria-label=%q title=%q> mentions a call: %q",
					w.Name(), where, c.Tag, c.TestID, c.Label, c.Title, s)
			}
		}
	}
	return nil
}
