package relay

import (
	"github.com/linksim/linksim/sim/route"
	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// onEvent is what the router calls for this connection's device. It never
// blocks: every branch only queues or flags.
func (c *conn) onEvent(ev route.Event) {
	switch ev.Kind {
	case route.Poke:
		c.poke()
	case route.Push:
		if f := c.decodeEvent(ev); f != nil {
			c.send(f)
		}
	case route.Replaced:
		c.logger().Info("connection replaced by a newer one")
		c.shutdown("replaced", nil)
	case route.LoggedOut:
		c.shutdown("logged out", c.decodeEvent(ev))
	}
}

func (c *conn) decodeEvent(ev route.Event) *pb.Frame {
	f := new(pb.Frame)
	if err := pb.Unmarshal(ev.Frame, f); err != nil {
		c.logger().Error("undecodable frame from the router", "err", err)
		return nil
	}
	return f
}

// notify tells device a, wherever it is connected, that its queue has new
// items.
func (r *Relay) notify(a store.Address) {
	if err := r.router.Send(a, route.Event{Kind: route.Poke}); err != nil {
		// The device still gets the items on its next connection.
		r.log.Warn("routing a poke", "user", a.User, "device", a.Device, "err", err)
	}
}

// pushTo sends f to device a wherever it is connected (kind Push or
// LoggedOut).
func (r *Relay) pushTo(a store.Address, kind route.Kind, f *pb.Frame) {
	b, err := pb.Marshal(f)
	if err == nil {
		err = r.router.Send(a, route.Event{Kind: kind, Frame: b})
	}
	if err != nil {
		r.log.Warn("routing a frame", "user", a.User, "device", a.Device, "type", bodyName(f), "err", err)
	}
}

// pushUser sends f to every connected device of user.
func (r *Relay) pushUser(user string, f *pb.Frame) {
	b, err := pb.Marshal(f)
	if err == nil {
		err = r.router.SendUser(user, route.Event{Kind: route.Push, Frame: b})
	}
	if err != nil {
		r.log.Warn("routing a frame", "user", user, "type", bodyName(f), "err", err)
	}
}
