package harness_test

import (
	"context"
	"testing"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/phone"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/webclient/app"
)

// teamWeb is a team's own web client, as docs/scenarios.md tells it to
// plug in: here the reference core, driven only through harness.WebClient.
type teamWeb struct {
	*app.Client
	name  string
	sends int
}

func (w *teamWeb) Name() string     { return w.name }
func (w *teamWeb) Topology() string { return "team" }
func (w *teamWeb) Banner() string   { return "" }
func (w *teamWeb) Usable() bool     { return w.Device() != nil && w.Device().Online() }
func (w *teamWeb) Messages(peer string) []device.Message {
	return w.Device().Messages(peer)
}
func (w *teamWeb) Chats() []device.Chat { return w.Device().Chats() }
func (w *teamWeb) SetAbout(ctx context.Context, about string) error {
	return w.Device().SetAbout(ctx, about)
}
func (w *teamWeb) SendText(ctx context.Context, to, text string) (string, error) {
	w.sends++
	return w.Device().SendText(ctx, to, text)
}

func openTeamWeb(ctx context.Context, e *harness.Env, name string, st kv.KV, p *phone.Phone) (harness.WebClient, error) {
	c, err := e.OpenCompanion(ctx, name, st, p)
	if err != nil {
		return nil, err
	}
	return &teamWeb{Client: c, name: name}, nil
}

// A team's own client plugged in through Config.WebClient is what flows
// get, and its messages are judged like any device's.
func TestATeamsOwnWebClientPlugsIn(t *testing.T) {
	env := harness.Start(t, harness.Config{WebClient: openTeamWeb})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	alice, err := env.NewUser(ctx, "alice", 1)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := env.NewUser(ctx, "bob", 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range append(alice.Clients(), bob.Clients()...) {
		to := bob.Phone.Self().User
		if c.Name() == "bob/phone" || c.Name() == "bob/web-1" {
			to = alice.Phone.Self().User
		}
		if _, err := c.SendText(ctx, to, "from "+c.Name()); err != nil {
			t.Fatal(err)
		}
	}
	if err := harness.Await(ctx, "a clean ledger", env.Check); err != nil {
		t.Fatal(err)
	}
	if w, ok := alice.Web(0).(*teamWeb); !ok || w.sends != 1 {
		t.Errorf("alice's web client is %T, sent %v times; want the team's, once", alice.Web(0), w)
	}
	if got := env.Ledger().Totals; got.Messages != 4 || got.Delivered != 4*3 {
		t.Errorf("ledger: %d messages, %d deliveries; want 4 owed to 3 devices each", got.Messages, got.Delivered)
	}
}
