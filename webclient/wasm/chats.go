//go:build js && wasm

package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"syscall/js"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/linksim/linksim/sim/device"
)

// mainView is the main screen of one linked device: the chat list on the
// left, the open conversation on the right, and the panels over the list.
// A new device (after a logout and a new link) gets a new mainView.
type mainView struct {
	u      *ui
	dev    *device.Device
	src    source          // what the view shows: dev, or a mirror client's view of its phone
	ctx    context.Context // ends when the view closes: cancels its work
	cancel context.CancelFunc

	el       *elem
	side     *elem
	status   *elem
	phone    *elem // a mirror client's phone status: "Phone not connected"
	ringing  *ringingNotice
	chatList *elem
	noChats  *elem
	rows     map[string]*chatRow
	order    []string
	menuWrap *elem
	menuList *elem // nil until the menu is first opened
	avatar   *elem

	conv    *conversation
	profile *profilePanel
	newChat *newChatPanel

	outbox  []outgoing            // sent from here, not yet stored by the device
	sends   queue[outgoing]       // handed to the sender goroutine in order
	marking map[string]bool       // peers whose read receipts are being sent
	drafts  map[string]string     // composer text per peer
	names   map[string]string     // contact names, refreshed per render
	media   map[string]*mediaView // media messages downloaded (or being) here
}

// outgoing is a message typed here, shown as pending until the device has
// stored it (it may first wait for the sends before it).
type outgoing struct {
	id, peer, text string // text is a file's caption
	at             time.Time
	file           *outFile // nil for a text message
}

type chatRow struct {
	el, avatar, name, time, ticks, last, unread *elem
	pinned, muted, archived                     *elem
}

func newMainView(u *ui, dev *device.Device, src source) *mainView {
	ctx, cancel := context.WithCancel(context.Background())
	m := &mainView{u: u, dev: dev, src: src, ctx: ctx, cancel: cancel,
		rows: map[string]*chatRow{}, marking: map[string]bool{}, drafts: map[string]string{},
		media: map[string]*mediaView{}}
	m.sends.init()

	// The first screen shows the side bar and the chat list only: the
	// panels, the menu and the open chat's pane are built when first
	// opened, so the screen is up (and the device can start) sooner.
	m.profile = &profilePanel{m: m}
	m.newChat = &newChatPanel{m: m}
	m.side = fromHTML(sideBar)
	m.avatar = m.side.find(".avatar").setText(initial(dev.Self().User))
	m.side.find(`[data-testid="profile-open"]`).on("click", func(js.Value) { u.post(func() { m.closePanels(); m.profile.open() }) })
	m.side.find(`[data-testid="new-chat"]`).on("click", func(js.Value) { u.post(func() { m.closePanels(); m.newChat.open() }) })
	m.menuWrap = m.side.find(".menu-wrap")
	m.menuWrap.find(`[data-testid="menu"]`).on("click", func(js.Value) { u.post(m.toggleMenu) })

	m.status = el("div", "data-testid", "connection-status", "class", "conn", "data-status", "connecting", "role", "status")
	m.phone = el("div", "data-testid", "phone-status", "class", "conn phone", "data-status", "syncing", "role", "alert")
	m.phone.show(u.phoneBanner != nil)
	m.chatList = el("div", "data-testid", "chat-list", "class", "chat-list", "role", "list")
	m.chatList.on("click", func(ev js.Value) {
		if peer, ok := closest(ev, `[data-testid="chat"]`, "data-peer"); ok {
			u.post(func() { m.open(peer) })
		}
	})
	m.ringing = newRingingNotice()
	m.noChats = textEl("div", "No chats yet. Start one with the new chat button, or wait for a message.", "class", "no-chats")
	m.side.add(m.status, m.phone, m.ringing.el, m.chatList, m.noChats)
	m.conv = newConversation(m)
	m.el = el("div", "class", "main").add(m.side, m.conv.pane)
	u.spawn("send", m.sender)
	m.profile.fetch(false) // the push name, for the avatar and the panel
	return m
}

// sideBar is the side bar's fixed markup: the bar over the chat list.
const sideBar = `<div class="side"><header class="bar side-bar">` +
	`<button data-testid="profile-open" class="icon-btn avatar-btn" type="button" title="Profile"><span class="avatar"></span></button>` +
	`<div class="bar-actions">` +
	`<button data-testid="new-chat" class="icon-btn" type="button" title="New chat">` + iconNewChat + `</button>` +
	`<div class="menu-wrap"><button data-testid="menu" class="icon-btn" type="button" title="Menu">` + iconMenu + `</button></div>` +
	`</div></header></div>`

func (m *mainView) close() {
	m.cancel()
	m.el.remove()
}

// toggleMenu opens the menu, or closes it when open.
func (m *mainView) toggleMenu() {
	if m.menuList == nil {
		logout := textEl("button", "Log out", "data-testid", "logout", "class", "menu-item", "type", "button")
		logout.on("click", func(js.Value) { m.u.post(m.logout) })
		m.menuList = el("div", "data-testid", "menu-list", "class", "menu-list", "role", "menu").add(logout)
		m.menuWrap.add(m.menuList)
		return
	}
	m.menuList.show(m.menuList.hidden)
}

