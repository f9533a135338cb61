package phone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
)

// State keys: the mirror companions the phone serves, so a restarted phone
// keeps sending them what it shows, and the sends they asked for that the
// phone has not made yet, in the order asked.
const (
	prefixMirror  = "phone/mirror-web/"
	prefixRequest = "phone/mirror-req/"
)

// mirrors is the phone's end of the mirror channel (docs/protocol.md §19):
// it sends its mirror companions what it shows, in order, and sends texts
// they ask it to send.
type mirrors struct {
	phone   *Phone
	started atomic.Bool // phone is set: events may be served
	log     *slog.Logger

	mu      sync.Mutex
	targets map[uint32]bool // mirror companions, by device id
	queue   []mirrorPush
	wake    chan struct{} // capacity 1: the queue grew
	seq     atomic.Uint64 // orders the requests kept in state
}

// mirrorPush is one thing the phone owes its mirror companions: a view
// update for some of them, or a send one asked for (kept under key until
// made).
type mirrorPush struct {
	to      []uint32
	view    *pb.Mirror
	request *pb.Mirror // a MirrorSend or a SetProfile
	key     string
}

// withMirror makes cfg's device the phone end of the mirror channel: it
// installs the content hook and watches the device's events.
func withMirror(cfg device.Config) (device.Config, *mirrors) {
	m := &mirrors{log: cfg.Logger, targets: make(map[uint32]bool), wake: make(chan struct{}, 1)}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	events := cfg.Events
	cfg.Events = func(e device.Event) {
		if events != nil {
			events(e)
		}
		m.event(e)
	}
	// A content hook already set sees everything first: a test's broken
	// phone drops requests there.
	if first := cfg.Content; first != nil {
		cfg.Content = func(from e2e.Address, id string, c *pb.Content) (bool, error) {
			if handled, err := first(from, id, c); handled || err != nil {
				return handled, err
			}
			return m.content(from, id, c)
		}
	} else {
		cfg.Content = m.content
	}
	return cfg, m
}

// start loads the mirror companions the phone serves and runs the sender.
func (m *mirrors) start(p *Phone) error {
	m.phone = p
	err := p.State().Scan(prefixMirror, func(k string, _ []byte) error {
		id, err := strconv.ParseUint(strings.TrimPrefix(k, prefixMirror), 10, 32)
		if err == nil {
			m.targets[uint32(id)] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Sends asked for before the phone stopped come first.
	m.seq.Store(uint64(time.Now().UnixNano()))
	err = p.State().Scan(prefixRequest, func(k string, v []byte) error {
		var req pb.Mirror
		if err := pb.Unmarshal(v, &req); err != nil {
			m.log.Error("dropping an unreadable mirror request", "key", k, "err", err)
			return p.State().Delete(k)
		}
		m.queue = append(m.queue, mirrorPush{request: &req, key: k})
		return nil
	})
	if err != nil {
		return err
	}
	m.started.Store(true)
	go m.run()
	m.pushAll(true) // a phone that starts is a phone back online
	return nil
}

// content handles what a mirror companion sends its phone.
func (m *mirrors) content(from e2e.Address, _ string, c *pb.Content) (bool, error) {
	req := c.GetMirror()
	if req == nil || from.Device == 0 {
		return false, nil
	}
	if !m.started.Load() {
		return true, errors.New("phone still starting: the mirror request stays queued")
	}
	switch k := req.Kind.(type) {
	case *pb.Mirror_Hello:
		if err := m.phone.State().Put(prefixMirror+strconv.FormatUint(uint64(from.Device), 10), nil); err != nil {
			return true, err
		}
		m.mu.Lock()
		m.targets[from.Device] = true
		m.mu.Unlock()
		m.push([]uint32{from.Device}, m.fullView())
	case *pb.Mirror_Ping:
		m.push([]uint32{from.Device}, &pb.Mirror{Kind: &pb.Mirror_Pong{Pong: &pb.MirrorPong{Nonce: k.Ping.GetNonce()}}})
	case *pb.Mirror_Send, *pb.Mirror_SetProfile:
		// Kept before the delivery is acknowledged, and made off the push
		// path: it waits on the relay, which the push path must not.
		raw, err := pb.Marshal(req)
		if err != nil {
			return true, err
		}
		key := fmt.Sprintf("%s%020d", prefixRequest, m.seq.Add(1))
		if err := m.phone.State().Put(key, raw); err != nil {
			return true, err
		}
		m.enqueue(mirrorPush{request: req, key: key})
	}
	return true, nil
}

// send does what a mirror companion asked: a send with the id it chose,
// so one made again (the phone stopped before forgetting the request) is
// the same message, which the relay and every chat take once; or a
// profile change. It reports whether the request is done with.
func (m *mirrors) send(p *mirrorPush) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	switch k := p.request.Kind.(type) {
	case *pb.Mirror_Send:
		err = m.phone.SendTextID(ctx, k.Send.GetMessageId(), k.Send.GetToUser(), k.Send.GetText())
	case *pb.Mirror_SetProfile:
		err = m.phone.SetProfile(ctx, k.SetProfile.PushName, k.SetProfile.About)
	}
	if err != nil && device.Code(err) == pb.ErrorCode_ERROR_UNSPECIFIED && !errors.Is(err, device.ErrUntrustedDevice) {
		return false // offline, or the relay slow: try again
	}
	if err != nil {
		// Refused for good (an unknown user, a bad id): trying again would
		// hold up everything behind it for ever.
		m.log.Warn("mirror request refused", "key", p.key, "err", err)
	}
	if err := m.phone.State().Delete(p.key); err != nil {
		m.log.Error("forget a mirror request made", "key", p.key, "err", err)
	}
	return true
}

// event turns what the phone shows changing into view updates.
func (m *mirrors) event(e device.Event) {
	if !m.started.Load() {
		return // the device is still registering
	}
	switch e.Kind {
	case device.Received, device.Acked, device.ReceiptIn:
		if msg, ok := m.find(e.Chat, e.MessageID); ok {
			// The event comes before the chat takes the new status.
			msg.Status = max(msg.Status, statusAfter(e))
			m.pushAll(false, &pb.MirrorMessage{Peer: e.Chat, Message: historyMessage(msg)})
		}
	case device.Connected:
		m.pushAll(true)
	}
}

// statusAfter is the status event e gives our message.
func statusAfter(e device.Event) device.Status {
	switch {
	case e.Kind == device.Acked:
		return device.StatusSent
	case e.Kind == device.ReceiptIn && e.Receipt == pb.ReceiptType_READ:
		return device.StatusRead
	case e.Kind == device.ReceiptIn:
		return device.StatusDelivered
	}
	return device.StatusPending
}

// find looks a message up in the phone's chat with peer ("" for an event
// without a chat: every chat).
func (m *mirrors) find(peer, id string) (device.Message, bool) {
	if peer == "" {
		return device.Message{}, false
	}
	msgs := m.phone.Messages(peer)
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].ID == id {
			return msgs[i], true
		}
	}
	return device.Message{}, false
}

