package scenarios

import (
	"context"
	"fmt"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/sim/device"
)

// The cluster flows need a relay cluster (the cluster or cluster-process
// backend: relay nodes on three NATS servers, two or more relay nodes); on
// any other relay they are reported as not run. Each puts the phones on
// node 1 and the web clients on node 2 (clusterUsers), whatever the node
// count.
var clusterFlows = []Flow{
	{
		Feature: "Relay cluster", Outcome: "a phone on one node links a web client waiting on another",
		Labels: []string{Cluster, Pairing}, Timeout: 60 * time.Second, Configure: clusterEnv,
		Run: crossNodePairing,
		// 3 rounds from each of alice's two devices, owed to bob's two and
		// her other one.
		Expect: harness.Expect{Messages: 2 * 3, Deliveries: 2 * 3 * 3, Devices: 4},
	},
	{
		Feature: "Relay node loss", Outcome: "devices of a node killed with SIGKILL move to another node and lose nothing",
		Labels: []string{Cluster, ClusterSmoke, Reconnect, Fault}, Timeout: 90 * time.Second, Configure: clusterEnv,
		Run:    nodeLoss,
		Expect: harness.Expect{Messages: 2 * 3 * 3, Deliveries: 2 * 3 * 3 * 3, Devices: 4},
	},
	{
		Feature: "NATS server loss", Outcome: "a NATS server killed with SIGKILL and restarted loses no message",
		Labels: []string{Cluster, Reconnect, Fault}, Timeout: 90 * time.Second, Configure: clusterEnv,
		Run:    natsLoss,
		Expect: harness.Expect{Messages: 2 * 3 * 3, Deliveries: 2 * 3 * 3 * 3, Devices: 4},
	},
	{
		Feature: "Relay node partition", Outcome: "devices of a node cut off the network move to another node and lose nothing",
		Labels: []string{Cluster, Reconnect, Fault}, Timeout: 90 * time.Second, Configure: clusterEnv,
		Run:    nodePartition,
		Expect: harness.Expect{Messages: 2 * 3 * 3, Deliveries: 2 * 3 * 3 * 3, Devices: 4},
	},
	{
		Feature: "Rolling restart", Outcome: "every relay node restarted in turn under traffic loses no message",
		Labels: []string{Cluster, Reconnect, Fault}, Timeout: 120 * time.Second, Configure: clusterEnv,
		Run: rollingRestart,
		// 2 rounds before, 10 during, 2 after.
		Expect: harness.Expect{Messages: 2 * 14, Deliveries: 2 * 14 * 3, Devices: 4},
	},
}

// clusterEnv finds dead links within a second (a killed or partitioned
// node sends no close), as fault flows do.
func clusterEnv(c *harness.Config) {
	c.KeepAlive = 300 * time.Millisecond
}

// clusterUsers registers alice and bob, each a phone on node 1 and a web
// client on node 2.
func clusterUsers(ctx context.Context, env *harness.Env) (cl *harness.RelayCluster, alice, bob *harness.User, err error) {
	cl = env.Cluster()
	for _, u := range []string{"alice", "bob"} {
		if err := cl.Home(u+"/phone", 1); err != nil {
			return nil, nil, nil, err
		}
		if err := cl.Home(u+"/web-1", 2); err != nil {
			return nil, nil, nil, err
		}
	}
	alice, bob, err = aliceAndBob(ctx, env, 1, 1)
	return cl, alice, bob, err
}

// onNodes checks each named device is connected to the node named.
func onNodes(ctx context.Context, cl *harness.RelayCluster, want map[string]string) error {
	return await(ctx, "devices on the nodes expected", func() error {
		for d, node := range want {
			if on := cl.NodeOf(d); on != node {
				return fmt.Errorf("%s is on %q, want %s", d, on, node)
			}
		}
		return nil
	})
}

