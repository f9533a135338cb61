package scenarios

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/webclient/driver"
)

// browserCutOff cuts a linked page's link at the fault proxy (a reset,
// with every byte dropped afterwards, so reconnecting cannot succeed),
// checks the page says so, has a contact write meanwhile, heals the link
// under added latency, and checks every message arrives once and in order.
func browserCutOff(ctx context.Context, env *harness.Env) error {
	alice, bob, w, _, err := historyInBrowser(ctx, env)
	if err != nil {
		return err
	}
	if err := w.OpenChat(ctx, bob.Phone.Self().User); err != nil {
		return err
	}
	net, lift, err := blackholePage(ctx, env, w)
	if err != nil {
		return err
	}
	if err := net.Reset(); err != nil {
		lift()
		return err
	}
	if err := banner(ctx, w, "reconnecting", "Reconnecting…"); err != nil {
		lift()
		return err
	}
	var sent []string
	for i := range 3 {
		text := fmt.Sprintf("bob to alice while her browser is cut off, %d", i+1)
		if _, err := bob.Phone.SendText(ctx, alice.Phone.Self().User, text); err != nil {
			lift()
			return err
		}
		sent = append(sent, text)
	}
	// Healed, but slow: the backlog comes in over 80 ms each way. The reset
	// ends the reconnect attempt stuck in the blackhole at once.
	lift()
	slow, err := net.Latency(80*time.Millisecond, 0)
	if err != nil {
		return err
	}
	defer slow()
	if err := net.Reset(); err != nil {
		return err
	}
	if err := banner(ctx, w, "online", "Online"); err != nil {
		return err
	}
	for _, text := range sent {
		if _, err := shows(ctx, w, text, driver.In, ""); err != nil {
			return err
		}
	}
	reply, err := w.Send(ctx, "alice's browser, back online")
	if err != nil {
		return err
	}
	if _, err := shows(ctx, w, reply.Text, driver.Out, driver.StatusDelivered); err != nil {
		return err
	}
	return cleanWith(ctx, env, w)
}

// browserCrash crashes a linked page's renderer mid-conversation, while a
// contact's messages are arriving, has the contact write more while it is
// down, and reopens the app in a new page of the same profile: it must come
// back linked (no QR code, still the phone's one companion), show every
// message once and in order, and send again.
func browserCrash(ctx context.Context, env *harness.Env) error {
	alice, bob, w, dev, err := historyInBrowser(ctx, env)
	if err != nil {
		return err
	}
	if err := w.OpenChat(ctx, bob.Phone.Self().User); err != nil {
		return err
	}
	before, err := w.Send(ctx, "alice's browser, before the crash")
	if err != nil {
		return err
	}
	if _, err := shows(ctx, w, before.Text, driver.Out, driver.StatusDelivered); err != nil {
		return err
	}
	var texts []string
	send := func(what string, n int) error {
		for i := range n {
			text := fmt.Sprintf("bob to alice %s, %d", what, i+1)
			if _, err := bob.Phone.SendText(ctx, alice.Phone.Self().User, text); err != nil {
				return err
			}
			texts = append(texts, text)
		}
		return nil
	}
	if err := send("as her page crashes", 3); err != nil {
		return err
	}
	// The first has shown, the others are on their way or being stored.
	if _, err := shows(ctx, w, texts[0], driver.In, ""); err != nil {
		return err
	}
	if err := w.Crash(ctx); err != nil {
		return err
	}
	if err := send("while her page is down", 2); err != nil {
		return err
	}
	if err := w.Reopen(ctx); err != nil {
		return err
	}
	if err := companions(ctx, alice, dev); err != nil {
		return err
	}
	if err := w.OpenChat(ctx, bob.Phone.Self().User); err != nil {
		return err
	}
	if err := banner(ctx, w, "online", "Online"); err != nil {
		return err
	}
	for _, text := range texts {
		if _, err := shows(ctx, w, text, driver.In, ""); err != nil {
			return err
		}
	}
	after, err := w.Send(ctx, "alice's browser, back after the crash")
	if err != nil {
		return err
	}
	if _, err := shows(ctx, w, after.Text, driver.Out, driver.StatusDelivered); err != nil {
		return err
	}
	return cleanWith(ctx, env, w)
}

// blackholePage checks w is online, then drops every byte of its link at
// the fault proxy; lift heals it. The page notices only once its link is
// reset or its keepalive goes unanswered.
func blackholePage(ctx context.Context, env *harness.Env, w *harness.Web) (*harness.NetLink, func(), error) {
	if err := banner(ctx, w, "online", "Online"); err != nil {
		return nil, nil, err
	}
	net, err := env.Net(w.Name())
	if err != nil {
		return nil, nil, err
	}
	lift, err := net.Blackhole()
	if err != nil {
		return nil, nil, err
	}
	return net, lift, nil
}

// banner waits until w's connection banner has status and its text starts
// with text.
func banner(ctx context.Context, w *harness.Web, status, text string) error {
	return await(ctx, fmt.Sprintf("%s to show the %q banner", w.Name(), status), func() error {
		got, err := w.ConnectionStatus(ctx)
		if err != nil {
			return err
		}
		shown, err := w.ConnectionText(ctx)
		if err != nil {
			return err
		}
		if got != status || !strings.HasPrefix(shown, text) {
			return fmt.Errorf("status %q, banner %q", got, shown)
		}
		return nil
	})
}
