package scenarios

import (
	"context"
	"fmt"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/wire/pb"
)

// faulty is the environment of fault scenarios: every device behind its own
// fault proxy, keepalives fast enough to find a dead link in a second.
func faulty(c *harness.Config) {
	c.Faults = true
	c.KeepAlive = 300 * time.Millisecond
}

// faultyPairing also shortens the relay's pairing timers, so a scan whose
// companion is cut off times out fast and the next ref comes soon.
func faultyPairing(c *harness.Config) {
	faulty(c)
	c.Relay.PairTimeout = time.Second
	c.Relay.RefFirstTTL = 3 * time.Second
	c.Relay.RefNextTTL = 3 * time.Second
}

var faultFlows = []Flow{
	{
		Feature: "Network faults", Outcome: "messages stay intact and in order through latency, jitter and sliced frames",
		Labels: []string{Reconnect, Fault}, Timeout: 60 * time.Second, Configure: faulty,
		Run:    slowNetwork,
		Expect: harness.Expect{Messages: 2 * 5, Deliveries: 2 * 5 * 3, Devices: 4},
	},
	{
		Feature: "Network faults", Outcome: "a web client whose link is reset mid-conversation loses nothing",
		Labels: []string{Reconnect, Fault}, Timeout: 60 * time.Second, Configure: faulty,
		Run: linkReset,
		// 4 resets, 3 rounds after each, from alice's two devices to the 3 others.
		Expect: harness.Expect{Messages: 4 * 3 * 2, Deliveries: 4 * 3 * 2 * 3, Devices: 4},
	},
	{
		Feature: "Network faults", Outcome: "a half-open link is found by keepalive and the backlog arrives once it heals",
		Labels: []string{Reconnect, Fault}, Timeout: 60 * time.Second, Configure: faulty,
		Run:    halfOpenLink,
		Expect: harness.Expect{Messages: 5, Deliveries: 5 * 2, Devices: 2},
	},
	{
		Feature: "Network faults", Outcome: "a companion cut off right after the phone scans links nothing, and the next QR code links",
		Labels: []string{Reconnect, Pairing, Fault}, Timeout: 60 * time.Second, Configure: faultyPairing,
		Run: cutMidPairing,
	},
}

func slowNetwork(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 1, 1)
	if err != nil {
		return err
	}
	const latency, jitter = 80 * time.Millisecond, 20 * time.Millisecond
	slow, err := withFault(env, bob.Web(0).Name(), func(l *harness.NetLink) (func(), error) { return l.Latency(latency, jitter) })
	if err != nil {
		return err
	}
	defer slow()
	sliced, err := withFault(env, alice.Web(0).Name(), func(l *harness.NetLink) (func(), error) { return l.Slice(64, 32, 100*time.Microsecond) })
	if err != nil {
		return err
	}
	defer sliced()
	if err := converse(ctx, alice.Clients(), bob.Phone.Self().User, 5); err != nil {
		return err
	}
	if err := clean(ctx, env); err != nil {
		return err
	}
	// The faults must have been real: bob/web-1 waited on its slow path.
	ledger := env.Ledger()
	for _, d := range alice.Devices() {
		for _, m := range d.Messages(bob.Phone.Self().User) {
			st, _ := ledger.Message(m.ID)
			if got := st.Latency[bob.Web(0).Name()]; got < latency-jitter {
				return fmt.Errorf("msg %s reached %s %s after it was sent, faster than the %s±%s latency on its path", m.ID, bob.Web(0).Name(), got, latency, jitter)
			}
		}
	}
	return nil
}

func linkReset(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 1, 1)
	if err != nil {
		return err
	}
	path, err := env.Net(bob.Web(0).Name())
	if err != nil {
		return err
	}
	for range 4 {
		if err := path.Reset(); err != nil {
			return err
		}
		if err := converse(ctx, alice.Clients(), bob.Phone.Self().User, 3); err != nil {
			return err
		}
	}
	return clean(ctx, env)
}

func halfOpenLink(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 0, 1)
	if err != nil {
		return err
	}
	web := bob.Web(0)
	lift, err := withFault(env, web.Name(), (*harness.NetLink).Blackhole)
	if err != nil {
		return err
	}
	if err := await(ctx, web.Name()+" to notice its link is dead", func() error {
		if web.Usable() {
			return fmt.Errorf("%s still thinks it is online", web.Name())
		}
		return nil
	}); err != nil {
		lift()
		return err
	}
	if err := converse(ctx, alice.Clients(), bob.Phone.Self().User, 5); err != nil {
		lift()
		return err
	}
	lift()
	return clean(ctx, env)
}

func cutMidPairing(ctx context.Context, env *harness.Env) error {
	alice, web, first, err := showingQR(ctx, env, 0)
	if err != nil {
		return err
	}
	lift, err := withFault(env, "alice/web-1", (*harness.NetLink).Blackhole)
	if err != nil {
		return err
	}
	_, err = alice.Phone.Scan(ctx, first.QR)
	lift()
	if got := device.Code(err); got != pb.ErrorCode_PAIR_TIMEOUT {
		return fmt.Errorf("scanning a companion whose link is down: got %v (code %s), want PAIR_TIMEOUT", err, got)
	}
	if err := expectCompanions(ctx, &harness.User{Name: "alice", Phone: alice.Phone}, 0); err != nil {
		return err
	}
	next, err := harness.NextQR(ctx, web, first)
	if err != nil {
		return err
	}
	start := time.Now()
	if _, err := alice.Phone.Scan(ctx, next.QR); err != nil {
		return fmt.Errorf("scanning the next QR code after the link healed: %w", err)
	}
	d, err := web.WaitLinked(ctx)
	if err != nil {
		return err
	}
	env.Recorder().Step(harness.StepLinked, d.Name(), time.Since(start))
	return expectCompanions(ctx, &harness.User{Name: "alice", Phone: alice.Phone}, 1)
}