// pushAll sends every mirror companion either the full view or msgs.
func (m *mirrors) pushAll(full bool, msgs ...*pb.MirrorMessage) {
	m.mu.Lock()
	to := make([]uint32, 0, len(m.targets))
	for id := range m.targets {
		to = append(to, id)
	}
	m.mu.Unlock()
	if len(to) == 0 {
		return
	}
	if full {
		m.push(to, m.fullView())
		return
	}
	m.push(to, &pb.Mirror{Kind: &pb.Mirror_View{View: &pb.MirrorView{Messages: msgs}}})
}

// fullView is everything the phone shows: the recent messages of every
// chat, as in a history sync, and the contacts.
func (m *mirrors) fullView() *pb.Mirror {
	h := historyOf(m.phone)
	v := &pb.MirrorView{Full: true, Contacts: h.Contacts}
	for _, c := range h.Chats {
		for _, msg := range c.Messages {
			v.Messages = append(v.Messages, &pb.MirrorMessage{Peer: c.Peer, Message: msg})
		}
	}
	return &pb.Mirror{Kind: &pb.Mirror_View{View: v}}
}

func (m *mirrors) push(to []uint32, view *pb.Mirror) {
	m.enqueue(mirrorPush{to: to, view: view})
}

func (m *mirrors) enqueue(p mirrorPush) {
	m.mu.Lock()
	m.queue = append(m.queue, p)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// run sends the queued updates one after the other, so a companion sees
// them in the order the phone made them; an update that cannot go out yet
// (the phone is offline) is tried again until the phone closes.
func (m *mirrors) run() {
	done := m.phone.Done()
	for {
		m.mu.Lock()
		var next *mirrorPush
		if len(m.queue) > 0 {
			// A copy: deliver works on it while pushes append to the queue.
			p := m.queue[0]
			next = &p
		}
		m.mu.Unlock()
		if next == nil {
			select {
			case <-m.wake:
				continue
			case <-done:
				return
			}
		}
		for attempt := 1; !m.deliver(next); attempt++ {
			select {
			case <-time.After(min(50*time.Millisecond<<min(attempt, 6), 2*time.Second)):
			case <-done:
				return
			}
		}
		m.mu.Lock()
		m.queue = m.queue[1:]
		m.mu.Unlock()
	}
}

// deliver makes the send p asks for, or sends p's view to each companion
// it still names; a companion the relay no longer knows (removed, logged
// out) is forgotten. It reports whether p is done with.
func (m *mirrors) deliver(p *mirrorPush) bool {
	if p.request != nil {
		return m.send(p)
	}
	content := &pb.Content{Kind: &pb.Content_Mirror{Mirror: p.view}}
	self := m.phone.Self()
	for len(p.to) > 0 {
		dev := p.to[0]
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := m.phone.SendDirect(ctx, device.NewMessageID(), e2e.Address{User: self.User, Device: dev}, content)
		cancel()
		switch {
		case device.Code(err) == pb.ErrorCode_UNKNOWN_DEVICE:
			m.forget(dev)
		case err != nil:
			return false
		}
		p.to = p.to[1:]
	}
	return true
}

func (m *mirrors) forget(dev uint32) {
	m.mu.Lock()
	delete(m.targets, dev)
	m.mu.Unlock()
	if err := m.phone.State().Delete(prefixMirror + strconv.FormatUint(uint64(dev), 10)); err != nil {
		m.log.Warn("forget mirror companion", "device", dev, "err", err)
	}
}
