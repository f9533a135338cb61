package reports

import (
	"strings"
	"testing"
	"time"
)

// The helpers below write crafted event sequences the way a run would record
// them; at is in milliseconds on the run's clock.

func body(id string) Digest { return DigestOf([]byte("plaintext of " + id)) }

func send(at int, from, id, stream string, to ...string) Event {
	return Event{Kind: KindSend, At: ms(at), Device: from, Msg: id, Stream: stream, To: to, Digest: body(id)}
}

func dec(at int, dev, id string) Event {
	return Event{Kind: KindDecrypt, At: ms(at), Device: dev, Msg: id, Digest: body(id)}
}

func ack(at int, dev, id string) Event { return Event{Kind: KindAck, At: ms(at), Device: dev, Msg: id} }

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

var bobs = []string{"bob/phone", "bob/web-1", "alice/web-1"}

// cleanRun is alice/phone sending three messages that everyone gets in order.
func cleanRun() []Event {
	var evs []Event
	for i, id := range []string{"m1", "m2", "m3"} {
		t := 100 * i
		evs = append(evs, send(t, "alice/phone", id, "chat:bob", bobs...), ack(t+5, "alice/phone", id))
		for j, d := range bobs {
			evs = append(evs, dec(t+20+j, d, id))
		}
		evs = append(evs,
			Event{Kind: KindReceipt, At: ms(t + 40), Device: "alice/phone", Msg: id, Receipt: Delivered},
			Event{Kind: KindReceipt, At: ms(t + 90), Device: "alice/phone", Msg: id, Receipt: Read})
	}
	return evs
}

func TestLedgerCleanRunHasNoProblems(t *testing.T) {
	l := Check(cleanRun(), LedgerConfig{Deadline: time.Second})
	if len(l.Problems) != 0 || l.Totals.Problems() != 0 {
		t.Fatalf("clean run: want no problems, got %d: %v", l.Totals.Problems(), l.Problems)
	}
	want := Totals{Messages: 3, Acked: 3, Expected: 9, Delivered: 9}
	if l.Totals != want {
		t.Errorf("totals = %+v, want %+v", l.Totals, want)
	}
}

// only returns the problems of one kind, failing unless there are n.
func only(t *testing.T, l Ledger, k ProblemKind, n int) []Problem {
	t.Helper()
	var ps []Problem
	for _, p := range l.Problems {
		if p.Kind == k {
			ps = append(ps, p)
		}
	}
	if len(ps) != n || l.Totals.Count(k) != n {
		t.Fatalf("%s: want %d, got %d listed and %d counted: %v", k, n, len(ps), l.Totals.Count(k), l.Problems)
	}
	if other := l.Totals.Problems() - n; other != 0 {
		t.Fatalf("want only %s problems, got %d others: %v", k, other, l.Problems)
	}
	return ps
}

func TestLedgerLost(t *testing.T) {
	const first, second, third = "3EB0C431A2B1F012", "3EB0C431A2B1F015", "3EB0C431A2B1F017"
	evs := []Event{
		send(0, "alice/phone", first, "chat:bob", "bob/web-1"),
		dec(30, "bob/web-1", first),
		send(1000, "alice/phone", third, "chat:bob", "bob/web-1"),
		send(1500, "alice/phone", second, "chat:bob", "bob/web-2"),
	}
	l := Check(evs, LedgerConfig{End: 6 * time.Second})
	ps := only(t, l, Lost, 2)
	want := "bob/web-1 never received msg 3EB0…17 (sent 5.0s ago); last received 3EB0…12"
	if ps[0].Message != want {
		t.Errorf("lost line:\n got %s\nwant %s", ps[0].Message, want)
	}
	if ps[0].Msg != third || ps[0].Device != "bob/web-1" || ps[0].Sender != "alice/phone" {
		t.Errorf("lost problem fields: %+v", ps[0])
	}
	if !strings.Contains(ps[1].Message, "received nothing from alice/phone") {
		t.Errorf("a device that got nothing should say so: %s", ps[1].Message)
	}
}

func TestLedgerLostNamesADeviceThatWentOffline(t *testing.T) {
	evs := []Event{
		{Kind: KindConnect, At: ms(0), Device: "bob/web-1"},
		{Kind: KindDisconnect, At: ms(4200), Device: "bob/web-1", Detail: "blackhole"},
		send(4300, "alice/phone", "m1", "", "bob/web-1"),
	}
	ps := only(t, Check(evs, LedgerConfig{}), Lost, 1)
	if !strings.Contains(ps[0].Message, "disconnected at t=4.20s and never reconnected") {
		t.Errorf("lost line should say the device went offline: %s", ps[0].Message)
	}
}

