package harness_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/reports"
)

// pair.chats_shown runs from the phone's scan to the companion listing the
// history's chats, so it can never be shorter than the history's trip over
// a slow link.
func TestChatsShownSpansTheHistorysTrip(t *testing.T) {
	env := harness.Start(t, harness.Config{Faults: true})
	ctx, alice := aliceWroteToBob(t, env, "a chat for the history")
	const latency = 100 * time.Millisecond
	path, err := env.Net("alice/web-1")
	if err != nil {
		t.Fatal(err)
	}
	lift, err := path.Latency(latency, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lift()
	if _, err := env.AddWeb(ctx, alice); err != nil {
		t.Fatal(err)
	}
	var shown time.Duration
	err = harness.Await(ctx, "a pair.chats_shown sample", func() error {
		for _, e := range env.Recorder().Events() {
			if e.Kind == reports.KindStep && e.Name == harness.StepChatsShown && e.Device == "alice/web-1" {
				shown = e.Value
				return nil
			}
		}
		return errors.New("none recorded")
	})
	if err != nil {
		t.Fatal(err)
	}
	if shown < latency {
		t.Errorf("pair.chats_shown = %s, but the history alone takes %s to reach alice/web-1", shown, latency)
	}
}

// aliceWroteToBob registers alice and bob, each with a phone alone, and has
// alice send bob text; it returns a context for the rest of the test.
func aliceWroteToBob(t *testing.T, env *harness.Env, text string) (context.Context, *harness.User) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	alice, err := env.NewUser(ctx, "alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := env.NewUser(ctx, "bob", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Phone.SendText(ctx, bob.Phone.Self().User, text); err != nil {
		t.Fatal(err)
	}
	return ctx, alice
}
