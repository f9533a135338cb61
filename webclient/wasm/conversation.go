//go:build js && wasm

package main

import (
	"strconv"
	"strings"
	"syscall/js"

	"github.com/linksim/linksim/sim/device"
)

// conversation is the right pane: the open chat's messages and the
// composer, or an introduction while no chat is open.
type conversation struct {
	m     *mainView
	pane  *elem
	intro *elem

	el       *elem // nil until a chat is first opened
	avatar   *elem
	name     *elem
	sub      *elem
	list     *elem
	composer *elem

	peer  string
	rows  map[string]*msgRow
	order []string // message ids in the list, top to bottom
	stick bool     // scroll to the newest message at the next render
}

type msgRow struct {
	el, text, time, ticks *elem
	media                 *mediaRow // nil for a text message
}

func newConversation(m *mainView) *conversation {
	c := &conversation{m: m, rows: map[string]*msgRow{}}
	c.intro = fromHTML(intro)
	c.pane = el("div", "class", "pane").add(c.intro)
	return c
}

// intro is what the pane shows while no chat is open.
const intro = `<div class="intro"><div class="intro-title">linksim web</div>` +
	`<p>Send and receive messages from your computer. Your phone links this browser; messages reach every device of both users.</p>` +
	`<p class="intro-lock">End-to-end encrypted</p></div>`

// build makes the open chat's elements, in the pane.
func (c *conversation) build() {
	c.avatar = el("div", "class", "avatar")
	c.name = el("div", "data-testid", "conversation-name", "class", "conv-name")
	c.sub = el("div", "class", "conv-sub")
	c.list = el("div", "data-testid", "messages", "class", "messages", "role", "log")
	c.composer = el("textarea", "data-testid", "composer", "class", "composer-input", "rows", "1",
		"placeholder", "Type a message", "aria-label", "Type a message")
	// Enter sends, Shift+Enter starts a new line. A driver that types "\r"
	// may deliver the line break as an input of its own after the Enter
	// key: that one is dropped too.
	enterSent := false
	c.composer.on("keydown", func(ev js.Value) {
		enterSent = ev.Get("key").String() == "Enter" && !ev.Get("shiftKey").Bool() && !ev.Get("isComposing").Bool()
		if enterSent {
			ev.Call("preventDefault")
			c.submit()
		}
	})
	c.composer.on("beforeinput", func(ev js.Value) {
		kind := ev.Get("inputType").String()
		if enterSent && (kind == "insertLineBreak" || kind == "insertParagraph") {
			ev.Call("preventDefault")
		}
		enterSent = false
	})
	send := el("button", "data-testid", "send", "class", "icon-btn send", "type", "button", "title", "Send", "aria-label", "Send").svg(iconSend)
	send.on("click", func(js.Value) { c.submit() })
	attach, attachInput := c.newAttach()
	c.list.on("click", func(ev js.Value) {
		if _, ok := closest(ev, `[data-testid="media-download"]`, ""); ok {
			if id, ok := closest(ev, `[data-testid="message"]`, "data-id"); ok {
				c.m.u.post(func() { c.m.download(id) })
			}
		}
	})
	c.el = el("div", "data-testid", "conversation", "class", "conversation").add(
		el("header", "class", "bar conv-bar").add(c.avatar, el("div", "class", "conv-title").add(c.name, c.sub)),
		c.list,
		el("footer", "class", "composer").add(attach, attachInput, c.composer, send),
	)
	c.pane.add(c.el)
}

// reset shows the chat with peer, its composer holding draft.
func (c *conversation) reset(peer, draft string) {
	if c.el == nil {
		c.build()
	}
	c.peer = peer
	c.rows = map[string]*msgRow{}
	c.order = nil
	c.list.clear()
	c.el.attr("data-peer", peer)
	c.composer.setValue(draft)
	c.stick = true
}

func (c *conversation) focus() { c.composer.Call("focus") }

// submit sends what the composer holds. It runs inside the key or click
// handler, so it takes the text typed so far and empties the composer at
// once: keys typed next start the next message, however soon they come.
func (c *conversation) submit() {
	text := strings.TrimSpace(c.composer.value())
	peer := c.el.Call("getAttribute", "data-peer")
	if text == "" || peer.IsNull() {
		return
	}
	c.composer.setValue("")
	c.m.u.post(func() { c.m.send(peer.String(), text) })
}