func TestLedgerDuplicated(t *testing.T) {
	evs := append(cleanRun(), dec(500, "bob/web-1", "m2"), dec(600, "bob/web-1", "m2"))
	ps := only(t, Check(evs, LedgerConfig{}), Duplicated, 1)
	want := "bob/web-1 received msg m2 3 times (first at t=0.12s, again at t=0.50s)"
	if ps[0].Message != want {
		t.Errorf("got %q, want %q", ps[0].Message, want)
	}
}

func TestLedgerReordered(t *testing.T) {
	evs := []Event{
		send(0, "alice/phone", "m1", "chat:bob", "bob/web-1", "bob/phone"),
		send(10, "alice/phone", "m2", "chat:bob", "bob/web-1", "bob/phone"),
		send(20, "alice/phone", "m3", "chat:bob", "bob/web-1", "bob/phone"),
		dec(30, "bob/phone", "m1"), dec(31, "bob/phone", "m2"), dec(32, "bob/phone", "m3"),
		dec(40, "bob/web-1", "m2"), dec(41, "bob/web-1", "m1"), dec(42, "bob/web-1", "m3"),
	}
	ps := only(t, Check(evs, LedgerConfig{}), Reordered, 1)
	want := "bob/web-1 received msg m1 out of order: it was sent before msg m2, which arrived first (from alice/phone on chat:bob)"
	if ps[0].Message != want {
		t.Errorf("got %q, want %q", ps[0].Message, want)
	}
}

func TestLedgerOrderIsPerSenderAndStream(t *testing.T) {
	// Messages of other streams and other sender devices may overtake each
	// other freely: order is only promised within one sender→device stream.
	evs := []Event{
		send(0, "alice/phone", "a1", "chat:bob", "bob/phone"),
		send(1, "alice/phone", "g1", "group:x", "bob/phone"),
		send(2, "alice/web-1", "w1", "chat:bob", "bob/phone"),
		dec(10, "bob/phone", "w1"), dec(11, "bob/phone", "g1"), dec(12, "bob/phone", "a1"),
	}
	if l := Check(evs, LedgerConfig{}); l.Totals.Problems() != 0 {
		t.Fatalf("want no problems, got %v", l.Problems)
	}
}

func TestLedgerCorrupted(t *testing.T) {
	evs := cleanRun()
	for i := range evs {
		if evs[i].Kind == KindDecrypt && evs[i].Msg == "m2" && evs[i].Device == "bob/phone" {
			evs[i].Digest = DigestOf([]byte("tampered"))
		}
	}
	ps := only(t, Check(evs, LedgerConfig{}), Corrupted, 1)
	if ps[0].Device != "bob/phone" || !strings.HasPrefix(ps[0].Message, "bob/phone decrypted msg m2 to different content: digest ") {
		t.Errorf("corrupted problem: %+v", ps[0])
	}
}

func TestLedgerUndecryptable(t *testing.T) {
	evs := []Event{
		send(0, "alice/phone", "m1", "", "bob/web-1", "bob/phone"),
		{Kind: KindUndecryptable, At: ms(20), Device: "bob/web-1", Msg: "m1", Detail: "no session"},
		// bob/phone fails once, then the retry receipt works: recovered.
		{Kind: KindUndecryptable, At: ms(20), Device: "bob/phone", Msg: "m1", Detail: "bad mac"},
		dec(80, "bob/phone", "m1"),
	}
	l := Check(evs, LedgerConfig{})
	ps := only(t, l, Undecryptable, 1)
	if want := "bob/web-1 could not decrypt msg m1 from alice/phone: no session"; ps[0].Message != want {
		t.Errorf("got %q, want %q", ps[0].Message, want)
	}
	if l.Totals.Recovered != 1 {
		t.Errorf("recovered = %d, want 1", l.Totals.Recovered)
	}
}

