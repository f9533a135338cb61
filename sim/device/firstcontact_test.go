package device

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/relay"
	"github.com/linksim/linksim/sim/wire/pb"
)

// startRelay serves an in-process relay for one test.
func startRelay(t *testing.T) *relay.Server {
	t.Helper()
	return startRelayWith(t, relay.Config{})
}

func startRelayWith(t *testing.T, cfg relay.Config) *relay.Server {
	t.Helper()
	cfg.NoSync = true
	s, err := relay.Serve(cfg, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// recorder records what one device received, per sender, in arrival order.
type recorder struct {
	mu            sync.Mutex
	texts         map[string][]string // sender user -> texts in arrival order
	undecryptable int
}

func (b *recorder) event(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch e.Kind {
	case Received:
		b.texts[e.From.User] = append(b.texts[e.From.User], e.Text)
	case Undecryptable:
		b.undecryptable++
	}
}

func (b *recorder) received(from string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.texts[from]...)
}

func (b *recorder) undecryptableCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.undecryptable
}

func registerPhone(t *testing.T, ctx context.Context, s *relay.Server, user string, events func(Event)) *Device {
	t.Helper()
	d, err := Register(ctx, Config{Name: user, RelayURL: s.WSURL(), RelayKey: s.Key(), Events: events}, user, user)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// linkCompanion pairs a new companion to phone as device dev, doing the
// phone's half of pairing (package phone's Scan) by hand.
func linkCompanion(t *testing.T, ctx context.Context, s *relay.Server, phone *Device, dev uint32, events func(Event)) *Device {
	t.Helper()
	return linkCompanionWith(t, ctx, s, phone, dev, Config{Events: events})
}

// linkCompanionWith is linkCompanion with the companion's Config (the relay
// and name are filled in).
func linkCompanionWith(t *testing.T, ctx context.Context, s *relay.Server, phone *Device, dev uint32, cfg Config) *Device {
	t.Helper()
	d, _ := scanCompanion(t, ctx, s, phone, dev, cfg, nil)
	return d
}

// scanCompanion is linkCompanionWith whose scan edit may change before it
// goes (given the companion's QR code); it returns the phone's answer too.
func scanCompanion(t *testing.T, ctx context.Context, s *relay.Server, phone *Device, dev uint32, cfg Config, edit func(*pb.PairScan, e2e.QR)) (*Device, *pb.Linked) {
	t.Helper()
	refs := make(chan Ref, 8)
	type paired struct {
		d   *Device
		err error
	}
	done := make(chan paired, 1)
	name := fmt.Sprintf("%s/%d", phone.self.User, dev)
	go func() {
		cfg.Name, cfg.RelayURL, cfg.RelayKey = name, s.WSURL(), s.Key()
		d, err := Pair(ctx, cfg, func(r Ref) { refs <- r })
		done <- paired{d, err}
	}()
	q, err := e2e.ParseQR((<-refs).QR)
	if err != nil {
		t.Fatal(err)
	}
	scanned, err := phone.VouchFor(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	defer scanned()
	id := &pb.DeviceIdentity{User: phone.self.User, Device: dev, TimestampUnix: time.Now().Unix(), KeyIndex: dev}
	signed, err := e2e.SignDeviceIdentity(phone.sig, id, q.IdentityKey, q.AdvSecret)
	if err != nil {
		t.Fatal(err)
	}
	scan := &pb.PairScan{Ref: q.Ref, CompanionNoiseKey: q.NoiseKey, CompanionIdentityKey: q.IdentityKey, Identity: signed}
	if edit != nil {
		edit(scan, q)
	}
	ans, err := phone.Call(ctx, &pb.Frame{Body: &pb.Frame_PairScan{PairScan: scan}})
	if err != nil {
		t.Fatal(err)
	}
	p := <-done
	if p.err != nil {
		t.Fatal(p.err)
	}
	t.Cleanup(func() { p.d.Close() })
	return p.d, ans.GetLinked()
}

// Devices that have never talked all start sessions with each other at once
// (3 users with a phone and a companion each, every device sending 60
// messages): every message must reach every device of the recipient and the
// sender's other device once, in order, decrypted the first time.
func TestFirstContactAllAtOnce(t *testing.T) {
	const users, perPeer = 3, 30
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := startRelay(t)
	type member struct {
		user string
		dev  *Device
		box  *recorder
	}
	var all []member
	for i := range users {
		user := fmt.Sprintf("+1555010%d", i)
		phoneBox := &recorder{texts: map[string][]string{}}
		phone := registerPhone(t, ctx, s, user, phoneBox.event)
		webBox := &recorder{texts: map[string][]string{}}
		web := linkCompanion(t, ctx, s, phone, 1, webBox.event)
		all = append(all, member{user, phone, phoneBox}, member{user, web, webBox})
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(all)*users*perPeer)
	for _, m := range all {
		for i := range users {
			peer := fmt.Sprintf("+1555010%d", i)
			if peer == m.user {
				continue
			}
			wg.Go(func() {
				for n := range perPeer {
					if _, err := m.dev.SendText(ctx, peer, stream(m.dev, peer, n)); err != nil {
						errs <- err
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("send: %v", err)
	}
	// Device to gets the stream from sender to peer when it is a device of
	// peer, or another device of the sender's user (as copies).
	type check struct {
		to, from member
		peer     string
	}
	var checks []check
	for _, to := range all {
		for _, from := range all {
			for i := range users {
				peer := fmt.Sprintf("+1555010%d", i)
				if peer != from.user && to.dev != from.dev && (to.user == peer || to.user == from.user) {
					checks = append(checks, check{to, from, peer})
				}
			}
		}
	}
	got := func(c check) []string {
		c.to.box.mu.Lock()
		defer c.to.box.mu.Unlock()
		var texts []string
		for _, text := range c.to.box.texts[c.from.user] {
			if strings.HasPrefix(text, stream(c.from.dev, c.peer, -1)) {
				texts = append(texts, text)
			}
		}
		return texts
	}
	for _, c := range checks {
		for len(got(c)) < perPeer && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, c := range checks {
		var want []string
		for n := range perPeer {
			want = append(want, stream(c.from.dev, c.peer, n))
		}
		if g := got(c); !slices.Equal(g, want) {
			t.Errorf("%s got %d of %d messages from %s to %s: %v", c.to.dev.Name(), len(g), perPeer, c.from.dev.Name(), c.peer, g)
		}
	}
	for _, m := range all {
		if n := m.box.undecryptableCount(); n > 0 {
			t.Errorf("%s could not decrypt %d deliveries", m.dev.Name(), n)
		}
	}
}

// stream names message n of the stream from d to peer; n < 0 gives the
// stream's prefix.
func stream(d *Device, peer string, n int) string {
	if n < 0 {
		return d.Name() + ">" + peer + ":"
	}
	return fmt.Sprintf("%s>%s:%d", d.Name(), peer, n)
}
