// Package route is the relay's router contract: how the node that handles a
// request reaches a device wherever it is connected, and how a phone's scan
// finds the companion showing a pairing ref. Nothing that crosses it is a
// connection: events and scans are plain values, so a router can span
// processes. Local is the in-process router; sim/cluster has one on NATS.
package route

import (
	"context"
	"errors"

	"github.com/linksim/linksim/sim/store"
)

// Kind is what an Event asks of a device's connection.
type Kind uint8

const (
	// Poke says the device's queue has new items.
	Poke Kind = iota + 1
	// Push asks to send Frame to the device.
	Push
	// Replaced says a newer connection of the device attached: this one
	// closes.
	Replaced
	// LoggedOut says the device was removed: send Frame, then close.
	LoggedOut
)

// Event is something for one connected device.
type Event struct {
	Kind  Kind
	Frame []byte // an encoded pb.Frame, for Push and LoggedOut
}

// Router reaches connected devices wherever they are connected.
type Router interface {
	// Attach makes fn receive the events of device a until detach is
	// called. Every other attachment of a, on any node, gets Replaced and
	// nothing after it: a replaced attachment is detached. fn
	// must not block: it is called on the router's goroutine (or the
	// sender's).
	Attach(a store.Address, fn func(Event)) (detach func(), err error)
	// Send delivers ev to device a wherever it is attached; a device
	// attached nowhere misses it.
	Send(a store.Address, ev Event) error
	// SendUser delivers ev to every attached device of user.
	SendUser(user string, ev Event) error
}

// Scan is a phone's scan of a pairing ref, as handed to the ref's host.
type Scan struct {
	Phone   store.Address
	Request []byte // the encoded pb.PairScan
}

// ErrNoHost means no node hosts the ref scanned.
var ErrNoHost = errors.New("route: no node hosts this pairing ref")

// Rendezvous brings a phone's scan to the node where the companion showing
// the ref is connected.
type Rendezvous interface {
	// Host makes scans of ref reach fn until cancel is called. fn must
	// call reply exactly once, possibly later (when the companion answers),
	// with the encoded pb.Frame that answers the phone.
	Host(ref string, fn func(s Scan, reply func(frame []byte))) (cancel func(), err error)
	// Scan hands s to ref's host and waits for its reply: ErrNoHost when
	// no node hosts ref, ctx's error when the reply did not come in time.
	Scan(ctx context.Context, ref string, s Scan) (frame []byte, err error)
}
