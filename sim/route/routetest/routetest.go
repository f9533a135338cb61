// Package routetest is the conformance check of the router contract
// (route.Router and route.Rendezvous): the in-process router and the NATS
// one must both pass Check.
package routetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/linksim/linksim/sim/route"
	"github.com/linksim/linksim/sim/store"
)

// Node is one relay node's router.
type Node interface {
	route.Router
	route.Rendezvous
}

// wait bounds how long an event or a scan may take to arrive.
const wait = 5 * time.Second

// Check runs the contract's checks with a and b as two nodes of one relay
// (pass the same router twice for a relay that is one process) and returns
// an error listing every misbehaviour, one per line, or nil.
func Check(a, b Node) error {
	c := &checker{a: a, b: b, run: newRun()}
	for _, check := range []func(){c.send, c.sendUser, c.replaced, c.detach, c.order, c.rendezvous} {
		check()
	}
	if len(c.errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(c.errs, "\n"))
}

type checker struct {
	a, b Node
	run  string
	errs []string
}

func newRun() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (c *checker) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

func (c *checker) addr(user string, device uint32) store.Address {
	return store.Address{User: "+" + c.run + user, Device: device}
}

// inbox collects one attachment's events.
type inbox chan route.Event

func (in inbox) fn(ev route.Event) {
	select {
	case in <- ev:
	default: // a full inbox is reported by whoever expected fewer events
	}
}

func (c *checker) attach(n Node, a store.Address) (inbox, func()) {
	in := make(inbox, 256)
	detach, err := n.Attach(a, in.fn)
	if err != nil {
		c.errorf("attach %s: %v", a, err)
		return in, func() {}
	}
	return in, detach
}

// next returns the next event of in, or false after wait.
func (in inbox) next() (route.Event, bool) {
	select {
	case ev := <-in:
		return ev, true
	case <-time.After(wait):
		return route.Event{}, false
	}
}

// expect checks that in's next event is want.
func (c *checker) expect(what string, in inbox, want route.Event) {
	got, ok := in.next()
	switch {
	case !ok:
		c.errorf("%s: no event within %v", what, wait)
	case got.Kind != want.Kind || string(got.Frame) != string(want.Frame):
		c.errorf("%s: got event %d %q, want %d %q", what, got.Kind, got.Frame, want.Kind, want.Frame)
	}
}

// quiet checks that in holds no event.
func (c *checker) quiet(what string, in inbox) {
	select {
	case ev := <-in:
		c.errorf("%s: unexpected event %d %q", what, ev.Kind, ev.Frame)
	default:
	}
}

func (c *checker) send() {
	d := c.addr("1", 3)
	in, detach := c.attach(c.b, d)
	defer detach()
	if err := c.a.Send(d, route.Event{Kind: route.Poke}); err != nil {
		c.errorf("send a poke: %v", err)
	}
	c.expect("poke from another node", in, route.Event{Kind: route.Poke})
	frame := route.Event{Kind: route.Push, Frame: []byte("frame bytes")}
	if err := c.b.Send(d, frame); err != nil {
		c.errorf("send a push: %v", err)
	}
	c.expect("push from the same node", in, frame)
	if err := c.a.Send(c.addr("nobody", 1), route.Event{Kind: route.Poke}); err != nil {
		c.errorf("send to a device attached nowhere: %v, want nil (it misses the event)", err)
	}
}

func (c *checker) sendUser() {
	phone, web, other := c.addr("2", 0), c.addr("2", 1), c.addr("3", 0)
	inPhone, d1 := c.attach(c.a, phone)
	defer d1()
	inWeb, d2 := c.attach(c.b, web)
	defer d2()
	inOther, d3 := c.attach(c.b, other)
	defer d3()
	ev := route.Event{Kind: route.Push, Frame: []byte("devices changed")}
	if err := c.a.SendUser(phone.User, ev); err != nil {
		c.errorf("send to a user: %v", err)
	}
	c.expect("user event at the device on the sending node", inPhone, ev)
	c.expect("user event at the device on the other node", inWeb, ev)
	// Events of one user come in order: once other's marker came, an event
	// meant for phone's user alone would have come too.
	marker := route.Event{Kind: route.Poke}
	c.b.Send(other, marker)
	c.expect("marker", inOther, marker)
	c.quiet("another user's device after a user event", inOther)
}

