package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/linksim/linksim/sim/route"
	"github.com/linksim/linksim/sim/store"
)

var (
	_ route.Router     = (*Node)(nil)
	_ route.Rendezvous = (*Node)(nil)
)

// router is a node's side of routing: the devices attached here, one NATS
// subscription per user with a device attached here, and the pairing refs
// hosted here.
//
// The user subscriptions all deliver into one channel, read by one
// goroutine: a callback subscription of nats.go runs a goroutine of its
// own, which would be one per user per node, idle most of the time (a
// stack and a condition variable for every idle device). The devices'
// event handlers only queue, so one reader keeps up.
type router struct {
	n       *Node
	pairSub *nats.Subscription
	events  chan *nats.Msg
	quit    chan struct{}

	mu     sync.Mutex
	users  map[string]*userSubs // by user subject
	hosts  map[string]func(route.Scan, func([]byte))
	lastID uint64
	closed bool
}

type userSubs struct {
	sub  *nats.Subscription
	devs map[uint32]*attachment
}

type attachment struct {
	id uint64
	fn func(route.Event)
}

// wireEvent is an event on a user's subject. All sends it to every device
// of the user attached anywhere; Node is the sender's node, so that the
// node a device attached to does not replace its own new attachment.
type wireEvent struct {
	Kind   route.Kind `json:"k"`
	Device uint32     `json:"d,omitempty"`
	All    bool       `json:"all,omitempty"`
	Frame  []byte     `json:"f,omitempty"`
	Node   string     `json:"n"`
}

// wireScan is a scan on a node's pairing subject.
type wireScan struct {
	Ref   string        `json:"ref"`
	Phone store.Address `json:"phone"`
	Req   []byte        `json:"req"`
}

// A scan's answer starts with one of these bytes; the frame follows.
const (
	scanAnswered byte = iota
	scanNoHost
)

func userSubject(user string) string { return "linksim.user." + enc(user) }

func (n *Node) pairSubject() string { return "linksim.pair." + n.id }

// eventBuffer is how many device events may wait for the router's reader;
// beyond it NATS drops them (a slow consumer), as it would for a callback
// subscription past its pending limit. Events are at most once anyway
// (docs/cluster.md).
const eventBuffer = 1 << 16

func newRouter(n *Node) *router {
	return &router{n: n, users: map[string]*userSubs{}, hosts: map[string]func(route.Scan, func([]byte)){},
		events: make(chan *nats.Msg, eventBuffer), quit: make(chan struct{})}
}

// start takes the node's pairing scans and reads device events.
func (r *router) start() error {
	go func() {
		for {
			select {
			case m := <-r.events:
				r.onEvent(m)
			case <-r.quit:
				return
			}
		}
	}()
	sub, err := r.n.nc.Subscribe(r.n.pairSubject(), r.onScan)
	if err != nil {
		return fmt.Errorf("pairing subject: %w", err)
	}
	r.mu.Lock()
	r.pairSub = sub
	r.mu.Unlock()
	return r.n.nc.Flush()
}

// pokeAll tells every device attached here to read its queue: events are
// at most once, and those sent while the node was reconnecting to NATS are
// lost, pokes among them.
func (r *router) pokeAll() {
	r.mu.Lock()
	var fns []func(route.Event)
	for _, us := range r.users {
		for _, at := range us.devs {
			fns = append(fns, at.fn)
		}
	}
	r.mu.Unlock()
	for _, fn := range fns {
		fn(route.Event{Kind: route.Poke})
	}
}

func (r *router) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		close(r.quit)
	}
	r.closed = true
	if r.pairSub != nil {
		r.pairSub.Unsubscribe()
	}
	for _, us := range r.users {
		us.sub.Unsubscribe()
	}
	r.users = map[string]*userSubs{}
}

// Attach subscribes to the user's subject (once per user on this node)
// before it returns, so an event published after Attach reaches fn.
func (n *Node) Attach(a store.Address, fn func(route.Event)) (func(), error) {
	r := n.subs
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errors.New("cluster: attach: node closed")
	}
	subject := userSubject(a.User)
	us := r.users[subject]
	if us == nil {
		sub, err := n.nc.ChanSubscribe(subject, r.events)
		if err != nil {
			r.mu.Unlock()
			return nil, fmt.Errorf("cluster: attach %s: %w", a, err)
		}
		us = &userSubs{sub: sub, devs: map[uint32]*attachment{}}
		r.users[subject] = us
	}
	r.lastID++
	at := &attachment{id: r.lastID, fn: fn}
	old := us.devs[a.Device]
	us.devs[a.Device] = at
	r.mu.Unlock()
	if old != nil {
		old.fn(route.Event{Kind: route.Replaced})
	}
	// One flush after both: the server has the subscription, so later events
	// reach fn, and it has the announcement, so another node that attaches
	// this device afterwards subscribes after it and is not replaced by it.
	err := n.publish(a.User, wireEvent{Kind: route.Replaced, Device: a.Device})
	if err == nil {
		err = n.nc.Flush()
	}
	if err != nil {
		n.detach(a, at)
		return nil, fmt.Errorf("cluster: attach %s: %w", a, err)
	}
	return func() { n.detach(a, at) }, nil
}

