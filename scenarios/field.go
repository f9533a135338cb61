package scenarios

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire"
	"github.com/linksim/linksim/webclient/app"
)

var fieldFlows = []Flow{
	{
		Feature: "Signed device lists", Outcome: "a ghost device the relay adds to an account is refused by every sender",
		Labels: []string{Field, Security}, Timeout: 30 * time.Second, Run: ghostDevice,
		// Only the message sent before the ghost: nothing is sent after.
		Expect: harness.Expect{Messages: 1, Deliveries: 3, Devices: 3},
	},
	{
		Feature: "Reconnect after pairing", Outcome: "a companion the relay asks to reconnect right after linking comes back at once and works",
		Labels: []string{Field, Pairing}, Timeout: 30 * time.Second, Run: restartAfterPairing,
		Expect:    harness.Expect{Messages: 3 + 3, Deliveries: 3*2 + 3*2, Devices: 3},
		Configure: func(c *harness.Config) { c.Relay.Field.RestartAfterPairing = true },
	},
	{
		Feature: "Outdated clients", Outcome: "a client older than the relay accepts is refused with what to do, and stops",
		Labels: []string{Field}, Timeout: 20 * time.Second, Run: outdatedClient,
		Configure: func(c *harness.Config) { c.Relay.Field.MinClientVersion = device.ClientVersion + 1 },
	},
	{
		Feature: "Relay-initiated logout", Outcome: "a companion the relay logs out wipes itself, says why and shows a fresh QR code",
		Labels: []string{Field, Profile}, Timeout: 30 * time.Second, Run: relayLogout,
	},
	{
		Feature: "Replaced connections", Outcome: "a web client opened twice stops the older copy, which shows why, instead of a reconnect loop",
		Labels: []string{Field, Reconnect}, Timeout: 30 * time.Second, Run: replacedIsFinal,
		Expect: harness.Expect{Messages: 1, Deliveries: 2, Devices: 2},
	},
	{
		Feature: "Retry receipts", Outcome: "a corrupted session (bad MAC) recovers through a placeholder and one retry",
		Labels: []string{Field, Messaging}, Timeout: 30 * time.Second, Run: corruptedSession,
		Expect: harness.Expect{Messages: 2, Deliveries: 2 * 2, Devices: 2},
	},
}

func ghostDevice(ctx context.Context, env *harness.Env) error {
	r := env.InProcessRelay()
	if r == nil {
		return errors.New("no in-process relay")
	}
	alice, bob, err := aliceAndBob(ctx, env, 1, 1)
	if err != nil {
		return err
	}
	bobUser, aliceUser := bob.Phone.Self().User, alice.Phone.Self().User
	if _, err := alice.Phone.SendText(ctx, bobUser, "before the relay turns"); err != nil {
		return err
	}
	if err := clean(ctx, env); err != nil {
		return err
	}
	nk, err := wire.GenerateKey()
	if err != nil {
		return err
	}
	ghostKeys, err := e2e.Open(kv.NewMem())
	if err != nil {
		return err
	}
	keys, err := ghostKeys.Keys(5)
	if err != nil {
		return err
	}
	ghost, err := r.AddGhost(bobUser, nk.Public, keys, nil)
	if err != nil {
		return err
	}
	ghostAddr := e2e.Address{User: bobUser, Device: ghost}
	// Everyone who would encrypt for the ghost: alice's devices writing to
	// bob, and bob's own devices (their copies go to every device of bob).
	senders := append(alice.Devices(), bob.Devices()...)
	for _, d := range senders {
		to := bobUser
		if d.Self().User == bobUser {
			to = aliceUser
		}
		// Every sender knows bob's list with the ghost, as it would after
		// one stale send: so no send gets as far as the relay.
		if _, err := d.Devices(ctx, bobUser); err != nil {
			return err
		}
		_, err := d.SendText(ctx, to, "not for the ghost")
		if !errors.Is(err, device.ErrUntrustedDevice) {
			return fmt.Errorf("%s sent to %s with ghost %s in bob's account: %v, want it refused as untrusted", d.Name(), to, ghostAddr, err)
		}
	}
	return nil
}

