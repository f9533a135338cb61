//go:build js && wasm

package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"syscall/js"
	"time"
)

// profilePanel shows this user's push name and about text, and edits the
// about text. It slides over the chat list.
type profilePanel struct {
	m         *mainView
	el        *elem // nil until first opened
	bigAvatar *elem
	name      *elem
	user      *elem
	about     *elem
	input     *elem
	save      *elem
	saving    bool

	pushName, aboutText string // as last loaded, for the panel built later
}

// build makes the panel's elements and puts them over the chat list.
func (p *profilePanel) build() {
	m := p.m
	back := el("button", "data-testid", "profile-close", "class", "icon-btn", "type", "button", "title", "Back").svg(iconBack)
	back.on("click", func(js.Value) { m.u.post(func() { p.el.show(false) }) })
	p.bigAvatar = el("span", "class", "avatar big")
	p.name = el("div", "data-testid", "profile-name", "class", "profile-value")
	p.user = textEl("div", m.dev.Self().User, "data-testid", "profile-user", "class", "profile-value")
	p.about = el("div", "data-testid", "about", "class", "profile-value")
	p.input = el("input", "data-testid", "about-input", "class", "text-input", "type", "text",
		"maxlength", "139", "placeholder", "Your about text", "aria-label", "About")
	// The handlers take the text when the key or click comes.
	p.input.on("keydown", func(ev js.Value) {
		if ev.Get("key").String() == "Enter" {
			ev.Call("preventDefault")
			about := p.input.value()
			m.u.post(func() { p.submit(about) })
		}
	})
	p.save = textEl("button", "Save", "data-testid", "about-save", "class", "button", "type", "button")
	p.save.on("click", func(js.Value) {
		about := p.input.value()
		m.u.post(func() { p.submit(about) })
	})
	p.el = el("div", "data-testid", "profile", "class", "panel").add(
		el("header", "class", "panel-bar").add(back, textEl("span", "Profile", "class", "panel-title")),
		el("div", "class", "panel-body").add(
			el("div", "class", "profile-avatar").add(p.bigAvatar),
			textEl("label", "Your name", "class", "profile-label"), p.name,
			textEl("label", "Phone number", "class", "profile-label"), p.user,
			textEl("label", "About", "class", "profile-label"), p.about,
			el("div", "class", "about-edit").add(p.input, p.save),
		),
	)
	p.show()
	m.side.add(p.el)
}

// show puts the profile last loaded in the panel (the user until loaded).
func (p *profilePanel) show() {
	name := p.pushName
	if name == "" {
		name = p.m.dev.Self().User
	}
	p.name.setText(p.pushName)
	p.bigAvatar.setText(initial(name))
	p.about.setText(p.aboutText)
}

// open shows the panel and fetches the profile from the relay.
func (p *profilePanel) open() {
	if p.el == nil {
		p.build()
	}
	p.el.show(true)
	p.input.setValue("")
	p.fetch(true)
}

// fetch loads the user's profile; fill puts the about text in the input
// when nothing was typed there yet.
func (p *profilePanel) fetch(fill bool) {
	m := p.m
	m.u.spawn("load profile", func() {
		ctx, cancel := context.WithTimeout(m.ctx, 15*time.Second)
		defer cancel()
		prof, err := m.dev.Profile(ctx, m.dev.Self().User)
		m.u.post(func() {
			if err != nil {
				if m.ctx.Err() == nil {
					m.u.showError(fmt.Sprintf("Could not load the profile: %v", err))
				}
				return
			}
			name := prof.GetPushName()
			if name == "" {
				name = m.dev.Self().User
			}
			m.avatar.setText(initial(name))
			p.pushName, p.aboutText = name, prof.GetAbout()
			if p.el == nil {
				return
			}
			p.show()
			if fill && p.input.value() == "" {
				p.input.setValue(prof.GetAbout())
			}
		})
	})
}

func (p *profilePanel) close() {
	if p.el != nil {
		p.el.show(false)
	}
}

func (p *profilePanel) submit(about string) {
	if p.saving {
		return
	}
	m := p.m
	p.saving = true
	p.save.Set("disabled", true)
	console("log", "set about text")
	m.u.spawn("set about", func() {
		ctx, cancel := context.WithTimeout(m.ctx, 15*time.Second)
		defer cancel()
		err := m.dev.SetAbout(ctx, about)
		m.u.post(func() {
			p.saving = false
			p.save.Set("disabled", false)
			if err != nil {
				m.u.showError(fmt.Sprintf("Could not save the about text: %v", err))
				return
			}
			p.about.setText(about)
			p.fetch(false)
		})
	})
}

// newChatPanel starts a chat with a contact or with any phone number.
type newChatPanel struct {
	m        *mainView
	el       *elem // nil until first opened
	input    *elem
	contacts *elem
	shown    []string // "user\x00name" of the listed contacts
}

