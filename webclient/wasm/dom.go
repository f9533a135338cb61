//go:build js && wasm

package main

import (
	"syscall/js"
)

// The render layer: elements built once and updated in place. Each elem
// remembers what it last wrote, so an unchanged render touches no DOM node
// (nothing flickers, a field being typed in is never rebuilt, and whoever
// watches the page for mutations sees only real changes).

var (
	global   = js.Global()
	document = global.Get("document")
)

type elem struct {
	js.Value
	text   string
	attrs  map[string]string
	hidden bool
}

// el makes an element; attrs are name, value pairs ("class" among them).
func el(tag string, attrs ...string) *elem {
	e := &elem{Value: document.Call("createElement", tag), attrs: map[string]string{}}
	for i := 0; i+1 < len(attrs); i += 2 {
		e.attr(attrs[i], attrs[i+1])
	}
	return e
}

// textEl makes an element holding text.
func textEl(tag, text string, attrs ...string) *elem {
	e := el(tag, attrs...)
	e.setText(text)
	return e
}

// fromHTML makes the element that fixed markup (never user data: it is
// not escaped) describes: one call into JavaScript for a whole static
// subtree instead of one per element and attribute.
func fromHTML(markup string) *elem {
	t := document.Call("createElement", "template")
	t.Set("innerHTML", markup)
	return wrap(t.Get("content").Get("firstElementChild"))
}

// find is e's first descendant matching selector.
func (e *elem) find(selector string) *elem {
	return wrap(e.Call("querySelector", selector))
}

// wrap adopts an element that already is in the page.
func wrap(v js.Value) *elem {
	return &elem{Value: v, attrs: map[string]string{}, text: v.Get("textContent").String()}
}

func (e *elem) attr(name, value string) *elem {
	if cur, ok := e.attrs[name]; ok && cur == value {
		return e
	}
	e.attrs[name] = value
	e.Call("setAttribute", name, value)
	return e
}

func (e *elem) setText(s string) *elem {
	if e.text == s {
		return e
	}
	e.text = s
	e.Set("textContent", s)
	return e
}

// show sets or clears the hidden attribute.
func (e *elem) show(on bool) *elem {
	if e.hidden == !on {
		return e
	}
	e.hidden = !on
	e.Set("hidden", !on)
	return e
}

func (e *elem) add(children ...*elem) *elem {
	for _, c := range children {
		e.Call("appendChild", c.Value)
	}
	return e
}

func (e *elem) remove() { e.Call("remove") }

// clear removes every child.
func (e *elem) clear() {
	e.Set("textContent", "")
	e.text = ""
}

// svg sets the element's content to a fixed icon (never user data).
func (e *elem) svg(markup string) *elem {
	e.Set("innerHTML", markup)
	return e
}

// value is the current value of an input or textarea.
func (e *elem) value() string { return e.Get("value").String() }

func (e *elem) setValue(s string) { e.Set("value", s) }

// on listens for an event. fn runs inside the JavaScript callback, so it
// must not block: it reads the event and posts work to the UI loop.
func (e *elem) on(event string, fn func(ev js.Value)) {
	listen(e.Value, event, fn)
}

func listen(target js.Value, event string, fn func(ev js.Value)) {
	f := js.FuncOf(func(_ js.Value, args []js.Value) any {
		fn(args[0])
		return nil
	})
	// Never released: listeners live as long as the elements they are on,
	// which are built once per page.
	target.Call("addEventListener", event, f)
}

// closest returns the value of attr on the nearest ancestor of the event's
// target (or the target) matching selector, and whether there is one.
func closest(ev js.Value, selector, attr string) (string, bool) {
	t := ev.Get("target")
	if t.IsNull() || t.IsUndefined() || t.Get("closest").IsUndefined() {
		return "", false
	}
	n := t.Call("closest", selector)
	if n.IsNull() {
		return "", false
	}
	if attr == "" {
		return "", true
	}
	v := n.Call("getAttribute", attr)
	if v.IsNull() {
		return "", true
	}
	return v.String(), true
}
