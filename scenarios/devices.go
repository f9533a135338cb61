package scenarios

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/webclient/app"
)

var deviceFlows = []Flow{
	{
		Feature: "Linked devices", Outcome: "the phone removes a web client: it is cut off at once, refused afterwards, and shows a fresh QR code",
		Labels: []string{Smoke, Pairing}, Backends: true, Timeout: 30 * time.Second,
		Run: phoneRemovesWeb,
		// bob to alice after the removal: her phone and remaining web client.
		Expect: harness.Expect{Messages: 1, Deliveries: 2, Devices: 2},
	},
	{
		Feature: "Linked devices", Outcome: "a web client logs out, then the phone logs out all the others",
		Labels: []string{Pairing}, Timeout: 30 * time.Second,
		Run: logoutAndRemoveAll,
	},
	{
		Feature: "Profile", Outcome: "an about text changed on a web client is seen by a contact",
		Labels: []string{Smoke, Profile}, Backends: true, AnyTopology: true, Timeout: 30 * time.Second,
		Run: aboutText,
	},
}

// backOnQR waits until client c wiped itself and shows a fresh QR code.
func backOnQR(ctx context.Context, name string, c harness.WebClient) error {
	return await(ctx, name+" to show a fresh QR code", func() error {
		if screen, _, _ := c.Screen(); screen != app.ScreenQR {
			return fmt.Errorf("%s is on the %s screen", name, screen)
		}
		return nil
	})
}

// listsAgree waits until every device of u knows u's device list as want.
func listsAgree(ctx context.Context, u *harness.User, want []uint32) error {
	return await(ctx, fmt.Sprintf("every device of %s to list devices %v", u.Name, want), func() error {
		for _, d := range u.Devices() {
			if got := d.KnownDevices(d.Self().User); !slices.Equal(got, want) {
				return fmt.Errorf("%s lists %v", d.Name(), got)
			}
		}
		return nil
	})
}

func phoneRemovesWeb(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 2, 0)
	if err != nil {
		return err
	}
	removed := alice.Device(0)
	kept := alice.Device(1)
	snapshot, err := harness.CopyState(alice.States[0])
	if err != nil {
		return err
	}
	if err := alice.Phone.Unlink(ctx, removed.Self().Device); err != nil {
		return err
	}
	if err := await(ctx, removed.Name()+" to be logged out", func() error {
		var lo *device.LoggedOutError
		if !errors.As(removed.Err(), &lo) {
			return fmt.Errorf("device error is %v", removed.Err())
		}
		return nil
	}); err != nil {
		return err
	}
	if err := backOnQR(ctx, removed.Name(), alice.Webs[0]); err != nil {
		return err
	}
	if err := listsAgree(ctx, alice, []uint32{0, kept.Self().Device}); err != nil {
		return err
	}
	// The removed device's keys, copied before removal, are refused.
	ghost, err := device.Open(ctx, env.DeviceConfig("alice/ghost", snapshot))
	if err != nil {
		return err
	}
	defer ghost.Close()
	select {
	case <-ghost.Done():
	case <-time.After(within):
		return fmt.Errorf("a device opened with %s's removed keys is still connected", removed.Name())
	}
	var lo *device.LoggedOutError
	if !errors.As(ghost.Err(), &lo) {
		return fmt.Errorf("a device with removed keys stopped with %v, want logged out", ghost.Err())
	}
	// Bob's next message goes to alice's remaining devices only.
	if _, err := bob.Phone.SendText(ctx, alice.Phone.Self().User, "after the removal"); err != nil {
		return err
	}
	return clean(ctx, env)
}

func logoutAndRemoveAll(ctx context.Context, env *harness.Env) error {
	alice, err := env.NewUser(ctx, "alice", 3)
	if err != nil {
		return err
	}
	first := alice.Web(0)
	if err := alice.Webs[0].Logout(ctx); err != nil {
		return err
	}
	if err := backOnQR(ctx, first.Name(), alice.Webs[0]); err != nil {
		return err
	}
	if err := listsAgree(ctx, alice, []uint32{0, alice.Device(1).Self().Device, alice.Device(2).Self().Device}); err != nil {
		return err
	}
	if err := alice.Phone.UnlinkAll(ctx); err != nil {
		return err
	}
	for i := 1; i < 3; i++ {
		if err := backOnQR(ctx, fmt.Sprintf("alice/web-%d", i+1), alice.Webs[i]); err != nil {
			return err
		}
	}
	return listsAgree(ctx, alice, []uint32{0})
}

func aboutText(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 1, 0)
	if err != nil {
		return err
	}
	const about = "Out hiking, back Monday"
	if err := alice.Web(0).SetAbout(ctx, about); err != nil {
		return err
	}
	// A mirror client's phone makes the change, a moment later.
	return await(ctx, "bob to see alice's new about text", func() error {
		p, err := bob.Phone.Profile(ctx, alice.Phone.Self().User)
		if err != nil {
			return err
		}
		if p.About != about || p.PushName != "alice" {
			return fmt.Errorf("bob sees alice's profile as name %q, about %q; want %q, %q", p.PushName, p.About, "alice", about)
		}
		return nil
	})
}
