package harness

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/linksim/linksim/phone"
	"github.com/linksim/linksim/reports"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/webclient/mirror"
)

// Steps of the mirror topology and of web clients under faults.
const (
	// StepMirrorSent is a mirror web client's send until its phone sent
	// the message: how long the send waited, pending, for the phone.
	StepMirrorSent = "mirror.sent"
	// StepWebUnusable is how long a web client was unusable (not linked,
	// not connected, or its phone not answering) during one fault.
	StepWebUnusable = "web.unusable"
)

// mirrorWeb is a native mirror web client (webclient/mirror).
type mirrorWeb struct {
	*mirror.Client
	name string
	env  *Env
}

func (w *mirrorWeb) Name() string     { return w.name }
func (w *mirrorWeb) Topology() string { return Mirror }

// SendText asks the phone to send, and notes the request: the ledger then
// holds the phone to it (Env.Check). It is noted first: the phone may send
// before the relay's ack of the request comes back.
func (w *mirrorWeb) SendText(ctx context.Context, to, text string) (string, error) {
	id := device.NewMessageID()
	w.env.rec.ask(w.name, id, time.Now())
	if err := w.Client.SendTextID(ctx, id, to, text); err != nil {
		w.env.rec.unask(id)
		return "", err
	}
	return id, nil
}

// Logout unlinks the client; from then on the ledger owes it nothing.
func (w *mirrorWeb) Logout(ctx context.Context) error {
	if err := w.Client.Logout(ctx); err != nil {
		return err
	}
	w.env.rec.unmirrored(w.name)
	return nil
}

// mirrorAsk is one send a mirror web client asked its phone for.
type mirrorAsk struct {
	web string
	at  time.Time
}

// openMirror starts a mirror web client named name on state st, links it
// to p by its QR code unless st holds a link, and waits until it shows the
// phone's view. From then on the ledger owes it every message of p.
func (e *Env) openMirror(ctx context.Context, name string, st kv.KV, p *phone.Phone) (WebClient, error) {
	timeout := e.cfg.PhoneTimeout
	if timeout == 0 {
		timeout = time.Second
	}
	c := mirror.New(mirror.Config{Device: e.DeviceConfig(name, st), PhoneTimeout: timeout})
	if err := c.Start(); err != nil {
		return nil, err
	}
	e.t.Cleanup(c.Close)
	if _, linked := c.Self(); !linked {
		start, err := e.scan(ctx, p, c)
		if err != nil {
			return nil, err
		}
		if err := c.WaitLinked(ctx); err != nil {
			return nil, err
		}
		e.rec.rec.Step(StepLinked, name, time.Since(start))
	}
	self, _ := c.Self()
	e.rec.learn(self, name)
	w := &mirrorWeb{Client: c, name: name, env: e}
	if err := WaitUsable(ctx, w); err != nil {
		return nil, err
	}
	e.rec.mirrored(p.Self(), name)
	return w, nil
}

// mirrored notes that phone serves the mirror web client named web.
func (r *recorder) mirrored(phone e2e.Address, web string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.mirrors[phone], web) {
		r.mirrors[phone] = append(r.mirrors[phone], web)
	}
}

func (r *recorder) unmirrored(web string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for phone, webs := range r.mirrors {
		r.mirrors[phone] = slices.DeleteFunc(webs, func(w string) bool { return w == web })
	}
}

func (r *recorder) ask(web, id string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked[id] = mirrorAsk{web: web, at: at}
}

// unask forgets a request that never reached the relay.
func (r *recorder) unask(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.asked, id)
}

// withMirrors adds to the targets of a sent message the mirror web clients
// of its sender's phone and of every target phone, and records how long a
// send a mirror client asked for waited.
func (r *recorder) withMirrors(e device.Event, to []string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a, ok := r.asked[e.MessageID]; ok && e.Address.Device == 0 {
		r.rec.Step(StepMirrorSent, a.web, e.At.Sub(a.at))
		delete(r.asked, e.MessageID) // the phone kept its word
	}
	to = append(to, r.mirrors[e.Address]...)
	for _, t := range e.Targets {
		to = append(to, r.mirrors[t]...)
	}
	return to
}

// unsent lists the sends mirror web clients asked for that no phone has
// sent: a phone that drops a request fails the ledger. A request noted
// after its phone sent it (a browser's: its id shows only once asked) is
// found in the ledger instead.
func (r *recorder) unsent(l *reports.Ledger) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var lines []string
	for id, a := range r.asked {
		if _, ok := l.Message(id); !ok {
			lines = append(lines, fmt.Sprintf("%s asked its phone to send msg %s %.1fs ago; the phone never sent it", a.web, id, time.Since(a.at).Seconds()))
		}
	}
	sort.Strings(lines)
	return lines
}

// WatchUsable measures how long web is unusable from now until the
// returned stop is called, which records it as web.unusable and returns
// it. A flow calls it when a fault starts and stops it once the client is
// usable again after the fault.
func (e *Env) WatchUsable(web WebClient) (stop func() time.Duration) {
	done, finished := make(chan struct{}), make(chan struct{})
	var total time.Duration // written by the watcher until finished
	go func() {
		defer close(finished)
		var downSince time.Time
		t := time.NewTicker(pollEvery)
		defer t.Stop()
		for {
			changed := web.Changed()
			now := time.Now()
			usable := web.Usable()
			switch {
			case !usable && downSince.IsZero():
				downSince = now
			case usable && !downSince.IsZero():
				total += now.Sub(downSince)
				downSince = time.Time{}
			}
			select {
			case <-done:
				if !downSince.IsZero() {
					total += time.Since(downSince)
				}
				return
			case <-t.C:
			case <-changed:
			}
		}
	}()
	var once sync.Once
	return func() time.Duration {
		once.Do(func() {
			close(done)
			<-finished
			e.rec.rec.Step(StepWebUnusable, web.Name(), total)
		})
		return total
	}
}
