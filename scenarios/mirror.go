package scenarios

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/webclient/mirror"
)

// Mirror labels the flows that run the same story on both topologies side
// by side (design.md §8), so a report shows what multi-device changed:
// delivery latency and how long the web client was unusable per fault.
const Mirror = "mirror"

// phoneAway is how long the phone stays offline in these flows: longer
// than the mirror client's ping timeout (1 s in the harness), so the
// banner shows.
const phoneAway = 1500 * time.Millisecond

var mirrorFlows = sideBySide([]Flow{
	{
		Feature: "Phone offline", Outcome: "the web client sends and receives while the phone is away; everything arrives once, in order",
		Labels: []string{Mirror, Fault}, Timeout: 60 * time.Second, Configure: faulty,
		Run: phoneOffline,
		// 3 from alice's web to bob (owed to bob's phone and alice's
		// other device), 3 from bob to alice (her phone and web).
		Expect: harness.Expect{Messages: 6, Deliveries: 12, Devices: 3},
	},
	{
		Feature: "Phone flapping", Outcome: "a phone whose network comes and goes loses nothing the web client sent or was sent",
		Labels: []string{Mirror, Fault}, Timeout: 60 * time.Second, Configure: faulty,
		Run: phoneFlapping,
		// 3 flaps, one message each way in each.
		Expect: harness.Expect{Messages: 6, Deliveries: 12, Devices: 3},
	},
	{
		Feature: "Web client offline", Outcome: "the phone works on; the web client shows everything when it comes back",
		Labels: []string{Mirror, Fault}, Timeout: 60 * time.Second, Configure: faulty,
		Run: webOffline,
		// 5 each way between alice's phone and bob's, each owed to the
		// other phone and alice's web client.
		Expect: harness.Expect{Messages: 10, Deliveries: 20, Devices: 3},
	},
	{
		Feature: "Relay restart", Outcome: "the web client is usable again after the relay restarts, and loses nothing",
		Labels: []string{Mirror, Fault, Reconnect}, Timeout: 60 * time.Second, Configure: faulty,
		Run: mirrorRelayRestart,
		// 3 each way before the restart, 2 after.
		Expect: harness.Expect{Messages: 10, Deliveries: 20, Devices: 3},
	},
	{
		Feature: "Linking and logout", Outcome: "a linked web client shows the phone's chats; after it logs out it is owed nothing",
		Labels: []string{Mirror, Pairing}, Timeout: 30 * time.Second,
		Run: mirrorLinkAndLogout,
		// Bob to alice before linking (her phone), while linked (phone
		// and web), after logout (phone).
		Expect: harness.Expect{Messages: 3, Deliveries: 4, Devices: 2},
	},
})

// sideBySide makes two flows of each: one per topology, named by it.
func sideBySide(flows []Flow) []Flow {
	var out []Flow
	for _, f := range flows {
		out = append(out, OnTopology(f, harness.MultiDevice), OnTopology(f, harness.Mirror))
	}
	return out
}

// OnTopology is f with its web clients linked in topology, named by it.
func OnTopology(f Flow, topology string) Flow {
	g := f
	// The topology follows the feature, so it shows in a report's narrow
	// columns.
	g.Feature = fmt.Sprintf("%s [%s]", f.Feature, topology)
	g.Configure = func(c *harness.Config) {
		if f.Configure != nil {
			f.Configure(c)
		}
		c.Topology = topology
	}
	g.AnyTopology = false // fixed now
	return g
}

// Topologies `linksim run --topology` takes.
var Topologies = []string{harness.MultiDevice, harness.Mirror, "both"}

// WithTopology runs flows in topology: multidevice leaves them as they are;
// mirror runs every flow that runs on any topology (Flow.AnyTopology) with
// mirror web clients and leaves out the multi-device ones, which it
// returns apart; both runs each AnyTopology flow on both, side by side.
// Flows that fix their topology themselves (label mirror) run as they are.
func WithTopology(flows []Flow, topology string) (run, multiDeviceOnly []Flow, err error) {
	switch topology {
	case "", harness.MultiDevice:
		return flows, nil, nil
	case harness.Mirror, "both":
	default:
		return nil, nil, fmt.Errorf("topology %q: want one of %v", topology, Topologies)
	}
	for _, f := range flows {
		switch {
		case f.AnyTopology && topology == "both":
			run = append(run, sideBySide([]Flow{f})...)
		case f.AnyTopology:
			run = append(run, OnTopology(f, harness.Mirror))
		case topology == "both" || f.HasLabel(Mirror):
			run = append(run, f)
		default:
			multiDeviceOnly = append(multiDeviceOnly, f)
		}
	}
	return run, multiDeviceOnly, nil
}

// hold lets a fault last d, or until ctx ends.
func hold(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// phoneGone checks what a web client shows while its phone is away: a
// mirror client the banner and its sends pending, a multi-device client
// neither.
func phoneGone(ctx context.Context, web harness.WebClient, peer string, sent []string) error {
	if web.Topology() != harness.Mirror {
		if b := web.Banner(); b != "" {
			return fmt.Errorf("%s shows %q while its phone is away; a multi-device client does not need its phone", web.Name(), b)
		}
		return nil
	}
	if err := await(ctx, web.Name()+` to show "Phone not connected"`, func() error {
		if b := web.Banner(); !strings.HasPrefix(b, mirror.PhoneNotConnected) {
			return fmt.Errorf("its banner is %q", b)
		}
		if web.Usable() {
			return errors.New("it calls itself usable")
		}
		return nil
	}); err != nil {
		return err
	}
	for _, m := range web.Messages(peer) {
		for _, id := range sent {
			if m.ID == id && m.Status != device.StatusPending {
				return fmt.Errorf("%s shows msg %s as %v while its phone is away; want pending", web.Name(), id, m.Status)
			}
		}
	}
	return nil
}

func phoneOffline(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 1, 0)
	if err != nil {
		return err
	}
	if err := phoneAwayWhile(ctx, env, alice, bob, 3); err != nil {
		return err
	}
	return clean(ctx, env)
}

