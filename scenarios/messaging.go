package scenarios

import (
	"context"
	"fmt"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/e2e"
)

var messagingFlows = []Flow{
	{
		Feature: "Messaging", Outcome: "reaches every device of both users once, in order, with receipts on every sender device",
		Labels: []string{Smoke, Messaging}, Backends: true, AnyTopology: true, Timeout: 60 * time.Second,
		Run: fanOut,
		// 5 each from alice's two devices and bob's two, each owed to the
		// 4 other devices of the 5.
		Expect: harness.Expect{Messages: 4 * 5, Deliveries: 4 * 5 * 4, Devices: 5},
	},
	{
		Feature: "Messaging", Outcome: "a send against a stale device list is refused, refreshed and reaches the new device",
		Labels: []string{Messaging}, Timeout: 30 * time.Second,
		Run: staleDeviceList,
		// To bob's phone, then to his phone and new web client.
		Expect: harness.Expect{Messages: 2, Deliveries: 1 + 2, Devices: 2},
	},
	{
		Feature: "Messaging", Outcome: "a device that lost its session asks for a retry and still gets the message",
		Labels: []string{Messaging}, Timeout: 30 * time.Second,
		Run:    retryReceipt,
		Expect: harness.Expect{Messages: 2, Deliveries: 2 * 2, Devices: 2},
	},
}

// converse sends n numbered messages from each device in from to peer.
func converse(ctx context.Context, from []harness.Client, peer string, n int) error {
	for i := range n {
		for _, d := range from {
			if _, err := d.SendText(ctx, peer, fmt.Sprintf("%s #%d", d.Name(), i+1)); err != nil {
				return err
			}
		}
	}
	return nil
}

// receiptsReached waits until every device of u shows every message it sent
// to peer as at least delivered.
func receiptsReached(ctx context.Context, u *harness.User, peer string) error {
	return await(ctx, "delivery receipts on every device of "+u.Name, func() error {
		for _, d := range u.Clients() {
			for _, m := range d.Messages(peer) {
				if m.Outgoing && m.Status < device.StatusDelivered {
					return fmt.Errorf("%s shows msg %s %q without a delivered tick", d.Name(), m.ID, m.Text)
				}
			}
		}
		return nil
	})
}

func fanOut(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 2, 1)
	if err != nil {
		return err
	}
	const n = 5
	if err := converse(ctx, []harness.Client{alice.Web(0), alice.Phone.Device}, bob.Phone.Self().User, n); err != nil {
		return err
	}
	if err := converse(ctx, bob.Clients(), alice.Phone.Self().User, n); err != nil {
		return err
	}
	if err := clean(ctx, env); err != nil {
		return err
	}
	if err := receiptsReached(ctx, alice, bob.Phone.Self().User); err != nil {
		return err
	}
	return receiptsReached(ctx, bob, alice.Phone.Self().User)
}

func staleDeviceList(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 0, 0)
	if err != nil {
		return err
	}
	bobUser := bob.Phone.Self().User
	// Alice learns bob's list (phone only) with her first message.
	if _, err := alice.Phone.SendText(ctx, bobUser, "before bob links a web client"); err != nil {
		return err
	}
	web, err := env.AddWeb(ctx, bob)
	if err != nil {
		return err
	}
	if got := alice.Phone.KnownDevices(bobUser); len(got) != 1 {
		return fmt.Errorf("alice's phone should still hold bob's old list, holds %v", got)
	}
	if _, err := alice.Phone.SendText(ctx, bobUser, "after bob linked a web client"); err != nil {
		return err
	}
	if got := alice.Phone.KnownDevices(bobUser); len(got) != 2 {
		return fmt.Errorf("after the send alice's phone holds bob's list %v, want phone and %s", got, web.Name())
	}
	return clean(ctx, env)
}

func retryReceipt(ctx context.Context, env *harness.Env) error {
	// bob/web-1 loses its session with alice's phone, as after a restore
	// from an old backup; alice's phone still has its side.
	_, err := oneRetryRecovers(ctx, env, func(ctx context.Context, web *device.Device, peer e2e.Address) error {
		return web.Signal().DeleteSession(peer)
	})
	return err
}

// oneRetryRecovers sets up alice's phone and bob with one web client,
// damages bob/web-1's session with alice's phone, and checks that alice's
// next message reaches every device once, bob/web-1 through exactly one
// retry. It returns bob/web-1.
func oneRetryRecovers(ctx context.Context, env *harness.Env, damage func(context.Context, *device.Device, e2e.Address) error) (*device.Device, error) {
	alice, bob, err := aliceAndBob(ctx, env, 0, 1)
	if err != nil {
		return nil, err
	}
	bobUser := bob.Phone.Self().User
	if _, err := alice.Phone.SendText(ctx, bobUser, "this one sets up the sessions"); err != nil {
		return nil, err
	}
	if err := clean(ctx, env); err != nil {
		return nil, err
	}
	if err := damage(ctx, bob.Device(0), alice.Phone.Self()); err != nil {
		return nil, err
	}
	if _, err := alice.Phone.SendText(ctx, bobUser, "this one needs a retry on bob/web-1"); err != nil {
		return nil, err
	}
	if err := clean(ctx, env); err != nil {
		return nil, err
	}
	if rec := env.Ledger().Totals.Recovered; rec != 1 {
		return nil, fmt.Errorf("the ledger counts %d deliveries recovered by a retry, want 1", rec)
	}
	return bob.Device(0), nil
}
