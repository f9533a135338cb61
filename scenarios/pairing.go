package scenarios

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/wire/pb"
	"github.com/linksim/linksim/webclient/app"
)

var pairingFlows = []Flow{
	{
		Feature: "Linking a web client", Outcome: "links by scanning the QR code and shows the history at once",
		Labels: []string{Smoke, Pairing}, Backends: true, Timeout: 30 * time.Second,
		Run: linkWithHistory,
		// bob to alice, before she links a web client.
		Expect: harness.Expect{Messages: 1, Deliveries: 1, Devices: 1},
	},
	{
		Feature: "Linking a web client", Outcome: "refuses a fifth companion",
		Labels: []string{Pairing}, Timeout: 60 * time.Second,
		Run: fifthCompanionRefused,
	},
	{
		Feature: "Linking a web client", Outcome: "refuses forged, tampered, expired and replayed QR codes, each with its own error",
		Labels: []string{Pairing, Security}, Timeout: 60 * time.Second,
		Configure: func(c *harness.Config) {
			c.Relay.RefFirstTTL = 1500 * time.Millisecond
			c.Relay.RefNextTTL = 1500 * time.Millisecond
		},
		Run: badQRCodes,
	},
}

func linkWithHistory(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 0, 0)
	if err != nil {
		return err
	}
	if err := alice.Phone.AddContact(ctx, bob.Phone.Self().User, "Bob"); err != nil {
		return err
	}
	if _, err := bob.Phone.SendText(ctx, alice.Phone.Self().User, "hi alice, before you had a web client"); err != nil {
		return err
	}
	if err := await(ctx, "alice's phone to get bob's message", func() error {
		if len(alice.Phone.Messages(bob.Phone.Self().User)) == 0 {
			return fmt.Errorf("no chat with bob yet")
		}
		return nil
	}); err != nil {
		return err
	}
	web, err := env.AddWeb(ctx, alice)
	if err != nil {
		return err
	}
	if err := await(ctx, "alice/web-1 to show the chat with Bob from history sync", func() error {
		chats := web.Chats()
		if len(chats) != 1 || chats[0].Name != "Bob" || chats[0].Last.Text != "hi alice, before you had a web client" {
			return fmt.Errorf("chats are %+v", chats)
		}
		return nil
	}); err != nil {
		return err
	}
	linked, err := alice.Phone.LinkedDevices(ctx)
	if err != nil {
		return err
	}
	if !slices.Equal(linked, []uint32{web.Self().Device}) {
		return fmt.Errorf("alice's phone lists companions %v, want [%d]", linked, web.Self().Device)
	}
	return clean(ctx, env)
}

func fifthCompanionRefused(ctx context.Context, env *harness.Env) error {
	alice, _, ref, err := showingQR(ctx, env, 4)
	if err != nil {
		return err
	}
	_, err = alice.Phone.Scan(ctx, ref.QR)
	if got := device.Code(err); got != pb.ErrorCode_TOO_MANY_DEVICES {
		return fmt.Errorf("scanning a fifth companion: got %v (code %s), want TOO_MANY_DEVICES", err, got)
	}
	return expectCompanions(ctx, alice, 4)
}

func expectCompanions(ctx context.Context, u *harness.User, n int) error {
	linked, err := u.Phone.LinkedDevices(ctx)
	if err != nil {
		return err
	}
	if len(linked) != n {
		return fmt.Errorf("%s has companions %v, want %d of them", u.Name, linked, n)
	}
	return nil
}

func badQRCodes(ctx context.Context, env *harness.Env) error {
	alice, web, first, err := showingQR(ctx, env, 0)
	if err != nil {
		return err
	}
	linked := 0
	expect := func(what string, want pb.ErrorCode, scan func(qr string) error, qr string) error {
		if got := device.Code(scan(qr)); got != want {
			return fmt.Errorf("%s: relay answered %s, want %s", what, got, want)
		}
		return expectCompanions(ctx, alice, linked)
	}
	scan := func(qr string) error { _, err := alice.Phone.Scan(ctx, qr); return err }
	forged := func(qr string) error { return harness.ForgedScan(ctx, alice.Phone, qr) }
	for _, c := range []struct {
		what, field string
		want        pb.ErrorCode
	}{
		{"a ref the relay never issued", harness.TamperRef, pb.ErrorCode_REF_UNKNOWN},
		{"another companion's Noise key", harness.TamperNoiseKey, pb.ErrorCode_KEY_MISMATCH},
	} {
		qr, err := harness.TamperQR(first.QR, c.field)
		if err != nil {
			return err
		}
		if err := expect(c.what, c.want, scan, qr); err != nil {
			return err
		}
	}
	if err := expect("an account signature by another key", pb.ErrorCode_BAD_SIGNATURE, forged, first.QR); err != nil {
		return err
	}
	// None of the above used the first ref up; once rotated out it is expired.
	second, err := harness.NextQR(ctx, web, first)
	if err != nil {
		return err
	}
	if err := expect("the first, rotated-out ref", pb.ErrorCode_REF_EXPIRED, scan, first.QR); err != nil {
		return err
	}
	// A scan the companion refuses uses its ref up; the next ref works.
	tampered, err := harness.TamperQR(second.QR, harness.TamperAdv)
	if err != nil {
		return err
	}
	if err := expect("a tampered adv secret", pb.ErrorCode_HMAC_MISMATCH, scan, tampered); err != nil {
		return err
	}
	third, err := harness.NextQR(ctx, web, second)
	if err != nil {
		return err
	}
	if _, err := alice.Phone.Scan(ctx, third.QR); err != nil {
		return fmt.Errorf("scanning the current ref: %w", err)
	}
	if _, err := web.WaitLinked(ctx); err != nil {
		return err
	}
	linked = 1
	return expect("the same ref again", pb.ErrorCode_REF_USED, scan, third.QR)
}

// showingQR registers alice with webs linked web clients and starts one more
// web client, unlinked, showing its first QR code.
func showingQR(ctx context.Context, env *harness.Env, webs int) (*harness.User, *app.Client, device.Ref, error) {
	alice, err := env.NewUser(ctx, "alice", webs)
	if err != nil {
		return nil, nil, device.Ref{}, err
	}
	web, err := env.NewCompanion(fmt.Sprintf("alice/web-%d", webs+1), nil)
	if err != nil {
		return nil, nil, device.Ref{}, err
	}
	ref, err := harness.CurrentQR(ctx, web)
	return alice, web, ref, err
}
