package device

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/wire/pb"
)

// Every order of the same writes leaves the same state: the newest version
// wins, and between equal versions the higher device id.
func TestSyncedStateConvergesInAnyOrder(t *testing.T) {
	writes := []*pb.AppStateMutation{
		{Key: "contact/+1", Value: "phone's", Version: 3, Device: 0},
		{Key: "contact/+1", Value: "web's", Version: 3, Device: 2},
		{Key: "contact/+1", Value: "older", Version: 2, Device: 5},
		{Key: "pin/+1", Value: "1", Version: 1, Device: 1},
		{Key: "pin/+1", Value: "", Version: 4, Device: 0},
	}
	want := map[string]Setting{
		"contact/+1": {Value: "web's", Version: 3, Device: 2},
		"pin/+1":     {Value: "", Version: 4, Device: 0},
	}
	for _, order := range [][]int{{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {2, 1, 4, 0, 3}, {1, 0, 3, 4, 2}} {
		a := newAppState(kv.NewMem())
		for _, i := range order {
			if _, err := a.merge(writes[i]); err != nil {
				t.Fatal(err)
			}
		}
		if got := a.snapshot(); !maps.Equal(got, want) {
			t.Errorf("merged in order %v: %v, want %v", order, got, want)
		}
		if m, _ := a.write("about", "x", 1); m.Version != 5 {
			t.Errorf("merged in order %v: next local write has version %d, want 5 (past every version seen)", order, m.Version)
		}
	}
}

// events collects a device's events for a test to wait on.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

func (e *events) count(match func(Event) bool) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.all {
		if match(ev) {
			n++
		}
	}
	return n
}

