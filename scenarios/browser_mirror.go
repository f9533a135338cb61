package scenarios

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/webclient/driver"
	"github.com/linksim/linksim/webclient/mirror"
)

var browserMirrorFlows = []Flow{
	{
		Feature: "Phone offline [mirror, browser]", Outcome: `the web app shows "Phone not connected" with the time since, its send pending; all arrives once the phone is back`,
		Labels: []string{Mirror, Browser, Fault}, Timeout: browserTimeout,
		Configure: browserEnv(func(c *harness.Config) {
			faulty(c)
			c.Topology = harness.Mirror
		}),
		Run: browserPhoneOffline,
		// history (to alice's phone); bob's while her phone is away (her
		// phone and browser); the browser's, which her phone sends (bob's
		// phone, and the browser showing it sent).
		Expect: harness.Expect{Messages: 1 + 1 + 1, Deliveries: 1 + 2 + 2, Devices: 3},
	},
}

func browserPhoneOffline(ctx context.Context, env *harness.Env) error {
	alice, bob, w, _, err := historyInBrowser(ctx, env)
	if err != nil {
		return err
	}
	aliceUser, bobUser := alice.Phone.Self().User, bob.Phone.Self().User
	if err := w.OpenChat(ctx, bobUser); err != nil {
		return err
	}
	path, err := env.Net(alice.Phone.Name())
	if err != nil {
		return err
	}
	away := time.Now()
	back := path.Offline()
	err = func() error {
		if err := phoneBanner(ctx, w, "not-connected", mirror.PhoneNotConnected+" ("); err != nil {
			return err
		}
		if _, err := bob.Phone.SendText(ctx, aliceUser, "bob, while alice's phone is away"); err != nil {
			return err
		}
		sent, err := w.Send(ctx, "alice's browser, while her phone is away")
		if err != nil {
			return err
		}
		if sent.Status != driver.StatusPending {
			return fmt.Errorf("%s shows its message as %q while its phone is away; want pending", w.Name(), sent.Status)
		}
		return bannerCounts(ctx, w)
	}()
	if berr := back(); err == nil {
		err = berr
	}
	if err != nil {
		return err
	}
	if err := phoneBanner(ctx, w, "connected", ""); err != nil {
		return err
	}
	env.Recorder().Step(harness.StepWebUnusable, w.Name(), time.Since(away))
	if _, err := shows(ctx, w, "bob, while alice's phone is away", driver.In, ""); err != nil {
		return err
	}
	if _, err := shows(ctx, w, "alice's browser, while her phone is away", driver.Out, driver.StatusDelivered); err != nil {
		return err
	}
	return cleanWith(ctx, env, w)
}

// bannerCounts checks that mirror page w's "Phone not connected" banner
// counts the time since on its own: the page redraws it although nothing
// else changes.
func bannerCounts(ctx context.Context, w *harness.Web) error {
	_, before, err := w.PhoneStatus(ctx)
	if err != nil {
		return err
	}
	if err := hold(ctx, 2*time.Second); err != nil {
		return err
	}
	_, after, err := w.PhoneStatus(ctx)
	if err != nil {
		return err
	}
	if after == before {
		return fmt.Errorf("%s's phone banner still reads %q 2 s later: the time since does not go on", w.Name(), after)
	}
	return nil
}

// phoneBanner waits until mirror page w says its phone is status, with a
// banner starting with text ("" for no banner).
func phoneBanner(ctx context.Context, w *harness.Web, status, text string) error {
	return await(ctx, fmt.Sprintf("%s to say its phone is %s", w.Name(), status), func() error {
		got, shown, err := w.PhoneStatus(ctx)
		if err != nil {
			return err
		}
		if got != status || !strings.HasPrefix(shown, text) || text == "" && shown != "" {
			return fmt.Errorf("it says %q, banner %q", got, shown)
		}
		return nil
	})
}
