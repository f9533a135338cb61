package harness

import (
	"context"
	"fmt"

	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/webclient/app"
)

// Topologies a web client can be linked in (design.md §8).
const (
	// MultiDevice is a companion that is a full device with its own Signal
	// sessions and chats: it works while its phone is offline.
	MultiDevice = "multidevice"
	// Mirror is a companion that holds no sessions and no chats: it shows
	// what its phone sends it and asks the phone to send for it, over an
	// end-to-end encrypted channel through the relay.
	Mirror = "mirror"
)

// Client is what flows do with any device of a user, phone or web client:
// send a text and read a chat. The phone's *device.Device is one.
type Client interface {
	// Name is the device's name in the ledger, e.g. "alice/web-1".
	Name() string
	// SendText sends text to user to and returns the message id once the
	// send is accepted: by the relay for a device, by the phone's queue for
	// a mirror web client.
	SendText(ctx context.Context, to, text string) (string, error)
	// Messages is the chat with peer as the device shows it, oldest first.
	Messages(peer string) []device.Message
}

// WebClient is a web client as flows see it, whatever its topology: a team plugs
// in its own client by implementing it (docs/scenarios.md). Everything a
// flow asks of a web client that is not topology-specific is here.
type WebClient interface {
	Client
	// Topology is MultiDevice, Mirror, or the name of a team's own.
	Topology() string
	// Chats lists the chats shown, most recent first.
	Chats() []device.Chat
	// SetAbout sets the user's about text from this client (a mirror
	// client asks its phone, which sets it a moment later).
	SetAbout(ctx context.Context, about string) error
	// Screen is what the client shows: the QR screen until linked, the
	// chats once linked.
	Screen() (app.Screen, device.Ref, error)
	// Usable reports whether the user can use the client now: it is linked
	// and connected, and (for a mirror client) its phone answers.
	Usable() bool
	// Banner is the banner the client shows over its chats ("Phone not
	// connected (5s)" on a mirror client whose phone is away), "" for none.
	Banner() string
	// Changed returns a channel closed at the next change of what the
	// client shows; take it before looking.
	Changed() <-chan struct{}
	// Logout unlinks the client; it wipes itself and shows a fresh QR code.
	Logout(ctx context.Context) error
	// Close stops the client, as closing its tab does; its state stays
	// for Env.Reopen.
	Close()
}

// multiDeviceWeb is a native multi-device companion (webclient/app).
type multiDeviceWeb struct {
	*app.Client
	name string
}

func (w *multiDeviceWeb) Name() string     { return w.name }
func (w *multiDeviceWeb) Topology() string { return MultiDevice }

// linked is the client's device, or an error naming the screen it is on.
func (w *multiDeviceWeb) linked() (*device.Device, error) {
	if d := w.Device(); d != nil {
		return d, nil
	}
	screen, _, _ := w.Screen()
	return nil, fmt.Errorf("%s is not linked: on the %s screen", w.name, screen)
}

func (w *multiDeviceWeb) SendText(ctx context.Context, to, text string) (string, error) {
	d, err := w.linked()
	if err != nil {
		return "", err
	}
	return d.SendText(ctx, to, text)
}

func (w *multiDeviceWeb) SetAbout(ctx context.Context, about string) error {
	d, err := w.linked()
	if err != nil {
		return err
	}
	return d.SetAbout(ctx, about)
}

func (w *multiDeviceWeb) Messages(peer string) []device.Message {
	if d := w.Device(); d != nil {
		return d.Messages(peer)
	}
	return nil
}

func (w *multiDeviceWeb) Chats() []device.Chat {
	if d := w.Device(); d != nil {
		return d.Chats()
	}
	return nil
}

// Banner is always empty: a multi-device companion does not need its phone.
func (w *multiDeviceWeb) Banner() string { return "" }

func (w *multiDeviceWeb) Usable() bool {
	d := w.Device()
	return d != nil && d.Online()
}

// WaitShown waits until web shows message id in its chat with peer.
func WaitShown(ctx context.Context, web Client, peer, id string) (device.Message, error) {
	var shown device.Message
	err := Await(ctx, fmt.Sprintf("%s to show msg %s in its chat with %s", web.Name(), id, peer), func() error {
		for _, m := range web.Messages(peer) {
			if m.ID == id {
				shown = m
				return nil
			}
		}
		return fmt.Errorf("%s shows %d messages, not that one", web.Name(), len(web.Messages(peer)))
	})
	return shown, err
}

// WaitUsable waits until web is usable again.
func WaitUsable(ctx context.Context, web WebClient) error {
	return Await(ctx, web.Name()+" to be usable", func() error {
		if !web.Usable() {
			screen, _, _ := web.Screen()
			return fmt.Errorf("not usable, on the %s screen", screen)
		}
		return nil
	})
}
