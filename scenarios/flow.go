// Package scenarios holds linksim's flows, each written once: the Ginkgo
// suites in this package run them against a fresh harness.Env per spec, and
// `linksim run` runs the same functions and scores them.
package scenarios

import (
	"context"
	"slices"
	"time"

	"github.com/linksim/linksim/harness"
)

// Labels, in one place so suites and the CLI agree on them.
const (
	Smoke     = "smoke"
	Pairing   = "pairing"
	Messaging = "messaging"
	Reconnect = "reconnect"
	Security  = "security"
	Profile   = "profile"
	Media     = "media"   // images, videos, documents and large history through the media store
	Sync      = "sync"    // state in step across a user's devices: read, contacts, profile, chat flags
	Calls     = "calls"   // call signalling: calls ring phones; web clients only show a notice
	Browser   = "browser" // runs the web app in headless Chromium
	// Fault marks flows that break things on purpose (network faults, relay
	// restarts and crashes, tampered blobs): their latencies are not the
	// system's normal ones, so budgets can leave them out with
	// 'msg.deliver{label:!fault} p99<...'.
	Fault = "fault"
	Field = "field" // failures real clients meet in the field: relay restarts, refusals, ghosts, corrupted sessions
	// Process and Container label the suites' runs of a flow against the
	// relay as a child process and in a container.
	Process   = "process"
	Container = "container"
)

// Flow is one scenario.
type Flow struct {
	// Feature is what is tested ("Linking a web client"); Outcome the
	// observable result ("links by scanning the QR code").
	Feature, Outcome string
	Labels           []string
	// Timeout bounds the whole flow.
	Timeout time.Duration
	// Configure adjusts the environment before it starts (short pairing
	// timers, say); nil keeps the defaults.
	Configure func(*harness.Config)
	Run       func(ctx context.Context, env *harness.Env) error
	// Expect is what Run leaves in the ledger, as written; Execute checks
	// it, so a flow whose events go missing cannot pass. Zero: no message.
	Expect harness.Expect
	// Backends says the suites also run this flow against the relay as a
	// process and in a container, not only in process.
	Backends bool
}

// Execute runs the flow on env, then checks its ledger against Expect.
func (f Flow) Execute(ctx context.Context, env *harness.Env) error {
	if err := f.Run(ctx, env); err != nil {
		return err
	}
	return env.CheckExpected(f.Expect)
}

// Name is "Feature: outcome".
func (f Flow) Name() string { return f.Feature + ": " + f.Outcome }

// HasLabel reports whether the flow carries label.
func (f Flow) HasLabel(label string) bool { return slices.Contains(f.Labels, label) }

// All lists every flow, in the order suites run them.
func All() []Flow {
	return slices.Concat(pairingFlows, messagingFlows, reconnectFlows, faultFlows, deviceFlows, securityFlows, fieldFlows, mediaFlows, browserFlows, syncFlows, callFlows, browserSyncFlows)
}

// within is the usual wait for something that should happen promptly.
const within = 10 * time.Second

// await waits up to within for cond.
func await(ctx context.Context, what string, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	return harness.Await(ctx, what, cond)
}

// clean waits until the ledger has nothing missing and nothing wrong.
func clean(ctx context.Context, env *harness.Env) error {
	return await(ctx, "every message to reach every device exactly once, in order", env.Check)
}

// withFault applies a fault to the network path of the device named name
// and returns the function lifting it.
func withFault(env *harness.Env, name string, apply func(*harness.NetLink) (lift func(), err error)) (func(), error) {
	l, err := env.Net(name)
	if err != nil {
		return nil, err
	}
	return apply(l)
}

// aliceAndBob registers the two users most flows need, each a phone with
// the given number of linked native web clients.
func aliceAndBob(ctx context.Context, env *harness.Env, aliceWebs, bobWebs int) (alice, bob *harness.User, err error) {
	if alice, err = env.NewUser(ctx, "alice", aliceWebs); err != nil {
		return nil, nil, err
	}
	if bob, err = env.NewUser(ctx, "bob", bobWebs); err != nil {
		return nil, nil, err
	}
	return alice, bob, nil
}