// phoneAwayWhile takes alice's phone off the network for phoneAway while
// her web client and bob each send n texts, checks what the web client
// shows meanwhile, brings the phone back, waits until the web client is
// usable and records how long it was not.
func phoneAwayWhile(ctx context.Context, env *harness.Env, alice, bob *harness.User, n int) error {
	web, aliceUser, bobUser := alice.Web(0), alice.Phone.Self().User, bob.Phone.Self().User
	path, err := env.Net(alice.Phone.Name())
	if err != nil {
		return err
	}
	unusable := env.WatchUsable(web)
	back := path.Offline()
	err = func() error {
		sent, err := sendEach(ctx, web, bobUser, n)
		if err != nil {
			return err
		}
		if _, err := sendEach(ctx, bob.Phone.Device, aliceUser, n); err != nil {
			return err
		}
		if err := phoneGone(ctx, web, bobUser, sent); err != nil {
			return err
		}
		return hold(ctx, phoneAway)
	}()
	if berr := back(); err == nil {
		err = berr
	}
	if err != nil {
		return err
	}
	if err := harness.WaitUsable(ctx, web); err != nil {
		return err
	}
	unusable()
	return nil
}

// sendEach sends n numbered texts from c to peer and returns their ids.
func sendEach(ctx context.Context, c harness.Client, peer string, n int) ([]string, error) {
	var ids []string
	for i := range n {
		id, err := c.SendText(ctx, peer, fmt.Sprintf("%s #%d", c.Name(), i+1))
		if err != nil {
			return ids, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func phoneFlapping(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 1, 0)
	if err != nil {
		return err
	}
	for range 3 {
		if err := phoneAwayWhile(ctx, env, alice, bob, 1); err != nil {
			return err
		}
	}
	return clean(ctx, env)
}

func webOffline(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 1, 0)
	if err != nil {
		return err
	}
	aliceUser, bobUser := alice.Phone.Self().User, bob.Phone.Self().User
	closed := time.Now()
	alice.Web(0).Close()
	if _, err := sendEach(ctx, alice.Phone.Device, bobUser, 5); err != nil {
		return err
	}
	if _, err := sendEach(ctx, bob.Phone.Device, aliceUser, 5); err != nil {
		return err
	}
	web, err := env.Reopen(ctx, alice, 0)
	if err != nil {
		return err
	}
	if err := harness.WaitUsable(ctx, web); err != nil {
		return err
	}
	env.Recorder().Step(harness.StepWebUnusable, web.Name(), time.Since(closed))
	return clean(ctx, env)
}

func mirrorRelayRestart(ctx context.Context, env *harness.Env) error {
	env.RequireControl("restart the relay")
	alice, bob, err := aliceAndBob(ctx, env, 1, 0)
	if err != nil {
		return err
	}
	web, aliceUser, bobUser := alice.Web(0), alice.Phone.Self().User, bob.Phone.Self().User
	if _, err := sendEach(ctx, web, bobUser, 3); err != nil {
		return err
	}
	if _, err := sendEach(ctx, bob.Phone.Device, aliceUser, 3); err != nil {
		return err
	}
	unusable := env.WatchUsable(web)
	if err := env.RestartRelay(ctx); err != nil {
		return err
	}
	if err := harness.WaitUsable(ctx, web); err != nil {
		return err
	}
	unusable()
	if _, err := sendEach(ctx, web, bobUser, 2); err != nil {
		return err
	}
	if _, err := sendEach(ctx, bob.Phone.Device, aliceUser, 2); err != nil {
		return err
	}
	return clean(ctx, env)
}

func mirrorLinkAndLogout(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 0, 0)
	if err != nil {
		return err
	}
	aliceUser := alice.Phone.Self().User
	bobUser := bob.Phone.Self().User
	if err := alice.Phone.AddContact(ctx, bobUser, "Bob"); err != nil {
		return err
	}
	if err := wrote(ctx, bob, alice, "before alice linked a web client"); err != nil {
		return err
	}
	web, err := env.AddWeb(ctx, alice)
	if err != nil {
		return err
	}
	if err := await(ctx, web.Name()+" to show the chat with Bob", func() error {
		chats := web.Chats()
		if len(chats) != 1 || chats[0].Name != "Bob" || chats[0].Last.Text != "before alice linked a web client" {
			return fmt.Errorf("chats are %+v", chats)
		}
		return nil
	}); err != nil {
		return err
	}
	if _, err := bob.Phone.SendText(ctx, aliceUser, "while alice's web client is linked"); err != nil {
		return err
	}
	if err := clean(ctx, env); err != nil {
		return err
	}
	if err := web.Logout(ctx); err != nil {
		return err
	}
	if err := backOnQR(ctx, web.Name(), web); err != nil {
		return err
	}
	if len(web.Chats()) != 0 {
		return fmt.Errorf("%s still shows chats %+v after logging out", web.Name(), web.Chats())
	}
	if _, err := bob.Phone.SendText(ctx, aliceUser, "after alice's web client logged out"); err != nil {
		return err
	}
	return clean(ctx, env)
}
