package scenarios

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/reports"
	"github.com/linksim/linksim/sim/device"
)

// Calls reach phones only (docs/protocol.md §17): signalling, no media,
// end to end encrypted; a web client shows "Call on your phone" and cannot
// answer.
var callFlows = []Flow{
	{
		Feature: "Calls ring on the phone", Outcome: "a call rings the phone, the web client only hears of it and cannot accept; accepted, then rejected, on the phone",
		Labels: []string{Calls}, Timeout: 30 * time.Second,
		Run: callsOnPhone,
	},
	{
		Feature: "Calls ring on the phone", Outcome: "the web client in a browser shows \"Call on your phone\" with no control, until the phone answers",
		Labels: []string{Calls, Browser}, Timeout: browserTimeout, Configure: browserEnv(nil),
		Run:    browserCallNotice,
		Expect: historyOnly,
	},
}

// callIs waits until call id is in state want on each device.
func callIs(ctx context.Context, id string, want device.CallState, devices ...*device.Device) error {
	return await(ctx, fmt.Sprintf("call %s to be %s on every device", id, want), func() error {
		for _, d := range devices {
			var got device.CallState
			for _, c := range d.Calls() {
				if c.ID == id {
					got = c.State
				}
			}
			if got != want {
				return fmt.Errorf("%s holds it as %q", d.Name(), got)
			}
		}
		return nil
	})
}

// scored checks that the run recorded step (a call's ring or outcome) on
// device: calls are scored like messages.
func scored(env *harness.Env, step, device string) error {
	for _, e := range env.Recorder().Events() {
		if e.Kind == reports.KindStep && e.Name == step && e.Device == device {
			return nil
		}
	}
	return fmt.Errorf("no %s step recorded on %s", step, device)
}

func callsOnPhone(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 1, 0)
	if err != nil {
		return err
	}
	phone, web := alice.Phone.Device, alice.Web(0)
	if _, err := web.StartCall(ctx, bob.Phone.Self().User, false); !errors.Is(err, device.ErrCallsOnPhone) {
		return fmt.Errorf("%s started a call: got %v, want it refused (%v)", web.Name(), err, device.ErrCallsOnPhone)
	}
	id, err := bob.Phone.StartCall(ctx, alice.Phone.Self().User, false)
	if err != nil {
		return err
	}
	if err := callIs(ctx, id, device.CallRinging, phone, web); err != nil {
		return err
	}
	if c, ok := alice.Webs[0].Ringing(); !ok || c.ID != id || c.Peer != bob.Phone.Self().User {
		return fmt.Errorf("%s's notice shows call %+v (%v), want bob's call %s ringing on the phone", web.Name(), c, ok, id)
	}
	if err := web.AcceptCall(ctx, id); !errors.Is(err, device.ErrCallsOnPhone) {
		return fmt.Errorf("%s accepted a call: got %v, want it refused (%v)", web.Name(), err, device.ErrCallsOnPhone)
	}
	if err := phone.AcceptCall(ctx, id); err != nil {
		return err
	}
	if err := callIs(ctx, id, device.CallAccepted, bob.Phone.Device, web); err != nil {
		return err
	}
	if c, ok := alice.Webs[0].Ringing(); ok {
		return fmt.Errorf("%s's notice still shows call %+v after the phone accepted", web.Name(), c)
	}
	if err := bob.Phone.EndCall(ctx, id); err != nil {
		return err
	}
	if err := callIs(ctx, id, device.CallEnded, phone, web); err != nil {
		return err
	}
	// A second call, rejected.
	if id, err = bob.Phone.StartCall(ctx, alice.Phone.Self().User, true); err != nil {
		return err
	}
	if err := callIs(ctx, id, device.CallRinging, phone, web); err != nil {
		return err
	}
	if err := phone.RejectCall(ctx, id); err != nil {
		return err
	}
	if err := callIs(ctx, id, device.CallRejected, bob.Phone.Device, web); err != nil {
		return err
	}
	return errors.Join(
		scored(env, harness.StepCallRing, phone.Name()),
		scored(env, harness.CallOutcomeStep(device.CallAccepted.String()), bob.Phone.Name()),
		scored(env, harness.CallOutcomeStep(device.CallRejected.String()), bob.Phone.Name()),
	)
}

func browserCallNotice(ctx context.Context, env *harness.Env) error {
	alice, bob, w, _, err := historyInBrowser(ctx, env)
	if err != nil {
		return err
	}
	if n, err := w.Ringing(ctx); err != nil || n.Shown {
		return errors.Join(err, fmt.Errorf("%s shows a ringing notice before any call: %+v", w.Name(), n))
	}
	bobUser := bob.Phone.Self().User
	id, err := bob.Phone.StartCall(ctx, alice.Phone.Self().User, false)
	if err != nil {
		return err
	}
	if err := await(ctx, w.Name()+" to show that the call rings on the phone", func() error {
		n, err := w.Ringing(ctx)
		switch {
		case err != nil:
			return err
		case !n.Shown || n.Peer != bobUser || !strings.Contains(n.Text, "Call on your phone"):
			return fmt.Errorf("the notice is %+v", n)
		case n.Operable != 0:
			return fmt.Errorf("the notice holds %d controls; calls are answered on the phone", n.Operable)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := noCallControls(ctx, w, "while a call rings"); err != nil {
		return err
	}
	if err := callIs(ctx, id, device.CallRinging, alice.Phone.Device); err != nil {
		return err
	}
	if err := alice.Phone.AcceptCall(ctx, id); err != nil {
		return err
	}
	if err := await(ctx, w.Name()+" to hide the notice once the phone answered", func() error {
		n, err := w.Ringing(ctx)
		if err == nil && n.Shown {
			return fmt.Errorf("the notice still shows: %+v", n)
		}
		return err
	}); err != nil {
		return err
	}
	return errors.Join(callIs(ctx, id, device.CallAccepted, bob.Phone.Device), scored(env, harness.StepCallRing, alice.Phone.Name()))
}
