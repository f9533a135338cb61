package relay

import (
	"sync"

	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// router knows which device is connected where. This relay routes in
// memory; a clustered relay would route to the node holding the device's
// connection, which is why the rest of the relay sees only this interface.
type router interface {
	// attach makes c the connection of device a and returns the one it
	// replaces, if any.
	attach(a store.Address, c *conn) (old *conn)
	// detach forgets c, if it is still the connection of a.
	detach(a store.Address, c *conn)
	// conn returns the live connection of a, or nil.
	conn(a store.Address) *conn
	// notify tells a's connection that its queue has new items.
	notify(a store.Address)
	// push sends f to every connected device of user.
	push(user string, f *pb.Frame)
}

// hub is the in-memory router.
type hub struct {
	mu    sync.Mutex
	users map[string]map[uint32]*conn
}

var _ router = (*hub)(nil)

func newHub() *hub { return &hub{users: map[string]map[uint32]*conn{}} }

func (h *hub) attach(a store.Address, c *conn) *conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	devs := h.users[a.User]
	if devs == nil {
		devs = map[uint32]*conn{}
		h.users[a.User] = devs
	}
	old := devs[a.Device]
	devs[a.Device] = c
	return old
}

func (h *hub) detach(a store.Address, c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	devs := h.users[a.User]
	if devs[a.Device] != c {
		return
	}
	delete(devs, a.Device)
	if len(devs) == 0 {
		delete(h.users, a.User)
	}
}

func (h *hub) conn(a store.Address) *conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.users[a.User][a.Device]
}

func (h *hub) notify(a store.Address) {
	if c := h.conn(a); c != nil {
		c.poke()
	}
}

func (h *hub) push(user string, f *pb.Frame) {
	h.mu.Lock()
	conns := make([]*conn, 0, len(h.users[user]))
	for _, c := range h.users[user] {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.send(f)
	}
}
