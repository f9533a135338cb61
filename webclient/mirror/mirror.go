// Package mirror is the web client of the mirror topology, as the original
// WhatsApp Web was: it holds no Signal session but one with its own phone,
// and no message store. It shows what its phone sends it over the mirror
// channel (docs/protocol.md §19) and asks the phone to send for it. While
// the phone does not answer it shows "Phone not connected", and what the
// user sends waits, pending, at the relay for the phone to come back.
package mirror

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
	"github.com/linksim/linksim/webclient/app"
)

// State keys. The client keeps no message, only which ids it has shown, so
// a reload does not show (and count) them as new.
const (
	keySynced     = "mirror/synced" // the first full view after pairing came
	prefixShown   = "mirror/shown/"
	defaultTimout = 3 * time.Second
)

// PhoneNotConnected is what the client shows while its phone does not
// answer.
const PhoneNotConnected = "Phone not connected"

// Config configures a Client.
type Config struct {
	// Device configures the client's device, as app.Config.Device; Mirror
	// and Content are set by the client.
	Device device.Config
	// PhoneTimeout is how long a ping may go unanswered before the client
	// shows "Phone not connected"; 0 means 3 s. It pings every third of it.
	PhoneTimeout time.Duration
	// OnChange, if set, is called after every change of what the client
	// shows. It must not block.
	OnChange func()
}

// Client is one mirror web client.
type Client struct {
	cfg Config
	app *app.Client

	mu       sync.Mutex
	view     map[string][]device.Message // peer -> messages, in the order shown
	contacts map[string]string
	// heard is when the phone last answered; pinged, when the unanswered
	// ping (nonce != 0) went out.
	heard, pinged time.Time
	nonce         uint64
	needHello     bool
	viewed        bool // a full view came since the client started or linked
	changes       chan struct{}

	stop      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// New makes a client; Start runs it.
func New(cfg Config) *Client {
	if cfg.PhoneTimeout <= 0 {
		cfg.PhoneTimeout = defaultTimout
	}
	if cfg.OnChange == nil {
		cfg.OnChange = func() {}
	}
	if cfg.Device.Events == nil {
		cfg.Device.Events = func(device.Event) {}
	}
	c := &Client{cfg: cfg, view: map[string][]device.Message{}, contacts: map[string]string{},
		changes: make(chan struct{}), stop: make(chan struct{})}
	dev := cfg.Device
	dev.Mirror, dev.Content = true, c.content
	dev.Events = func(e device.Event) {
		cfg.Device.Events(e)
		c.event(e)
	}
	c.app = app.New(app.Config{Device: dev, OnChange: c.changed})
	return c
}

// Start resumes the linked client kept in state, or starts pairing, and
// starts watching the phone.
func (c *Client) Start() error {
	if err := c.app.Start(); err != nil {
		return err
	}
	c.wg.Add(1)
	go c.watchPhone()
	return nil
}

// Close stops the client; what links it to its phone stays for the next
// Start.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		close(c.stop)
		c.app.Close()
		c.wg.Wait()
	})
}

// Screen is what the client shows (app.Screen): the QR code until linked.
func (c *Client) Screen() (app.Screen, device.Ref, error) { return c.app.Screen() }

// Reload starts pairing again after the refs expired.
func (c *Client) Reload() { c.app.Reload() }

// WaitLinked blocks until the client is linked.
func (c *Client) WaitLinked(ctx context.Context) error {
	_, err := c.app.WaitLinked(ctx)
	return err
}

// Logout unlinks the client; it wipes itself and shows a fresh QR code.
func (c *Client) Logout(ctx context.Context) error { return c.app.Logout(ctx) }

// Self is the client's address once linked.
func (c *Client) Self() (e2e.Address, bool) {
	if d := c.app.Device(); d != nil {
		return d.Self(), true
	}
	return e2e.Address{}, false
}

// Changed returns a channel closed at the next change; take it before
// looking.
func (c *Client) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changes
}

func (c *Client) changed() {
	c.mu.Lock()
	close(c.changes)
	c.changes = make(chan struct{})
	c.mu.Unlock()
	c.cfg.OnChange()
}

// Phone reports whether the phone answers, and if not since when it has
// not (the last answer, or the link if it never answered).
func (c *Client) Phone() (connected bool, since time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.phoneLocked(time.Now())
}

func (c *Client) phoneLocked(now time.Time) (bool, time.Time) {
	if c.nonce == 0 || now.Sub(c.pinged) < c.cfg.PhoneTimeout {
		return true, time.Time{}
	}
	return false, c.heard
}

// Banner is the banner the client shows: "" while the phone answers, else
// "Phone not connected" with how long it has not.
func (c *Client) Banner() string {
	connected, since := c.Phone()
	if connected {
		return ""
	}
	return fmt.Sprintf("%s (%s)", PhoneNotConnected, time.Since(since).Round(time.Second))
}