func TestLedgerLate(t *testing.T) {
	evs := []Event{
		send(0, "alice/phone", "m1", "", "bob/web-1"),
		send(100, "alice/phone", "m2", "", "bob/web-1"),
		dec(900, "bob/web-1", "m1"), dec(1600, "bob/web-1", "m2"),
	}
	ps := only(t, Check(evs, LedgerConfig{Deadline: time.Second}), Late, 1)
	if want := "bob/web-1 received msg m2 late: 1.5s after it was sent (deadline 1s)"; ps[0].Message != want {
		t.Errorf("got %q, want %q", ps[0].Message, want)
	}
	if l := Check(evs, LedgerConfig{}); l.Totals.Late != 0 {
		t.Errorf("without a deadline nothing is late, got %d", l.Totals.Late)
	}
}

func TestLedgerUnexpected(t *testing.T) {
	evs := append(cleanRun(),
		dec(400, "carol/web-1", "m1"), dec(401, "carol/web-1", "m1"), // a removed device still gets it
		dec(410, "bob/phone", "ghost"))
	ps := only(t, Check(evs, LedgerConfig{}), Unexpected, 2)
	if !strings.Contains(ps[0].Message, "carol/web-1 received msg m1, which was not addressed to it") {
		t.Errorf("stray line: %s", ps[0].Message)
	}
	if !strings.Contains(ps[1].Message, "which no device was recorded sending") {
		t.Errorf("unknown message line: %s", ps[1].Message)
	}
}

func TestLedgerToleratesDecryptRecordedBeforeSend(t *testing.T) {
	evs := []Event{dec(5, "bob/web-1", "m1"), send(6, "alice/phone", "m1", "", "bob/web-1")}
	if l := Check(evs, LedgerConfig{}); l.Totals.Problems() != 0 || l.Totals.Delivered != 1 {
		t.Fatalf("want one clean delivery, got %+v %v", l.Totals, l.Problems)
	}
}

func TestLedgerCapsProblemsButCountsAll(t *testing.T) {
	var evs []Event
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		evs = append(evs, send(0, "alice/phone", id, "", "bob/web-1"))
	}
	l := Check(evs, LedgerConfig{MaxProblems: 2})
	if l.Totals.Lost != 5 || len(l.Problems) != 2 || l.Dropped != 3 {
		t.Fatalf("want 5 lost, 2 listed, 3 dropped; got %d, %d, %d", l.Totals.Lost, len(l.Problems), l.Dropped)
	}
}

func TestLedgerMessageStatus(t *testing.T) {
	evs := cleanRun()[:4] // m1 sent, acked, decrypted by bob/phone and bob/web-1 only
	l := Check(evs, LedgerConfig{})
	s, ok := l.Message("m1")
	if !ok {
		t.Fatal("m1 not in the ledger")
	}
	if !s.Acked || len(s.Targets) != 3 || len(s.Received) != 2 || len(s.Problems) != 1 || s.Problems[0].Device != "alice/web-1" {
		t.Errorf("status of m1: %+v", s)
	}
}

func TestLedgerResendAddressesTheLastDeviceList(t *testing.T) {
	// The relay refused the first attempt (stale list: bob/web-1 was new);
	// the second attempt addressed bob/web-1 too, and it must get the message.
	evs := []Event{
		send(0, "alice/phone", "m1", "chat:bob", "bob/phone"),
		send(10, "alice/phone", "m1", "chat:bob", "bob/phone", "bob/web-1"),
		dec(30, "bob/phone", "m1"),
	}
	l := Check(evs, LedgerConfig{})
	lost := only(t, l, Lost, 1)
	if lost[0].Device != "bob/web-1" {
		t.Errorf("lost on %s, want bob/web-1", lost[0].Device)
	}
	l = Check(append(evs, dec(40, "bob/web-1", "m1")), LedgerConfig{})
	if l.Totals.Problems() != 0 || l.Totals.Messages != 1 || l.Totals.Expected != 2 || l.Totals.Delivered != 2 {
		t.Fatalf("after bob/web-1 decrypts: want one message and no problems, got %+v: %v", l.Totals, l.Problems)
	}
}

func wire(at int, dev, id string, seq uint64) Event {
	return Event{Kind: KindWire, At: ms(at), Device: dev, Msg: id, Seq: seq}
}

func connect(at int, dev string) Event { return Event{Kind: KindConnect, At: ms(at), Device: dev} }

