package harness

import (
	"context"
	"fmt"
	"sync"
)

// RelayCluster is the relay cluster of an Env on a cluster backend, for the
// faults only a cluster has. Nodes and NATS servers are numbered from 1.
// Every fault is recorded on the run's timeline from the moment it is
// applied until it is lifted (the function each returns), so the ledger's
// verdict can be read against it.
type RelayCluster struct {
	e *Env
	c *cluster
}

// Cluster returns the Env's relay cluster, skipping the scenario on any
// other backend (it needs the cluster or cluster-process backend).
func (e *Env) Cluster() *RelayCluster {
	e.t.Helper()
	c, ok := e.backend.(*cluster)
	if !ok {
		e.t.Skipf("NOT RUN: needs a relay cluster (backend %s or %s), not %s", Cluster, ClusterProcess, e.backend.Kind())
	}
	return &RelayCluster{e: e, c: c}
}

// Nodes is how many relay nodes the cluster has.
func (cl *RelayCluster) Nodes() int { return len(cl.c.nodes) }

// Home makes node n the home of the device named name, which must not
// have been made yet: its connections go to node n while n is up.
// Devices without one get homes in turn, node 1, 2, ..., in the order they
// are made.
func (cl *RelayCluster) Home(name string, n int) error {
	if err := cl.checkNode(n); err != nil {
		return err
	}
	f, err := cl.c.frontHome(name, n-1)
	if err != nil {
		return err
	}
	if home := f.targets[0].name; home != nodeName(n-1) {
		return fmt.Errorf("harness: %s has its home on %s already", name, home)
	}
	return nil
}

// NodeOf names the node ("node-2") the device named name is connected to
// now, or "" when it is not connected.
func (cl *RelayCluster) NodeOf(name string) string { return cl.c.on(name) }

// KillNode kills relay node n with SIGKILL (docker kill for containers)
// and returns once the fronts have taken it out of their rotation; its
// devices reconnect to the other nodes. restart starts it again on the
// same address and ends the fault.
func (cl *RelayCluster) KillNode(ctx context.Context, n int) (restart func(context.Context) error, err error) {
	if err := cl.checkNode(n); err != nil {
		return nil, err
	}
	return cl.fault(fmt.Sprintf("relay node %d killed", n), cl.c.canKillNode(n-1),
		func() error { return cl.c.killNode(ctx, n-1) },
		func(ctx context.Context) error { return cl.c.startNode(ctx, n-1) })
}

// KillNATS kills NATS server n with SIGKILL; JetStream carries on with
// the other two (every stream has three replicas). restart starts it again
// on the same store, where it catches up, and ends the fault.
func (cl *RelayCluster) KillNATS(ctx context.Context, n int) (restart func(context.Context) error, err error) {
	if n < 1 || n > len(cl.c.nats) {
		return nil, fmt.Errorf("harness: no NATS server %d: the cluster has %d", n, len(cl.c.nats))
	}
	return cl.fault(fmt.Sprintf("NATS server %d killed", n), cl.c.canKillNATS(n-1),
		func() error { return cl.c.killNATS(n - 1) },
		func(ctx context.Context) error { return cl.c.startNATS(ctx, n-1) })
}

// Partition cuts relay node n off the network: from the NATS servers and
// from devices alike, bytes are dropped (containers: docker network
// disconnect) or held (processes: the harness's forwarders), never
// refused, so each side finds out by its own timeouts. It returns once the
// fronts have taken the node out of their rotation; its devices reconnect
// to the other nodes. heal reconnects it and ends the fault.
func (cl *RelayCluster) Partition(ctx context.Context, n int) (heal func(context.Context) error, err error) {
	if err := cl.checkNode(n); err != nil {
		return nil, err
	}
	return cl.fault(fmt.Sprintf("relay node %d partitioned", n), cl.c.canPartition(n-1),
		func() error { return cl.c.partition(ctx, n-1) },
		func(ctx context.Context) error { return cl.c.heal(ctx, n-1) })
}

// RollingRestart restarts every relay node gracefully, one at a time, each
// healthy again before the next stops; devices keep working through the
// nodes still up.
func (cl *RelayCluster) RollingRestart(ctx context.Context) error {
	end := cl.e.rec.rec.Fault("rolling restart of the relay nodes")
	defer end()
	return cl.c.Restart(ctx)
}

func (cl *RelayCluster) checkNode(n int) error {
	if n < 1 || n > len(cl.c.nodes) {
		return fmt.Errorf("harness: no relay node %d: the cluster has %d", n, len(cl.c.nodes))
	}
	return nil
}

// fault records the fault name and applies it, unless refused says it
// cannot be applied now: a fault that never happened is never on the
// timeline. One that fails while applied ends there. lift, returned, runs
// at most once and ends the fault whether or not it succeeds: the fault's
// span is over once it is lifted or given up on.
func (cl *RelayCluster) fault(name string, refused error, apply func() error, lift func(context.Context) error) (func(context.Context) error, error) {
	if refused != nil {
		return nil, fmt.Errorf("harness: %s: %w", name, refused)
	}
	end := cl.e.rec.rec.Fault(name)
	if err := apply(); err != nil {
		end()
		return nil, err
	}
	var mu sync.Mutex
	done := false
	return func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if done {
			return nil
		}
		done = true
		defer end()
		return lift(ctx)
	}, nil
}