func restartAfterPairing(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 0, 1)
	if err != nil {
		return err
	}
	if err := harness.WaitUsable(ctx, bob.Web(0)); err != nil {
		return err
	}
	if err := converse(ctx, alice.Clients(), bob.Phone.Self().User, 3); err != nil {
		return err
	}
	if err := converse(ctx, []harness.Client{bob.Web(0)}, alice.Phone.Self().User, 3); err != nil {
		return err
	}
	return clean(ctx, env)
}

func outdatedClient(ctx context.Context, env *harness.Env) error {
	_, err := env.NewUser(ctx, "alice", 0)
	if !errors.Is(err, device.ErrOutdated) {
		return fmt.Errorf("registering with a client the relay calls outdated: %v, want ErrOutdated", err)
	}
	want := fmt.Sprintf("update to version %d", device.ClientVersion+1)
	if msg := err.Error(); !strings.Contains(msg, want) {
		return fmt.Errorf("the refusal %q does not say %q", msg, want)
	}
	return nil
}

func relayLogout(ctx context.Context, env *harness.Env) error {
	r := env.InProcessRelay()
	if r == nil {
		return errors.New("no in-process relay")
	}
	_, bob, err := aliceAndBob(ctx, env, 0, 1)
	if err != nil {
		return err
	}
	web := bob.Device(0)
	if err := r.Logout(store.Address{User: web.Self().User, Device: web.Self().Device}, "session expired"); err != nil {
		return err
	}
	if err := await(ctx, web.Name()+" to show a fresh QR code", func() error {
		if s, _, _ := bob.Webs[0].Screen(); s != app.ScreenQR {
			return fmt.Errorf("on the %s screen", s)
		}
		return nil
	}); err != nil {
		return err
	}
	var lo *device.LoggedOutError
	if !errors.As(web.Err(), &lo) || lo.Reason != "session expired" {
		return fmt.Errorf("%s stopped with %v, want logged out because \"session expired\"", web.Name(), web.Err())
	}
	return nil
}

func replacedIsFinal(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 0, 1)
	if err != nil {
		return err
	}
	first, name := bob.Webs[0], bob.Web(0).Name()
	// The same device (so the same name in the ledger) opened in a second
	// tab.
	second, err := env.NewCompanion(name, bob.States[0])
	if err != nil {
		return err
	}
	if err := await(ctx, name+" to show it was replaced", func() error {
		if s, _, why := first.Screen(); s != app.ScreenReplaced || !errors.Is(why, device.ErrReplaced) {
			return fmt.Errorf("on the %s screen (%v)", s, why)
		}
		return nil
	}); err != nil {
		return err
	}
	d, err := second.WaitLinked(ctx)
	if err != nil {
		return err
	}
	if _, err := alice.Phone.SendText(ctx, bob.Phone.Self().User, "to the tab in use"); err != nil {
		return err
	}
	if err := await(ctx, "the second tab to receive the message", func() error {
		if len(d.Messages(alice.Phone.Self().User)) == 0 {
			return errors.New("nothing yet")
		}
		return nil
	}); err != nil {
		return err
	}
	if s, _, _ := first.Screen(); s != app.ScreenReplaced {
		return fmt.Errorf("the replaced tab moved on to the %s screen: it took the device back", s)
	}
	return clean(ctx, env)
}

func corruptedSession(ctx context.Context, env *harness.Env) error {
	web, err := oneRetryRecovers(ctx, env, func(ctx context.Context, web *device.Device, peer e2e.Address) error {
		return web.Signal().CorruptSession(ctx, peer)
	})
	if err != nil {
		return err
	}
	for _, c := range web.Chats() {
		for _, m := range web.Messages(c.Peer) {
			if m.Placeholder {
				return fmt.Errorf("%s still shows the placeholder of %s", web.Name(), m.ID)
			}
		}
	}
	return nil
}
