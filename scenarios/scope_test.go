package scenarios_test

import (
	"context"
	"testing"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/reports"
	"github.com/linksim/linksim/scenarios"
)

// exchange is a flow that sends n messages from alice to bob, the first
// after delay is put on bob's link (no delay: no fault), and waits for them.
func exchange(name string, labels []string, n int, delay time.Duration) scenarios.Flow {
	f := scenarios.Flow{Feature: "Scopes", Outcome: name, Labels: labels, Timeout: 30 * time.Second,
		Expect: harness.Expect{Messages: n, Deliveries: n, Devices: 1}}
	if delay > 0 {
		f.Configure = func(c *harness.Config) { c.Faults = true }
	}
	f.Run = func(ctx context.Context, env *harness.Env) error {
		alice, err := env.NewUser(ctx, "alice", 0)
		if err != nil {
			return err
		}
		bob, err := env.NewUser(ctx, "bob", 0)
		if err != nil {
			return err
		}
		if delay > 0 {
			link, err := env.Net(bob.Phone.Name())
			if err != nil {
				return err
			}
			lift, err := link.Latency(delay, 0)
			if err != nil {
				return err
			}
			defer lift()
		}
		for range n {
			if _, err := alice.Phone.SendText(ctx, bob.Phone.Self().User, "hello"); err != nil {
				return err
			}
		}
		return harness.Await(ctx, "every message delivered", env.Check)
	}
	return f
}

// Every sample of a run carries its scenario: a fault flow's slow deliveries
// land in its own scope, so a budget with {label:!fault} judges the clean
// flow alone.
func TestRunScopesMetricsByScenario(t *testing.T) {
	clean := exchange("clean", []string{scenarios.Messaging}, 5, 0)
	faulty := exchange("slow link", []string{scenarios.Messaging, scenarios.Fault}, 5, time.Second)
	r := scenarios.Run(t.Context(), []scenarios.Flow{clean, faulty}, scenarios.RunConfig{})
	for _, s := range r.Scenarios {
		if s.Status != reports.Passed {
			t.Fatalf("%s: %s %s", s.Name, s.Status, s.Failure)
		}
	}
	cleanSel := reports.Selector{Without: []string{scenarios.Fault}}
	c := r.Metrics.Select(cleanSel).Summary(reports.StepDeliver)
	f := r.Metrics.Select(reports.Selector{Scenario: faulty.Name()}).Summary(reports.StepDeliver)
	all := r.Metrics.Summary(reports.StepDeliver)
	if c.Count != 5 || f.Count != 5 || all.Count != 10 {
		t.Fatalf("msg.deliver counts: clean %d, fault %d, run %d; want 5, 5, 10", c.Count, f.Count, all.Count)
	}
	if c.Max >= time.Second || f.Min < time.Second {
		t.Errorf("the clean scope (max %s) should hold none of the fault flow's delayed deliveries (min %s)", reports.FormatDuration(c.Max), reports.FormatDuration(f.Min))
	}
	if tot, ok := r.SelectTotals(cleanSel); !ok || tot.Messages != 5 || tot.Delivered != 5 {
		t.Errorf("the clean scenario's ledger: %+v", tot)
	}
}