func (c *checker) replaced() {
	d := c.addr("4", 1)
	first, d1 := c.attach(c.a, d)
	defer d1()
	second, d2 := c.attach(c.b, d)
	defer d2()
	c.expect("first attachment when the device attached on another node", first, route.Event{Kind: route.Replaced})
	third, d3 := c.attach(c.b, d)
	defer d3()
	c.expect("second attachment when the device attached again on the same node", second, route.Event{Kind: route.Replaced})
	ev := route.Event{Kind: route.Push, Frame: []byte("to the newest")}
	c.a.Send(d, ev)
	c.expect("the newest attachment", third, ev)
	c.quiet("the replaced attachment", first)
	c.quiet("the replaced attachment", second)
}

func (c *checker) detach() {
	gone, stays := c.addr("5", 1), c.addr("5", 2)
	inGone, detach := c.attach(c.b, gone)
	inStays, d2 := c.attach(c.b, stays)
	defer d2()
	detach()
	c.a.Send(gone, route.Event{Kind: route.Poke})
	marker := route.Event{Kind: route.Push, Frame: []byte("marker")}
	c.a.Send(stays, marker)
	c.expect("marker to the device still attached", inStays, marker)
	c.quiet("a detached device", inGone)
}

func (c *checker) order() {
	d := c.addr("6", 0)
	in, detach := c.attach(c.b, d)
	defer detach()
	const n = 100
	for i := range n {
		c.a.Send(d, route.Event{Kind: route.Push, Frame: []byte(fmt.Sprint(i))})
	}
	for i := range n {
		got, ok := in.next()
		if !ok || string(got.Frame) != fmt.Sprint(i) {
			c.errorf("event %d of %d sent in order: got %q (arrived: %v)", i, n, got.Frame, ok)
			return
		}
	}
}

func (c *checker) rendezvous() {
	ref := "ref" + c.run
	phone := c.addr("7", 0)
	scans := make(chan route.Scan, 1)
	cancel, err := c.b.Host(ref, func(s route.Scan, reply func([]byte)) {
		scans <- s
		go func() {
			time.Sleep(50 * time.Millisecond) // the companion takes its time
			reply([]byte("linked"))
		}()
	})
	if err != nil {
		c.errorf("host a ref: %v", err)
		return
	}
	ctx, stop := context.WithTimeout(context.Background(), wait)
	defer stop()
	got, err := c.a.Scan(ctx, ref, route.Scan{Phone: phone, Request: []byte("scan")})
	if err != nil || string(got) != "linked" {
		c.errorf("scan of a ref hosted on another node = %q (%v), want the host's reply", got, err)
	}
	select {
	case s := <-scans:
		if s.Phone != phone || string(s.Request) != "scan" {
			c.errorf("the host got scan %+v, want the phone's", s)
		}
	default:
		c.errorf("the host got no scan")
	}
	if _, err := c.a.Scan(ctx, "unknown"+c.run, route.Scan{Phone: phone}); !errors.Is(err, route.ErrNoHost) {
		c.errorf("scan of an unknown ref: %v, want ErrNoHost", err)
	}
	cancel()
	if _, err := c.a.Scan(ctx, ref, route.Scan{Phone: phone}); !errors.Is(err, route.ErrNoHost) {
		c.errorf("scan of a ref no longer hosted: %v, want ErrNoHost", err)
	}
	silent := "silent" + c.run
	cancel, err = c.b.Host(silent, func(route.Scan, func([]byte)) {})
	if err != nil {
		c.errorf("host a ref: %v", err)
		return
	}
	defer cancel()
	short, stop2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer stop2()
	if _, err := c.a.Scan(short, silent, route.Scan{Phone: phone}); !errors.Is(err, context.DeadlineExceeded) {
		c.errorf("scan the host never answers: %v, want the context's deadline", err)
	}
}
