package reports

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ProblemKind names what went wrong with a delivery.
type ProblemKind string

// The problem kinds, which are also the counter names thresholds use.
const (
	Lost          ProblemKind = "lost"          // a device that must receive never decrypted it
	Undecryptable ProblemKind = "undecryptable" // a device got it but never managed to decrypt it
	Corrupted     ProblemKind = "corrupted"     // decrypted to a different digest than was sent
	Duplicated    ProblemKind = "duplicated"    // decrypted more than once on one device
	Reordered     ProblemKind = "reordered"     // arrived after a later-sent message of its stream
	Late          ProblemKind = "late"          // first decrypted after the deadline
	Unexpected    ProblemKind = "unexpected"    // reached a device it was not addressed to, or was never sent
)

// ProblemKinds lists the kinds in the order reports show them: the worst first.
var ProblemKinds = []ProblemKind{Lost, Undecryptable, Corrupted, Duplicated, Reordered, Late, Unexpected}

// Problem is one thing wrong with one delivery.
type Problem struct {
	Kind   ProblemKind `json:"kind"`
	Device string      `json:"device"` // the receiving device
	Msg    string      `json:"msg"`
	Sender string      `json:"sender,omitzero"`
	Stream string      `json:"stream,omitzero"`
	// Scenario is the scenario that sent the message (omitted outside one).
	Scenario string `json:"scenario,omitzero"`
	// At is when the problem showed on the run's clock: the offending
	// delivery, or the send for a message that never arrived.
	At time.Duration `json:"at_ns"`
	// Message is the readable line, naming the device, what was expected and
	// what was seen.
	Message string `json:"message"`
}

func (p Problem) String() string { return p.Message }

// The lines below are what people read in CI logs: actor first, then what was
// expected and what happened, then the clue that helps most.

// lostLine says t's device never received m, as seen at end.
func (c *tally) lostLine(m *message, t *target, end time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s never received msg %s (sent %.1fs ago)", t.device, shortID(m.id), (end - m.sentAt).Seconds())
	if s := c.streams[streamKey{m.scenario, m.sender, m.stream, t.device}]; s != nil {
		fmt.Fprintf(&b, "; last received %s", shortID(s.lastID))
	} else {
		fmt.Fprintf(&b, "; received nothing from %s", m.sender)
	}
	if len(t.wire) > 0 {
		fmt.Fprintf(&b, "; the relay handed it over at t=%s but it was never decrypted", seconds(t.wire[0].at))
	}
	if on, seen := c.online[deviceKey(m.scenario, t.device)]; seen && !on {
		fmt.Fprintf(&b, "; disconnected at t=%s and never reconnected", seconds(c.offSince[deviceKey(m.scenario, t.device)]))
	}
	return b.String()
}

func undecryptableLine(m *message, t *target) string {
	s := fmt.Sprintf("%s could not decrypt msg %s from %s", t.device, shortID(m.id), m.sender)
	if t.undecryptable > 1 {
		s += " (" + strconv.Itoa(t.undecryptable) + " attempts)"
	}
	if t.reason != "" {
		s += ": " + t.reason
	}
	return s
}

// duplicatedLine names the layer that repeated the message: decrypting it
// again, or showing it again.
func duplicatedLine(m *message, t *target) string {
	verb, c := "received", t.decrypted
	if c.n < 2 {
		verb, c = "shows", t.shown
	}
	return fmt.Sprintf("%s %s msg %s %d times (first at t=%s, again at t=%s)",
		t.device, verb, shortID(m.id), c.n, seconds(c.firstAt), seconds(c.again))
}

func duplicateAt(t *target) time.Duration {
	if t.decrypted.n > 1 {
		return t.decrypted.again
	}
	return t.shown.again
}

func wireDuplicatedLine(m *message, t *target) string {
	prev, dup := t.wireDup[0], t.wireDup[1]
	s := fmt.Sprintf("%s got msg %s from the relay %d times (seq %d at t=%s, then seq %d at t=%s",
		t.device, shortID(m.id), len(t.wire), prev.seq, seconds(prev.at), dup.seq, seconds(dup.at))
	if prev.seq == dup.seq {
		s += " on the same connection)"
	} else {
		s += ", queued twice)"
	}
	if t.decrypted.n < 2 && t.shown.n < 2 {
		s += "; the device hid the extra copy"
	}
	return s
}

func wireReorderedLine(device string, m *message, overtaker string) string {
	what := fmt.Sprintf("%s got msg %s from the relay out of order", device, shortID(m.id))
	return outOfOrderLine(what, "the relay handed over first", m, overtaker)
}

func corruptedLine(m *message, t *target) string {
	return fmt.Sprintf("%s decrypted msg %s to different content: digest %s…, sent %s…",
		t.device, shortID(m.id), t.badDigest.String()[:8], m.digest.String()[:8])
}

func lateLine(m *message, t *target, deadline time.Duration) string {
	return fmt.Sprintf("%s received msg %s late: %s after it was sent (deadline %s)",
		t.device, shortID(m.id), FormatDuration(t.firstAt-m.sentAt), FormatDuration(deadline))
}

func reorderedLine(device string, m *message, overtaker string) string {
	return outOfOrderLine(fmt.Sprintf("%s received msg %s out of order", device, shortID(m.id)), "arrived first", m, overtaker)
}

// outOfOrderLine says that m (as what names it) came after overtaker,
// which was sent later and overtook it.
func outOfOrderLine(what, overtook string, m *message, overtaker string) string {
	s := fmt.Sprintf("%s: it was sent before msg %s, which %s (from %s", what, shortID(overtaker), overtook, m.sender)
	if m.stream != "" {
		s += " on " + m.stream
	}
	return s + ")"
}

func strayLine(e *Event, m *message) string {
	verb := "received"
	if e.Kind == KindUndecryptable {
		verb = "could not decrypt"
	}
	if m == nil {
		return fmt.Sprintf("%s %s msg %s, which no device was recorded sending", e.Device, verb, shortID(e.Msg))
	}
	return fmt.Sprintf("%s %s msg %s, which was not addressed to it (sent by %s to %d devices)",
		e.Device, verb, shortID(m.id), m.sender, len(m.targets))
}