// closeMenu closes the menu if open.
func (m *mainView) closeMenu() {
	if m.menuList != nil {
		m.menuList.show(false)
	}
}

func (m *mainView) closePanels() {
	m.closeMenu()
	m.profile.close()
	m.newChat.close()
}

func (m *mainView) render() {
	status, text := "connecting", "Connecting…"
	switch {
	case m.dev.Online():
		status, text = "online", "Online"
	case m.u.everOnline(m.dev):
		status, text = "reconnecting", "Reconnecting… messages are sent once the connection is back"
	}
	m.status.attr("data-status", status).setText(text)
	if m.u.phoneBanner != nil {
		status, text := m.u.phoneBanner()
		m.phone.attr("data-status", status).setText(text).show(text != "")
		if text != "" { // it counts the seconds the phone has not answered
			m.u.refreshAt(time.Now().Add(time.Second))
		}
	}
	m.names = m.src.Contacts()
	if until, ok := m.ringing.render(m.dev.Calls(), m.nameOf); ok {
		m.u.refreshAt(until)
	}
	m.renderChats()
	m.conv.render()
	if m.newChat.isOpen() {
		m.newChat.render()
	}
}

func (m *mainView) renderChats() {
	chats := m.src.Chats()
	if len(m.rows) == 0 && len(chats) > 0 {
		mark("chats.listed") // the harness times pairing up to here
		markPainted.Invoke("chats.painted")
	}
	now := time.Now()
	seen := make(map[string]bool, len(chats))
	order := make([]string, 0, len(chats))
	for _, c := range chats {
		seen[c.Peer] = true
		order = append(order, c.Peer)
		r := m.rows[c.Peer]
		if r == nil {
			r = newChatRow(c.Peer)
			m.rows[c.Peer] = r
		}
		r.name.setText(c.Name)
		r.avatar.setText(initial(c.Name))
		r.time.setText(chatTime(c.Last.Sent, now))
		if !c.Last.Sent.IsZero() { // "15:04" becomes "Yesterday"
			m.u.refreshAt(nextDay(now))
		}
		last := c.Last.Text
		if last == "" && c.Last.Media != nil {
			last = mediaLabel(c.Last.Media)
		}
		r.last.setText(last)
		if c.Last.Outgoing {
			t, class := m.tickFor(c.Last.Status)
			r.ticks.setText(t).attr("class", "chat-ticks "+class).show(true)
		} else {
			r.ticks.show(false)
		}
		unread := ""
		if c.Unread > 0 {
			unread = strconv.Itoa(c.Unread)
		}
		r.unread.setText(unread).show(c.Unread > 0)
		// Synced from the user's other devices as well as set here.
		r.el.attr("data-pinned", strconv.FormatBool(c.Pinned)).
			attr("data-muted", strconv.FormatBool(c.Muted)).
			attr("data-archived", strconv.FormatBool(c.Archived))
		r.pinned.show(c.Pinned)
		r.muted.show(c.Muted)
		r.archived.show(c.Archived)
		r.el.attr("aria-selected", strconv.FormatBool(c.Peer == m.conv.peer))
	}
	for peer, r := range m.rows {
		if !seen[peer] {
			r.el.remove()
			delete(m.rows, peer)
		}
	}
	if !slices.Equal(order, m.order) {
		for _, peer := range order { // appending moves a row to the end
			m.chatList.add(m.rows[peer].el)
		}
		m.order = order
	}
	m.noChats.show(len(chats) == 0)
}

func newChatRow(peer string) *chatRow {
	r := &chatRow{
		avatar: el("div", "class", "avatar"),
		name:   el("span", "data-testid", "chat-name", "class", "chat-name"),
		time:   el("span", "data-testid", "chat-time", "class", "chat-time"),
		ticks:  el("span", "class", "chat-ticks"),
		last:   el("span", "data-testid", "chat-last", "class", "chat-last"),
		unread: el("span", "data-testid", "chat-unread", "class", "chat-unread"),
		// Labels, not controls: what a chat is set to on any of the
		// user's devices.
		pinned:   textEl("span", "Pinned", "data-testid", "chat-pinned", "class", "chat-flag pinned", "title", "Pinned"),
		muted:    textEl("span", "Muted", "data-testid", "chat-muted", "class", "chat-flag muted", "title", "Muted"),
		archived: textEl("span", "Archived", "data-testid", "chat-archived", "class", "chat-flag archived", "title", "Archived"),
	}
	r.el = el("div", "data-testid", "chat", "data-peer", peer, "class", "chat", "role", "listitem", "tabindex", "0").add(
		r.avatar,
		el("div", "class", "chat-body").add(
			el("div", "class", "chat-top").add(r.name, r.time),
			el("div", "class", "chat-bottom").add(r.ticks, r.last, r.archived, r.muted, r.pinned, r.unread),
		),
	)
	return r
}