func (n *Node) detach(a store.Address, at *attachment) {
	r := n.subs
	r.mu.Lock()
	defer r.mu.Unlock()
	subject := userSubject(a.User)
	us := r.users[subject]
	if us == nil || us.devs[a.Device] != at {
		return
	}
	delete(us.devs, a.Device)
	if len(us.devs) == 0 {
		us.sub.Unsubscribe()
		delete(r.users, subject)
	}
}

func (n *Node) publish(user string, ev wireEvent) error {
	ev.Node = n.id
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return n.nc.Publish(userSubject(user), b)
}

// Send goes through NATS even to a device attached here, so that events
// for one user arrive in the order they were sent, whichever node sent them.
func (n *Node) Send(a store.Address, ev route.Event) error {
	return n.publish(a.User, wireEvent{Kind: ev.Kind, Device: a.Device, Frame: ev.Frame})
}

func (n *Node) SendUser(user string, ev route.Event) error {
	return n.publish(user, wireEvent{Kind: ev.Kind, All: true, Frame: ev.Frame})
}

func (r *router) onEvent(m *nats.Msg) {
	var ev wireEvent
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		r.n.log.Error("undecodable device event", "subject", m.Subject, "err", err)
		return
	}
	if ev.Kind == route.Replaced && ev.Node == r.n.id {
		return // this node replaced its own attachment when it attached
	}
	r.mu.Lock()
	var fns []func(route.Event)
	if us := r.users[m.Subject]; us != nil && us.sub == m.Sub {
		for d, at := range us.devs {
			if ev.All || d == ev.Device {
				fns = append(fns, at.fn)
			}
		}
		if ev.Kind == route.Replaced {
			delete(us.devs, ev.Device) // replaced on another node
			if len(us.devs) == 0 {
				us.sub.Unsubscribe()
				delete(r.users, m.Subject)
			}
		}
	}
	r.mu.Unlock()
	for _, fn := range fns {
		fn(route.Event{Kind: ev.Kind, Frame: ev.Frame})
	}
}

// Host records in the refs bucket that this node hosts ref; scans find the
// node there.
func (n *Node) Host(ref string, fn func(route.Scan, func([]byte))) (func(), error) {
	ctx, cancel := n.ctx()
	defer cancel()
	if err := put(ctx, n.kv.refs, ref, []byte(n.id)); err != nil {
		return nil, fmt.Errorf("cluster: host pairing ref: %w", err)
	}
	r := n.subs
	r.mu.Lock()
	r.hosts[ref] = fn
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.hosts, ref)
		r.mu.Unlock()
	}, nil
}

func (n *Node) Scan(ctx context.Context, ref string, s route.Scan) ([]byte, error) {
	if ref == "" || !validKey(ref) {
		return nil, route.ErrNoHost
	}
	e, err := get(ctx, n.kv.refs, ref)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, route.ErrNoHost
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: scan: %w", err)
	}
	b, err := json.Marshal(wireScan{Ref: ref, Phone: s.Phone, Req: s.Request})
	if err != nil {
		return nil, err
	}
	m, err := n.nc.RequestWithContext(ctx, "linksim.pair."+string(e.Value()), b)
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, route.ErrNoHost // the hosting node is gone
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: scan: %w", err)
	}
	if len(m.Data) == 0 || m.Data[0] != scanAnswered {
		return nil, route.ErrNoHost
	}
	return m.Data[1:], nil
}

func (r *router) onScan(m *nats.Msg) {
	var ws wireScan
	if err := json.Unmarshal(m.Data, &ws); err != nil {
		r.n.log.Error("undecodable pairing scan", "err", err)
		m.Respond([]byte{scanNoHost})
		return
	}
	r.mu.Lock()
	fn := r.hosts[ws.Ref]
	r.mu.Unlock()
	if fn == nil {
		m.Respond([]byte{scanNoHost})
		return
	}
	// The answer may wait for the companion: not on the subscription's
	// goroutine.
	go fn(route.Scan{Phone: ws.Phone, Request: ws.Req}, func(frame []byte) {
		if err := m.Respond(append([]byte{scanAnswered}, frame...)); err != nil {
			r.n.log.Warn("answering a pairing scan", "err", err)
		}
	})
}

// validKey reports whether s may be a KV key: a ref comes from a client.
func validKey(s string) bool {
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '=':
		default:
			return false
		}
	}
	return len(s) <= 256
}
