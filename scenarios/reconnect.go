package scenarios

import (
	"context"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/sim/device"
)

var reconnectFlows = []Flow{
	{
		Feature: "Offline devices", Outcome: "a web client closed while messages arrive gets all of them, in order, when it comes back",
		Labels: []string{Smoke, Reconnect}, Backends: true, AnyTopology: true, Timeout: 30 * time.Second,
		Run: offlineCatchUp,
		// 20 rounds from alice's two devices, each owed to the 3 others.
		Expect: harness.Expect{Messages: 2 * 20, Deliveries: 2 * 20 * 3, Devices: 4},
		// Alice's phone sends for her web client, and is owed nothing.
		MirrorExpect: &harness.Expect{Messages: 2 * 20, Deliveries: 2 * 20 * 3, Devices: 3},
	},
	{
		Feature: "Relay restart", Backends: true, Outcome: "loses no message the relay acknowledged",
		Labels: []string{Reconnect, Fault}, AnyTopology: true, Timeout: 60 * time.Second,
		Run: relayRestart((*harness.Env).RestartRelay),
		// 10 rounds before and 2 after, from alice's two devices to the 3 others.
		Expect:       harness.Expect{Messages: 2 * 12, Deliveries: 2 * 12 * 3, Devices: 4},
		MirrorExpect: &harness.Expect{Messages: 2 * 12, Deliveries: 2 * 12 * 3, Devices: 3},
	},
	{
		Feature: "Relay crash", Backends: true, Outcome: "a relay killed with SIGKILL loses no message it acknowledged",
		Labels: []string{Reconnect, Fault}, Timeout: 60 * time.Second,
		Run:    relayRestart((*harness.Env).CrashRelay),
		Expect: harness.Expect{Messages: 2 * 12, Deliveries: 2 * 12 * 3, Devices: 4},
	},
	{
		Feature: "Dropped links", Outcome: "devices whose links drop reconnect and lose nothing",
		Labels: []string{Reconnect, Fault}, Timeout: 30 * time.Second,
		Run: droppedLinks,
		// 5 drops, 2 rounds after each, from alice's two devices to the 3 others.
		Expect: harness.Expect{Messages: 5 * 2 * 2, Deliveries: 5 * 2 * 2 * 3, Devices: 4},
	},
}

func offlineCatchUp(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 1, 1)
	if err != nil {
		return err
	}
	bob.Webs[0].Close()
	const rounds = 20
	if err := converse(ctx, alice.Clients(), bob.Phone.Self().User, rounds); err != nil {
		return err
	}
	return catchUp(ctx, env, bob, 0, rounds*len(alice.Devices()))
}

// catchUp reopens u's web client i, waits until every message reached every
// device, and records how long that took against the backlog it had.
func catchUp(ctx context.Context, env *harness.Env, u *harness.User, i, backlog int) error {
	start := time.Now()
	d, err := env.Reopen(ctx, u, i)
	if err != nil {
		return err
	}
	if err := clean(ctx, env); err != nil {
		return err
	}
	env.Recorder().Step(harness.CatchUpStep(backlog), d.Name(), time.Since(start))
	return nil
}

// relayRestart stops the relay with stop while messages wait in its queues.
func relayRestart(stop func(*harness.Env, context.Context) error) func(context.Context, *harness.Env) error {
	return func(ctx context.Context, env *harness.Env) error {
		return restartWithBacklog(ctx, env, stop)
	}
}

func restartWithBacklog(ctx context.Context, env *harness.Env, stop func(*harness.Env, context.Context) error) error {
	env.RequireControl("restart or crash the relay")
	alice, bob, err := aliceAndBob(ctx, env, 1, 1)
	if err != nil {
		return err
	}
	// Bob's web client is away, so what alice sends waits in the relay's
	// queue across the restart.
	bob.Webs[0].Close()
	const rounds = 10
	if err := converse(ctx, alice.Clients(), bob.Phone.Self().User, rounds); err != nil {
		return err
	}
	if err := stop(env, ctx); err != nil {
		return err
	}
	if err := catchUp(ctx, env, bob, 0, rounds*len(alice.Devices())); err != nil {
		return err
	}
	if err := converse(ctx, alice.Clients(), bob.Phone.Self().User, 2); err != nil {
		return err
	}
	return clean(ctx, env)
}

func droppedLinks(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 1, 1)
	if err != nil {
		return err
	}
	for i := range 5 {
		for _, d := range []*device.Device{bob.Device(0), alice.Phone.Device} {
			if i%2 == 0 {
				d.Disconnect()
			}
		}
		if err := converse(ctx, alice.Clients(), bob.Phone.Self().User, 2); err != nil {
			return err
		}
	}
	return clean(ctx, env)
}