// open shows the conversation with peer.
func (m *mainView) open(peer string) {
	m.closePanels()
	if m.conv.peer == peer {
		m.conv.focus()
		return
	}
	if m.conv.peer != "" {
		m.drafts[m.conv.peer] = m.conv.composer.value()
	}
	console("log", "open chat "+peer)
	m.conv.reset(peer, m.drafts[peer])
	m.render()
	m.conv.focus()
}

// nameOf is how a user is shown: the contact name, else the number.
func (m *mainView) nameOf(user string) string {
	if n := m.names[user]; n != "" {
		return n
	}
	return user
}

// markRead sends read receipts for peer's chat once at a time.
func (m *mainView) markRead(peer string) {
	if m.marking[peer] {
		return
	}
	m.marking[peer] = true
	m.u.spawn("mark read", func() {
		err := m.src.MarkRead(m.ctx, peer)
		m.u.post(func() {
			delete(m.marking, peer)
			if err != nil && m.ctx.Err() == nil {
				m.u.showError(fmt.Sprintf("Could not mark the chat read: %v", err))
			}
		})
	})
}

// send queues text to peer.
func (m *mainView) send(peer, text string) { m.queue(peer, text, nil) }

// queue queues text, or file f with text as its caption, to peer.
func (m *mainView) queue(peer, text string, f *outFile) {
	o := outgoing{id: device.NewMessageID(), peer: peer, text: text, at: time.Now(), file: f}
	m.outbox = append(m.outbox, o)
	m.sends.push(o)
	m.drafts[peer] = ""
	if peer == m.conv.peer {
		m.conv.stick = true
	}
}

// sender sends queued messages one after another, in the order typed: a
// send waits while the device is offline, and the ones after it wait too.
func (m *mainView) sender() {
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.sends.wake:
		}
		for _, o := range m.sends.take() {
			var err error
			if o.file != nil {
				err = m.sendFile(o)
			} else {
				err = m.src.SendTextID(m.ctx, o.id, o.peer, o.text)
			}
			if err != nil {
				console("error", fmt.Sprintf("send msg %s to %s: %v", o.id, o.peer, err))
			}
			m.u.post(func() {
				m.outbox = slices.DeleteFunc(m.outbox, func(x outgoing) bool { return x.id == o.id })
				if err != nil && m.ctx.Err() == nil {
					m.u.showError(fmt.Sprintf("Message not sent: %v", err))
				}
			})
		}
	}
}

func (m *mainView) logout() {
	m.closePanels()
	console("log", "log out")
	m.u.spawn("log out", func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := m.u.app.Logout(ctx); err != nil {
			m.u.post(func() { m.u.showError(fmt.Sprintf("Log out failed: %v", err)) })
		}
	})
}

// tickFor is the tick mark of an outgoing message and its CSS class.
func (m *mainView) tickFor(s device.Status) (string, string) {
	switch s {
	case device.StatusPending:
		return "", "pending"
	case device.StatusSent:
		return "✓", "sent"
	case device.StatusDelivered:
		return "✓✓", "delivered"
	default:
		return "✓✓", "read"
	}
}

// chatTime is a chat's time as the list shows it: the time today ("15:04"),
// else "Yesterday", the weekday within a week, or the date ("2006-01-02").
// It is written without time.Format, whose first call in a page took 5-15
// ms of the chat list's first render (docs/performance.md, "QR visible →
// chats shown, session 9").
func chatTime(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.Local()
	y, mo, d := now.Date()
	today := time.Date(y, mo, d, 0, 0, 0, 0, now.Location())
	switch {
	case !t.Before(today):
		h, m, _ := t.Clock()
		return digits(h, 2) + ":" + digits(m, 2)
	case !t.Before(today.AddDate(0, 0, -1)):
		return "Yesterday"
	case !t.Before(today.AddDate(0, 0, -6)):
		return t.Weekday().String()
	default:
		y, mo, d := t.Date()
		return digits(y, 4) + "-" + digits(int(mo), 2) + "-" + digits(d, 2)
	}
}

// digits is n in at least width digits, zeros in front, as time.Format
// writes it (a year before 1 too: sentTime's earliest, west of UTC).
func digits(n, width int) string {
	if n < 0 {
		return "-" + digits(-n, width)
	}
	s := strconv.Itoa(n)
	for len(s) < width {
		s = "0" + s
	}
	return s
}

// nextDay is the start of the local day after now's.
func nextDay(now time.Time) time.Time {
	y, mo, d := now.Date()
	return time.Date(y, mo, d+1, 0, 0, 0, 0, now.Location())
}

// initial is the letter an avatar shows.
func initial(name string) string {
	for _, r := range name {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return string(unicode.ToUpper(r))
		}
	}
	if r, _ := utf8.DecodeRuneInString(name); r != utf8.RuneError {
		return string(r)
	}
	return "?"
}