func (c *conversation) render() {
	c.intro.show(c.peer == "")
	if c.peer == "" { // else c.el is built, and shows
		return
	}
	m := c.m
	name := m.nameOf(c.peer)
	c.name.setText(name)
	c.avatar.setText(initial(name))
	sub := ""
	if name != c.peer {
		sub = c.peer
	}
	c.sub.setText(sub)

	msgs := m.src.Messages(c.peer)
	stored := make(map[string]bool, len(msgs))
	for _, msg := range msgs {
		stored[msg.ID] = true
	}
	for _, o := range m.outbox {
		if o.peer == c.peer && !stored[o.id] {
			msg := device.Message{ID: o.id, Text: o.text, Sent: o.at, Outgoing: true, Status: device.StatusPending}
			if f := o.file; f != nil {
				msg.Media = &device.Media{Type: f.typ, MimeType: f.mime, FileName: f.name, Size: int64(len(f.data))}
			}
			msgs = append(msgs, msg)
		}
	}

	list := c.list.Value
	atBottom := list.Get("scrollHeight").Int()-list.Get("scrollTop").Int()-list.Get("clientHeight").Int() < 64
	order := make([]string, 0, len(msgs))
	unread := false
	for _, msg := range msgs {
		order = append(order, msg.ID)
		r := c.rows[msg.ID]
		if r == nil {
			r = newMsgRow(msg)
			c.rows[msg.ID] = r
		}
		status, ticks, class := "received", "", "ticks"
		if msg.Outgoing {
			var tclass string
			ticks, tclass = m.tickFor(msg.Status)
			status = tclass
			class += " " + tclass
		} else if msg.Status >= device.StatusRead {
			status = "read"
		} else {
			unread = true
		}
		r.el.attr("data-status", status)
		r.ticks.setText(ticks).attr("class", class)
		if msg.Media != nil && r.media != nil {
			v := m.media[msg.ID]
			state, sum, tries := "", "", 0
			if v != nil {
				state, sum, tries = v.state, v.sha256, v.tries
			}
			r.el.attr("data-media-state", state).attr("data-media-sha256", sum).attr("data-media-tries", strconv.Itoa(tries))
			r.media.render(msg, msg.Status == device.StatusPending, v)
		}
	}
	grew := c.place(order)
	if c.stick || grew && atBottom {
		list.Set("scrollTop", list.Get("scrollHeight"))
		c.stick = false
	}
	if unread {
		m.markRead(c.peer)
	}
}

// place puts the rows in order: new ones are appended; anything else (a
// message arriving before one still waiting to be sent) re-appends all.
// It reports whether rows were added.
func (c *conversation) place(order []string) bool {
	keep := make(map[string]bool, len(order))
	for _, id := range order {
		keep[id] = true
	}
	for id, r := range c.rows {
		if !keep[id] {
			r.el.remove()
			delete(c.rows, id)
		}
	}
	grew := len(order) > len(c.order)
	switch {
	case len(order) >= len(c.order) && equalPrefix(order, c.order):
		for _, id := range order[len(c.order):] {
			c.list.add(c.rows[id].el)
		}
	default:
		for _, id := range order {
			c.list.add(c.rows[id].el)
		}
	}
	c.order = order
	return grew
}

func equalPrefix(long, short []string) bool {
	for i := range short {
		if long[i] != short[i] {
			return false
		}
	}
	return true
}

func newMsgRow(msg device.Message) *msgRow {
	dir := "in"
	if msg.Outgoing {
		dir = "out"
	}
	r := &msgRow{
		text:  textEl("span", msg.Text, "data-testid", "message-text", "class", "message-text"),
		time:  textEl("span", msg.Sent.Local().Format("15:04"), "data-testid", "message-time", "class", "message-time"),
		ticks: el("span", "data-testid", "message-ticks", "class", "ticks"),
	}
	bubble := el("div", "class", "bubble")
	r.el = el("div", "data-testid", "message", "data-id", msg.ID, "data-direction", dir, "class", "message "+dir).add(bubble)
	if msg.Media != nil {
		r.media = newMediaRow(msg.Media.Type)
		r.el.attr("data-media", mediaKind(msg.Media.Type))
		bubble.add(r.media.el)
	}
	bubble.add(r.text, el("span", "class", "meta").add(r.time, r.ticks))
	return r
}