func crossNodePairing(ctx context.Context, env *harness.Env) error {
	cl, alice, bob, err := clusterUsers(ctx, env)
	if err != nil {
		return err
	}
	// The phones scanned web clients waiting on the other node: the pairing
	// went through the cluster's rendezvous, not one node's memory.
	if err := onNodes(ctx, cl, map[string]string{
		alice.Phone.Device.Name(): "node-1", alice.Web(0).Name(): "node-2",
		bob.Phone.Device.Name(): "node-1", bob.Web(0).Name(): "node-2",
	}); err != nil {
		return err
	}
	if err := converse(ctx, alice.Clients(), bob.Phone.Self().User, 3); err != nil {
		return err
	}
	return clean(ctx, env)
}

// underFault converses 3 rounds before the fault, 3 while it holds, 3
// after it is lifted; when the fault takes a node out (node > 0), it checks
// the phones, whose home that node is, moved to another while it held.
func underFault(ctx context.Context, env *harness.Env, node int, apply func(context.Context, *harness.RelayCluster) (lift func(context.Context) error, err error)) error {
	cl, alice, bob, err := clusterUsers(ctx, env)
	if err != nil {
		return err
	}
	peer := bob.Phone.Self().User
	if err := converse(ctx, alice.Clients(), peer, 3); err != nil {
		return err
	}
	lift, err := apply(ctx, cl)
	if err != nil {
		return err
	}
	defer lift(ctx)
	if err := converse(ctx, alice.Clients(), peer, 3); err != nil {
		return err
	}
	if err := clean(ctx, env); err != nil {
		return err
	}
	if node > 0 {
		if err := awayFrom(ctx, cl, fmt.Sprintf("node-%d", node), alice.Phone.Device, bob.Phone.Device); err != nil {
			return err
		}
	}
	if err := lift(ctx); err != nil {
		return err
	}
	if err := converse(ctx, alice.Clients(), peer, 3); err != nil {
		return err
	}
	return clean(ctx, env)
}

// awayFrom waits until no device of us is on node.
func awayFrom(ctx context.Context, cl *harness.RelayCluster, node string, devices ...*device.Device) error {
	return await(ctx, "devices to leave "+node, func() error {
		for _, d := range devices {
			if on := cl.NodeOf(d.Name()); on == node || on == "" {
				return fmt.Errorf("%s is on %q", d.Name(), on)
			}
		}
		return nil
	})
}

func nodeLoss(ctx context.Context, env *harness.Env) error {
	return underFault(ctx, env, 1, func(ctx context.Context, cl *harness.RelayCluster) (func(context.Context) error, error) {
		return cl.KillNode(ctx, 1)
	})
}

func natsLoss(ctx context.Context, env *harness.Env) error {
	return underFault(ctx, env, 0, func(ctx context.Context, cl *harness.RelayCluster) (func(context.Context) error, error) {
		return cl.KillNATS(ctx, 1)
	})
}

func nodePartition(ctx context.Context, env *harness.Env) error {
	return underFault(ctx, env, 1, func(ctx context.Context, cl *harness.RelayCluster) (func(context.Context) error, error) {
		return cl.Partition(ctx, 1)
	})
}

func rollingRestart(ctx context.Context, env *harness.Env) error {
	cl, alice, bob, err := clusterUsers(ctx, env)
	if err != nil {
		return err
	}
	peer := bob.Phone.Self().User
	if err := converse(ctx, alice.Clients(), peer, 2); err != nil {
		return err
	}
	// Traffic goes on during the restart: a round every 250ms, 10 in all,
	// while nodes go down and come back one after the other.
	restarted := make(chan error, 1)
	go func() { restarted <- cl.RollingRestart(ctx) }()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for range 10 {
		if err := converse(ctx, alice.Clients(), peer, 1); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	if err := <-restarted; err != nil {
		return err
	}
	if err := converse(ctx, alice.Clients(), peer, 2); err != nil {
		return err
	}
	return clean(ctx, env)
}