// Usable reports whether the user can use the client: linked, connected,
// showing its phone's view, and the phone answering.
func (c *Client) Usable() bool {
	d := c.app.Device()
	if d == nil || !d.Online() {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	connected, _ := c.phoneLocked(time.Now())
	return c.viewed && connected
}

// Messages is the chat with peer as shown: the phone's messages and this
// client's sends, pending until the phone sent them.
func (c *Client) Messages(peer string) []device.Message {
	if c.app.Device() == nil {
		return nil // logged out: the view went with the link
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.view[peer])
}

// Chats lists the chats shown, most recent first.
func (c *Client) Chats() []device.Chat {
	if c.app.Device() == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []device.Chat
	for peer, msgs := range c.view {
		if len(msgs) == 0 {
			continue
		}
		out = append(out, device.Chat{Peer: peer, Name: c.contacts[peer], Last: msgs[len(msgs)-1], Count: len(msgs)})
	}
	slices.SortFunc(out, func(a, b device.Chat) int { return b.Last.Sent.Compare(a.Last.Sent) })
	return out
}

// SendText asks the phone to send text to user to and returns the message
// id once the request is queued for the phone at the relay. The message
// shows as pending until the phone has sent it.
func (c *Client) SendText(ctx context.Context, to, text string) (string, error) {
	id := device.NewMessageID()
	return id, c.SendTextID(ctx, id, to, text)
}

// SendTextID is SendText with the message id chosen by the caller (the
// browser app shows the message before it asks).
func (c *Client) SendTextID(ctx context.Context, id, to, text string) error {
	d := c.app.Device()
	if d == nil {
		return errors.New(c.cfg.Device.Name + ": send: not linked")
	}
	now := time.Now()
	c.upsert(to, device.Message{ID: id, From: d.Self().User, Text: text, Sent: now, Outgoing: true, Status: device.StatusPending})
	req := &pb.Mirror{Kind: &pb.Mirror_Send{Send: &pb.MirrorSend{MessageId: id, ToUser: to, Text: text, AskedUnixMs: now.UnixMilli()}}}
	if err := c.toPhone(ctx, d, req); err != nil {
		return fmt.Errorf("%s: send %s: %w", c.cfg.Device.Name, id, err)
	}
	return nil
}

// MarkRead shows peer's messages as read here. Read receipts are the
// phone's to send; the mirror channel does not carry reading yet.
func (c *Client) MarkRead(_ context.Context, peer string) error {
	c.mu.Lock()
	for i, m := range c.view[peer] {
		if !m.Outgoing {
			c.view[peer][i].Status = max(m.Status, device.StatusRead)
		}
	}
	c.mu.Unlock()
	c.changed()
	return nil
}

// Contacts are the phone's contacts, user -> name.
func (c *Client) Contacts() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.contacts)
}

// Device is the client's device while linked: its link to the relay and
// its session with the phone, nothing more.
func (c *Client) Device() *device.Device { return c.app.Device() }

// UseHere takes the client back after it was opened elsewhere.
func (c *Client) UseHere() error { return c.app.UseHere() }

// SetAbout asks the phone to set the about text, and returns once the
// request is queued for the phone at the relay.
func (c *Client) SetAbout(ctx context.Context, about string) error {
	d := c.app.Device()
	if d == nil {
		return errors.New(c.cfg.Device.Name + ": set about: not linked")
	}
	req := &pb.Mirror{Kind: &pb.Mirror_SetProfile{SetProfile: &pb.SetProfile{About: &about}}}
	if err := c.toPhone(ctx, d, req); err != nil {
		return fmt.Errorf("%s: set about: %w", c.cfg.Device.Name, err)
	}
	return nil
}

// toPhone sends one mirror message to the phone, queued at the relay.
func (c *Client) toPhone(ctx context.Context, d *device.Device, m *pb.Mirror) error {
	phone := e2e.Address{User: d.Self().User, Device: 0}
	return d.SendDirect(ctx, device.NewMessageID(), phone, &pb.Content{Kind: &pb.Content_Mirror{Mirror: m}})
}

// event asks for a hello on every connection, so the phone sends its whole
// view again: the client keeps none across a reload.
func (c *Client) event(e device.Event) {
	if e.Kind == device.Connected {
		c.mu.Lock()
		c.needHello = true
		c.mu.Unlock()
	}
}

// watchPhone says hello when the client is newly linked or connected, and
// pings the phone every third of PhoneTimeout, one ping at a time: a ping
// waits at the relay while the phone is away, and its answer says the phone
// is back.
func (c *Client) watchPhone() {
	defer c.wg.Done()
	tick := time.NewTicker(c.cfg.PhoneTimeout / 3)
	defer tick.Stop()
	var last *device.Device
	for {
		d := c.app.Device()
		if d != last {
			last = d
			c.mu.Lock()
			c.needHello, c.nonce = d != nil, 0
			if d == nil { // logged out: the view goes with the link
				c.viewed = false
				c.view, c.contacts = map[string][]device.Message{}, map[string]string{}
			}
			c.mu.Unlock()
		}
		if d != nil && d.Online() {
			c.keepInTouch(d)
		}
		select {
		case <-tick.C:
		case <-c.app.Changed():
		case <-c.stop:
			return
		}
	}
}