func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A companion offline while its phone renames a contact, and renaming it
// itself meanwhile (its change waits to be sent), ends with the phone on
// the same name once it is back; a contact added and a chat pinned while it
// was away reach it too.
func TestSyncedStateCatchesUpAndConverges(t *testing.T) {
	s := startRelay(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	phone := registerPhone(t, ctx, s, "+15550100", nil)
	st := kv.NewMem()
	web := linkCompanionWith(t, ctx, s, phone, 1, Config{State: st})
	cfg := web.cfg
	web.Close()

	if err := phone.SetContact(ctx, "+15550101", "Bob (phone)"); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(phone.SetContact(ctx, "+15550102", "Carol"), phone.Pin(ctx, "+15550101", true)); err != nil {
		t.Fatal(err)
	}
	// The companion renames the same contact while it cannot reach the
	// relay: the change is made and kept, and its send fails.
	cut := cfg
	cut.RelayURL = "ws://127.0.0.1:1/ws"
	web, err := Open(ctx, cut)
	if err != nil {
		t.Fatal(err)
	}
	offline, stop := context.WithTimeout(ctx, 300*time.Millisecond)
	defer stop()
	if err := web.SetContact(offline, "+15550101", "Bob (web)"); err == nil {
		t.Fatal("a rename made offline was sent")
	}
	web.Close()
	if web, err = Open(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	defer web.Close()
	eventually(t, "both devices to hold the same synced state", func() error {
		p, w := phone.SyncedState(), web.SyncedState()
		if !maps.Equal(p, w) {
			return fmt.Errorf("phone holds %v, web %v", p, w)
		}
		return nil
	})
	for _, d := range []*Device{phone, web} {
		if got := d.Contacts()["+15550101"]; got != "Bob (web)" {
			t.Errorf("%s names +15550101 %q, want the web's rename (equal versions: the higher device wins)", d.Name(), got)
		}
		if got := d.Contacts()["+15550102"]; got != "Carol" {
			t.Errorf("%s names +15550102 %q, want Carol", d.Name(), got)
		}
	}
	if s, _ := web.Setting(SettingPin + "+15550101"); s.Value != "1" {
		t.Errorf("web holds pin of +15550101 as %+v, want set", s)
	}
}

// Reading a chat on the companion clears it on the phone too, and the
// sender gets one read receipt per message, from the companion only.
func TestReadOnOneDeviceSendsOneReceipt(t *testing.T) {
	s := startRelay(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var bobEvents events
	alice := registerPhone(t, ctx, s, "+15550100", nil)
	bob := registerPhone(t, ctx, s, "+15550101", bobEvents.add)
	web := linkCompanion(t, ctx, s, alice, 1, nil)
	var ids []string
	for i := range 2 {
		id, err := bob.SendText(ctx, alice.Self().User, fmt.Sprint("hi ", i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	unread := func(d *Device) int {
		for _, c := range d.Chats() {
			if c.Peer == bob.Self().User {
				return c.Unread
			}
		}
		return -1
	}
	eventually(t, "both of alice's devices to show 2 unread", func() error {
		if a, w := unread(alice), unread(web); a != 2 || w != 2 {
			return fmt.Errorf("phone %d, web %d", a, w)
		}
		return nil
	})
	if err := web.MarkRead(ctx, bob.Self().User); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the phone to clear its unread count", func() error {
		if n := unread(alice); n != 0 {
			return fmt.Errorf("phone shows %d unread", n)
		}
		return nil
	})
	if err := alice.MarkRead(ctx, bob.Self().User); err != nil { // nothing left to read
		t.Fatal(err)
	}
	isRead := func(id string) func(Event) bool {
		return func(e Event) bool {
			return e.Kind == ReceiptIn && e.Receipt == pb.ReceiptType_READ && e.MessageID == id
		}
	}
	eventually(t, "bob to see both messages read", func() error {
		for _, id := range ids {
			if n := bobEvents.count(isRead(id)); n != 1 {
				return fmt.Errorf("bob got %d read receipts for %s", n, id)
			}
		}
		return nil
	})
	// A second receipt would come within the time the first took: wait
	// for one more round trip (a message bob then sees) before counting.
	if _, err := alice.SendText(ctx, bob.Self().User, "seen"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob to get alice's reply", func() error {
		if bobEvents.count(func(e Event) bool { return e.Kind == Received }) == 0 {
			return errors.New("not yet")
		}
		return nil
	})
	for _, id := range ids {
		if n := bobEvents.count(isRead(id)); n != 1 {
			t.Errorf("bob got %d read receipts for %s, want exactly 1", n, id)
		}
	}
}

// A call rings the callee's phone; the companion holds it as ringing (its
// notice) but cannot accept, and an accept it forges is ignored by the
// caller; the phone's accept reaches the caller and clears the companion.
func TestCallsAreAnsweredOnThePhone(t *testing.T) {
	s := startRelay(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var aliceEvents, bobEvents events
	alice := registerPhone(t, ctx, s, "+15550100", aliceEvents.add)
	bob := registerPhone(t, ctx, s, "+15550101", bobEvents.add)
	web := linkCompanion(t, ctx, s, alice, 1, nil)
	if _, err := web.StartCall(ctx, bob.Self().User, false); !errors.Is(err, ErrCallsOnPhone) {
		t.Errorf("a companion starting a call got %v, want ErrCallsOnPhone", err)
	}
	id, err := bob.StartCall(ctx, alice.Self().User, true)
	if err != nil {
		t.Fatal(err)
	}
	state := func(d *Device) CallState {
		for _, c := range d.Calls() {
			if c.ID == id {
				return c.State
			}
		}
		return 0
	}
	eventually(t, "the call to ring on alice's phone and show on her web client", func() error {
		if p, w := state(alice), state(web); p != CallRinging || w != CallRinging {
			return fmt.Errorf("phone: %v, web: %v", p, w)
		}
		return nil
	})
	if err := web.AcceptCall(ctx, id); !errors.Is(err, ErrCallsOnPhone) {
		t.Errorf("a companion accepting got %v, want ErrCallsOnPhone", err)
	}
	// A forged accept, sent as the reference companion never would.
	forged := &pb.Call{CallId: id, Action: pb.CallAction_CALL_ACCEPT, SentUnixMs: time.Now().UnixMilli()}
	if err := web.signal(ctx, bob.Self().User, forged); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob's phone to refuse the companion's accept", func() error {
		if bobEvents.count(func(e Event) bool { return e.Kind == CallRefused && e.MessageID == id }) != 1 {
			return errors.New("no call-refused event")
		}
		return nil
	})
	if st := state(bob); st != CallRinging {
		t.Fatalf("after a companion's forged accept bob's call is %v, want still ringing", st)
	}
	if err := alice.AcceptCall(ctx, id); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the accept to reach bob and clear alice's web client", func() error {
		if b, w := state(bob), state(web); b != CallAccepted || w != CallAccepted {
			return fmt.Errorf("bob: %v, web: %v", b, w)
		}
		return nil
	})
	if err := bob.EndCall(ctx, id); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the call to end everywhere", func() error {
		got := []CallState{state(alice), state(web), state(bob)}
		if !slices.Equal(got, []CallState{CallEnded, CallEnded, CallEnded}) {
			return fmt.Errorf("alice, web, bob: %v", got)
		}
		return nil
	})
	if n := aliceEvents.count(func(e Event) bool { return e.Kind == CallRings }); n != 1 {
		t.Errorf("alice's phone rang %d times, want 1", n)
	}
}

// A message another device of ours read before it arrived here (a resend
// after a retry receipt) arrives read, with nothing left unread.
func TestMessageReadElsewhereBeforeItArrives(t *testing.T) {
	st := kv.NewMem()
	self := e2e.Address{User: "+15550100", Device: 1}
	d := &Device{chats: newChats(st, self.User), state: newAppState(st), self: self, cfg: Config{}.withDefaults()}
	d.log = d.cfg.Logger
	bob := e2e.Address{User: "+15550101"}
	read := &pb.AppStateMutation{Key: SettingRead + bob.User, Value: "m2", Version: 1, Device: 0}
	if err := d.mergeState(e2e.Address{User: self.User}, []*pb.AppStateMutation{read}); err != nil {
		t.Fatal(err)
	}
	delivered := map[string][]string{}
	for _, id := range []string{"m1", "m2"} {
		if err := d.receiveMessage(bob, Message{ID: id, From: bob.User, Text: id}, "", Event{Kind: Received}, delivered); err != nil {
			t.Fatal(err)
		}
	}
	if c := d.Chats(); len(c) != 1 || c[0].Unread != 0 {
		t.Errorf("chats %+v, want the chat with bob read", c)
	}
	if got := delivered[bob.User]; !slices.Equal(got, []string{"m1", "m2"}) {
		t.Errorf("delivery receipts owed for %v, want m1 and m2", got)
	}
}
