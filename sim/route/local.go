package route

import (
	"context"
	"sync"

	"github.com/linksim/linksim/sim/store"
)

// Local is the router of a relay that is one process: attachments and
// pairing refs in memory. The zero value is not usable; use NewLocal.
type Local struct {
	mu     sync.Mutex
	users  map[string]map[uint32]*attachment
	hosts  map[string]func(Scan, func([]byte))
	lastID uint64
}

type attachment struct {
	id uint64
	fn func(Event)
}

var (
	_ Router     = (*Local)(nil)
	_ Rendezvous = (*Local)(nil)
)

// NewLocal returns an empty in-process router.
func NewLocal() *Local {
	return &Local{users: map[string]map[uint32]*attachment{}, hosts: map[string]func(Scan, func([]byte)){}}
}

func (l *Local) Attach(a store.Address, fn func(Event)) (func(), error) {
	l.mu.Lock()
	devs := l.users[a.User]
	if devs == nil {
		devs = map[uint32]*attachment{}
		l.users[a.User] = devs
	}
	l.lastID++
	at := &attachment{id: l.lastID, fn: fn}
	old := devs[a.Device]
	devs[a.Device] = at
	l.mu.Unlock()
	if old != nil {
		old.fn(Event{Kind: Replaced})
	}
	return func() { l.detach(a, at) }, nil
}

func (l *Local) detach(a store.Address, at *attachment) {
	l.mu.Lock()
	defer l.mu.Unlock()
	devs := l.users[a.User]
	if devs[a.Device] != at {
		return
	}
	delete(devs, a.Device)
	if len(devs) == 0 {
		delete(l.users, a.User)
	}
}

func (l *Local) Send(a store.Address, ev Event) error {
	l.mu.Lock()
	at := l.users[a.User][a.Device]
	l.mu.Unlock()
	if at != nil {
		at.fn(ev)
	}
	return nil
}

func (l *Local) SendUser(user string, ev Event) error {
	l.mu.Lock()
	fns := make([]func(Event), 0, len(l.users[user]))
	for _, at := range l.users[user] {
		fns = append(fns, at.fn)
	}
	l.mu.Unlock()
	for _, fn := range fns {
		fn(ev)
	}
	return nil
}

func (l *Local) Host(ref string, fn func(Scan, func([]byte))) (func(), error) {
	l.mu.Lock()
	l.hosts[ref] = fn
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		delete(l.hosts, ref)
		l.mu.Unlock()
	}, nil
}

func (l *Local) Scan(ctx context.Context, ref string, s Scan) ([]byte, error) {
	l.mu.Lock()
	fn := l.hosts[ref]
	l.mu.Unlock()
	if fn == nil {
		return nil, ErrNoHost
	}
	replies := make(chan []byte, 1)
	fn(s, func(frame []byte) { replies <- frame })
	select {
	case f := <-replies:
		return f, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
