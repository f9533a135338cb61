package relay

import (
	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// BreakPushes returns cfg with a relay that passes each batch of
// deliveries for a device through brk before pushing it: tests use it to
// duplicate, reorder or drop deliveries on purpose.
func BreakPushes(cfg Config, brk func(to store.Address, batch []*pb.Delivery) []*pb.Delivery) Config {
	cfg.breakPush = brk
	return cfg
}

// connOf returns the connection serving device a, or nil.
func (r *Relay) connOf(a store.Address) *conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		if got, ok := c.device(); ok && got == a {
			return c
		}
	}
	return nil
}