func TestLedgerWireDuplicates(t *testing.T) {
	base := func() []Event {
		return []Event{connect(0, "bob/web-1"), send(10, "alice/phone", "m1", "chat:bob", "bob/web-1"),
			wire(20, "bob/web-1", "m1", 7), dec(21, "bob/web-1", "m1")}
	}
	for _, tc := range []struct {
		name  string
		more  []Event
		dup   bool
		piece string
	}{
		{"same item on the same connection", []Event{wire(30, "bob/web-1", "m1", 7)}, true,
			"bob/web-1 got msg m1 from the relay 2 times (seq 7 at t=0.02s, then seq 7 at t=0.03s on the same connection); the device hid the extra copy"},
		{"queued twice", []Event{wire(30, "bob/web-1", "m1", 9)}, true, "queued twice"},
		{"same item after a reconnect", []Event{connect(25, "bob/web-1"), wire(30, "bob/web-1", "m1", 7)}, false, ""},
		{"a resend after a retry", []Event{{Kind: KindUndecryptable, At: ms(22), Device: "bob/web-1", Msg: "m1"},
			wire(30, "bob/web-1", "m1", 9), wire(31, "bob/web-1", "m1", 10)}, false, ""},
		{"shown twice", []Event{{Kind: KindShown, At: ms(22), Device: "bob/web-1", Msg: "m1", Digest: body("m1")},
			{Kind: KindShown, At: ms(40), Device: "bob/web-1", Msg: "m1", Digest: body("m1")}}, true,
			"bob/web-1 shows msg m1 2 times (first at t=0.02s, again at t=0.04s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := Check(append(base(), tc.more...), LedgerConfig{})
			if !tc.dup {
				if l.Totals.Problems() != 0 || l.Totals.Wire != 1 {
					t.Fatalf("want a clean ledger with 1 wire delivery, got %+v: %v", l.Totals, l.Problems)
				}
				return
			}
			ps := only(t, l, Duplicated, 1)
			if !strings.Contains(ps[0].Message, tc.piece) {
				t.Errorf("got %q, want it to contain %q", ps[0].Message, tc.piece)
			}
		})
	}
}

func TestLedgerWireReorderIsCountedOnce(t *testing.T) {
	// The relay handed m2 over before m1; the device then decrypted them in
	// that order too: one message out of order, one problem.
	evs := []Event{
		send(0, "alice/phone", "m1", "chat:bob", "bob/web-1"),
		send(10, "alice/phone", "m2", "chat:bob", "bob/web-1"),
		wire(20, "bob/web-1", "m2", 2), dec(21, "bob/web-1", "m2"),
		wire(22, "bob/web-1", "m1", 1), dec(23, "bob/web-1", "m1"),
	}
	ps := only(t, Check(evs, LedgerConfig{}), Reordered, 1)
	want := "bob/web-1 got msg m1 from the relay out of order: it was sent before msg m2, which the relay handed over first (from alice/phone on chat:bob)"
	if ps[0].Message != want {
		t.Errorf("got %q, want %q", ps[0].Message, want)
	}
}

func TestLedgerLostSaysTheRelayHandedItOver(t *testing.T) {
	evs := []Event{send(0, "alice/phone", "m1", "chat:bob", "bob/web-1"), wire(20, "bob/web-1", "m1", 3)}
	ps := only(t, Check(evs, LedgerConfig{}), Lost, 1)
	if !strings.Contains(ps[0].Message, "the relay handed it over at t=0.02s but it was never decrypted") {
		t.Errorf("got %q", ps[0].Message)
	}
}

// Scenarios of one run reuse device names: a problem line names its
// scenario, and one scenario's connection state is no clue in another's.
func TestLedgerProblemsNameTheirScenario(t *testing.T) {
	in := func(scenario string, e Event) Event { e.Scenario = scenario; return e }
	evs := []Event{
		in("A", connect(0, "bob/web-1")),
		in("A", send(10, "alice/phone", "a1", "chat:bob", "bob/web-1")),
		in("A", dec(20, "bob/web-1", "a1")),
		in("A", Event{Kind: KindDisconnect, At: ms(30), Device: "bob/web-1"}),
		in("B", connect(40, "bob/web-1")),
		in("B", send(50, "alice/phone", "b1", "chat:bob", "bob/web-1")),
	}
	ps := only(t, Check(evs, LedgerConfig{}), Lost, 1)
	want := "bob/web-1 never received msg b1 (sent 0.0s ago); received nothing from alice/phone [B]"
	if ps[0].Message != want || ps[0].Scenario != "B" {
		t.Errorf("got %q in scenario %q\nwant %q in B", ps[0].Message, ps[0].Scenario, want)
	}
}
