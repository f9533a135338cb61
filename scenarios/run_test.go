package scenarios_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/reports"
	"github.com/linksim/linksim/scenarios"
	"github.com/linksim/linksim/sim/relay"
)

// A flow that skips after sending (here: it finds it cannot restart a relay
// it does not run) leaves its messages undelivered; the run must not judge
// them lost.
func TestRunDoesNotJudgeASkippedFlow(t *testing.T) {
	srv, err := relay.Serve(relay.Config{DataDir: t.TempDir(), NoSync: true}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	flow := scenarios.Flow{
		Feature: "Skipping", Outcome: "after sending", Timeout: 20 * time.Second,
		Run: func(ctx context.Context, env *harness.Env) error {
			alice, err := env.NewUser(ctx, "alice", 0)
			if err != nil {
				return err
			}
			bob, err := env.NewUser(ctx, "bob", 0)
			if err != nil {
				return err
			}
			bob.Phone.Close()
			if _, err := alice.Phone.SendText(ctx, bob.Phone.Self().User, "never delivered"); err != nil {
				return err
			}
			env.RequireControl("restart the relay")
			return errors.New("RequireControl should have skipped: the relay is not the harness's")
		},
	}
	url := "ws" + strings.TrimPrefix(srv.URL(), "http") + "/ws"
	r := scenarios.Run(t.Context(), []scenarios.Flow{flow}, scenarios.RunConfig{Env: harness.Config{Backend: url}})
	if s := r.Scenarios[0]; s.Status != reports.Skipped {
		t.Fatalf("the flow should be skipped, is %s: %s", s.Status, s.Failure)
	}
	if tot := r.Ledger.Totals; tot.Messages != 0 || tot.Problems() != 0 {
		t.Errorf("the run judged the skipped flow's messages: %+v, problems %v", tot, r.Ledger.Problems)
	}
}

// The line that starts a scenario fits the console's width whatever the
// scenario is called, and still ends in " ...".
func TestProgressLinesFitTheConsole(t *testing.T) {
	flow := scenarios.Flow{
		Feature: "A feature described at great length", Outcome: strings.Repeat("and an outcome that goes on ", 8),
		Timeout: 10 * time.Second,
		Run:     func(context.Context, *harness.Env) error { return nil },
	}
	var progress strings.Builder
	scenarios.Run(t.Context(), []scenarios.Flow{flow}, scenarios.RunConfig{Progress: &progress})
	first, _, _ := strings.Cut(progress.String(), "\n")
	if n := len([]rune(first)); n > reports.ConsoleWidth || !strings.HasPrefix(first, "[1/1] A feature") || !strings.HasSuffix(first, "… ...") {
		t.Errorf("progress line of %d columns %q, want at most %d, the name cut with … and ending in \" ...\"", n, first, reports.ConsoleWidth)
	}
}