// isPhoneNumber reports whether user is + and 6 to 15 digits (by hand:
// regexp would add a quarter of a megabyte to app.wasm).
func isPhoneNumber(user string) bool {
	digits := strings.TrimPrefix(user, "+")
	if len(digits) == len(user) || len(digits) < 6 || len(digits) > 15 {
		return false
	}
	return strings.Trim(digits, "0123456789") == ""
}

// build makes the panel's elements and puts them over the chat list.
func (n *newChatPanel) build() {
	m := n.m
	back := el("button", "data-testid", "new-chat-close", "class", "icon-btn", "type", "button", "title", "Back").svg(iconBack)
	back.on("click", func(js.Value) { m.u.post(func() { n.el.show(false) }) })
	n.input = el("input", "data-testid", "new-chat-user", "class", "text-input", "type", "tel",
		"placeholder", "Phone number, e.g. +15550100", "aria-label", "Phone number")
	n.input.on("keydown", func(ev js.Value) {
		if ev.Get("key").String() == "Enter" {
			ev.Call("preventDefault")
			user := n.input.value()
			m.u.post(func() { n.submit(user) })
		}
	})
	start := textEl("button", "Chat", "data-testid", "new-chat-start", "class", "button", "type", "button")
	start.on("click", func(js.Value) {
		user := n.input.value()
		m.u.post(func() { n.submit(user) })
	})
	n.contacts = el("div", "data-testid", "contacts", "class", "contacts", "role", "list")
	n.contacts.on("click", func(ev js.Value) {
		if user, ok := closest(ev, `[data-testid="contact"]`, "data-user"); ok {
			m.u.post(func() { m.open(user) })
		}
	})
	n.el = el("div", "data-testid", "new-chat-panel", "class", "panel").add(
		el("header", "class", "panel-bar").add(back, textEl("span", "New chat", "class", "panel-title")),
		el("div", "class", "panel-body").add(
			el("div", "class", "about-edit").add(n.input, start),
			textEl("div", "Contacts", "class", "profile-label"),
			n.contacts,
		),
	)
	m.side.add(n.el)
}

func (n *newChatPanel) open() {
	if n.el == nil {
		n.build()
	}
	n.el.show(true)
	n.input.setValue("")
	n.render()
	n.input.Call("focus")
}

func (n *newChatPanel) close() {
	if n.el != nil {
		n.el.show(false)
	}
}

// isOpen reports whether the panel shows.
func (n *newChatPanel) isOpen() bool { return n.el != nil && !n.el.hidden }

func (n *newChatPanel) submit(user string) {
	user = strings.TrimSpace(user)
	switch {
	case !isPhoneNumber(user):
		n.m.u.showError(fmt.Sprintf("%q is not a phone number: write it as + and 6 to 15 digits", user))
	case user == n.m.dev.Self().User:
		n.m.u.showError("That is your own number")
	default:
		n.m.open(user)
	}
}

// render lists the contacts the device knows, by name.
func (n *newChatPanel) render() {
	self := n.m.dev.Self().User
	var list []string
	for user, name := range n.m.names {
		if user != self {
			list = append(list, user+"\x00"+name)
		}
	}
	slices.SortFunc(list, func(a, b string) int {
		return strings.Compare(strings.ToLower(a[strings.IndexByte(a, 0)+1:])+a, strings.ToLower(b[strings.IndexByte(b, 0)+1:])+b)
	})
	if slices.Equal(list, n.shown) {
		return
	}
	n.shown = list
	n.contacts.clear()
	for _, entry := range list {
		user, name, _ := strings.Cut(entry, "\x00")
		n.contacts.add(el("div", "data-testid", "contact", "data-user", user, "class", "chat contact", "role", "listitem", "tabindex", "0").add(
			textEl("div", initial(name), "class", "avatar"),
			el("div", "class", "chat-body").add(
				el("div", "class", "chat-top").add(textEl("span", name, "class", "chat-name")),
				el("div", "class", "chat-bottom").add(textEl("span", user, "class", "chat-last")),
			),
		))
	}
	if len(list) == 0 {
		n.contacts.add(textEl("div", "No contacts yet: type a number above.", "class", "no-chats"))
	}
}

// Icons: fixed SVG markup, never built from data.
const (
	iconMenu    = `<svg viewBox="0 0 24 24" width="24" height="24" aria-hidden="true"><circle cx="12" cy="5" r="2"/><circle cx="12" cy="12" r="2"/><circle cx="12" cy="19" r="2"/></svg>`
	iconNewChat = `<svg viewBox="0 0 24 24" width="24" height="24" aria-hidden="true"><path d="M4 4h16v12H7l-3 3z" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round"/><path d="M12 7v6M9 10h6" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>`
	iconBack    = `<svg viewBox="0 0 24 24" width="24" height="24" aria-hidden="true"><path d="M20 12H5M11 5l-7 7 7 7" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"/></svg>`
	iconSend    = `<svg viewBox="0 0 24 24" width="24" height="24" aria-hidden="true"><path d="M3 20.5 21 12 3 3.5l.01 6.6L15 12 3.01 13.9z"/></svg>`
)