// keepInTouch sends the hello and ping that are due.
func (c *Client) keepInTouch(d *device.Device) {
	now := time.Now()
	c.mu.Lock()
	hello := c.needHello
	c.needHello = false
	var ping *pb.Mirror
	if c.nonce == 0 {
		c.nonce = uint64(now.UnixNano())
		c.pinged = now
		ping = &pb.Mirror{Kind: &pb.Mirror_Ping{Ping: &pb.MirrorPing{Nonce: c.nonce}}}
	}
	wasConnected, _ := c.phoneLocked(now.Add(-c.cfg.PhoneTimeout / 3))
	connected, _ := c.phoneLocked(now)
	c.mu.Unlock()
	if wasConnected != connected {
		c.changed() // the banner appears
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.PhoneTimeout)
	defer cancel()
	if hello {
		if err := c.toPhone(ctx, d, &pb.Mirror{Kind: &pb.Mirror_Hello{Hello: &pb.MirrorHello{}}}); err != nil {
			c.mu.Lock()
			c.needHello = true
			c.mu.Unlock()
		}
	}
	if ping != nil {
		if err := c.toPhone(ctx, d, ping); err != nil {
			c.mu.Lock()
			c.nonce = 0 // never queued: the next tick tries again
			c.mu.Unlock()
		}
	}
}

// content takes what the phone sends; the client stores nothing else it is
// sent (a history sync included: the phone's full view replaces it).
func (c *Client) content(from e2e.Address, _ string, content *pb.Content) (bool, error) {
	m := content.GetMirror()
	if from.Device != 0 || m == nil {
		return true, nil
	}
	switch k := m.Kind.(type) {
	case *pb.Mirror_Pong:
		c.mu.Lock()
		if k.Pong.GetNonce() == c.nonce {
			c.nonce, c.heard = 0, time.Now()
		}
		c.mu.Unlock()
		c.changed()
	case *pb.Mirror_View:
		if err := c.show(from, k.View); err != nil {
			return true, err
		}
	}
	return true, nil
}

// show applies a view from the phone. A message it has not shown before is
// reported as received, except those of the first full view after pairing:
// they were there before the client was.
func (c *Client) show(phone e2e.Address, v *pb.MirrorView) error {
	d := c.app.Device()
	if d == nil {
		return nil
	}
	st := d.State()
	_, synced, err := st.Get(keySynced)
	if err != nil {
		return err
	}
	baseline := v.GetFull() && !synced
	c.mu.Lock()
	c.heard = time.Now()
	c.viewed = c.viewed || v.GetFull()
	for _, ct := range v.GetContacts() {
		c.contacts[ct.GetUser()] = ct.GetName()
	}
	c.mu.Unlock()
	for _, mm := range v.GetMessages() {
		h := mm.GetMessage()
		msg := device.Message{ID: h.GetMessageId(), From: h.GetFromUser(), Text: h.GetText(),
			Sent: time.UnixMilli(h.GetSentUnixMs()), Outgoing: h.GetFromUser() == phone.User, Status: device.Status(h.GetStatus())}
		c.upsert(mm.GetPeer(), msg)
		_, shown, err := st.Get(prefixShown + msg.ID)
		if err != nil {
			return err
		}
		if shown {
			continue
		}
		if err := st.Put(prefixShown+msg.ID, nil); err != nil {
			return err
		}
		if !baseline {
			c.cfg.Device.Events(device.Event{Kind: device.Received, Device: c.cfg.Device.Name, Address: d.Self(), At: time.Now(),
				MessageID: msg.ID, Chat: mm.GetPeer(), From: e2e.Address{User: msg.From}, Text: msg.Text})
		}
	}
	if baseline {
		if err := st.Put(keySynced, []byte{1}); err != nil {
			return err
		}
		c.cfg.Device.Events(device.Event{Kind: device.HistoryShown, Device: c.cfg.Device.Name, Address: d.Self(), At: time.Now(), From: phone})
	}
	c.changed()
	return nil
}

// upsert shows msg in the chat with peer, or updates the one with its id.
func (c *Client) upsert(peer string, msg device.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	msgs := c.view[peer]
	if i := slices.IndexFunc(msgs, func(m device.Message) bool { return m.ID == msg.ID }); i >= 0 {
		msgs[i].Status = max(msgs[i].Status, msg.Status)
		return
	}
	c.view[peer] = append(msgs, msg)
}
