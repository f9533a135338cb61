package harness_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
)

// mirrorPair starts alice with a mirror web client and bob with a phone.
func mirrorPair(t *testing.T, cfg harness.Config) (context.Context, *harness.Env, *harness.User, *harness.User) {
	t.Helper()
	cfg.Topology = harness.Mirror
	env := harness.Start(t, cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	alice, err := env.NewUser(ctx, "alice", 1)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := env.NewUser(ctx, "bob", 0)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, env, alice, bob
}

func TestMirrorWebSendsAndShowsThroughItsPhone(t *testing.T) {
	ctx, env, alice, bob := mirrorPair(t, harness.Config{})
	web, bobUser, aliceUser := alice.Web(0), bob.Phone.Self().User, alice.Phone.Self().User
	out, err := web.SendText(ctx, bobUser, "from the mirror web")
	if err != nil {
		t.Fatal(err)
	}
	in, err := bob.Phone.SendText(ctx, aliceUser, "to alice, shown on her web")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := harness.WaitShown(ctx, bob.Phone.Device, aliceUser, out); err != nil {
		t.Fatal(err)
	}
	if _, err := harness.WaitShown(ctx, web, bobUser, in); err != nil {
		t.Fatal(err)
	}
	if err := harness.Await(ctx, "a clean ledger", env.Check); err != nil {
		t.Fatal(err)
	}
	l := env.Ledger()
	for _, id := range []string{out, in} {
		st, _ := l.Message(id)
		if !strings.Contains(strings.Join(st.Received, ","), "alice/web-1") {
			t.Errorf("msg %s reached %v, not alice/web-1", id, st.Received)
		}
	}
	if got := alice.Phone.KnownDevices(aliceUser); len(got) != 1 {
		t.Errorf("alice's device list is %v: a mirror web client must be on none", got)
	}
}

// A phone that drops what its mirror web client asks it to send must fail
// the ledger, even though no message was ever recorded sent.
func TestPhoneThatDropsAMirrorRequestFailsTheLedger(t *testing.T) {
	dropSends := func(c *device.Config) {
		if strings.HasSuffix(c.Name, "/phone") {
			c.Content = func(_ e2e.Address, _ string, ct *pb.Content) (bool, error) {
				return ct.GetMirror().GetSend() != nil, nil
			}
		}
	}
	ctx, env, alice, bob := mirrorPair(t, harness.Config{Device: dropSends})
	id, err := alice.Web(0).SendText(ctx, bob.Phone.Self().User, "dropped by the phone")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err = harness.Await(short, "a clean ledger", env.Check)
	if err == nil || !strings.Contains(err.Error(), "alice/web-1 asked its phone to send msg "+id) {
		t.Fatalf("the ledger's verdict is %v; want the dropped request named", err)
	}
}
