package reports

import (
	"slices"
	"time"
)

// LedgerConfig says how the ledger judges a run. The zero value checks
// everything except lateness.
type LedgerConfig struct {
	// Deadline marks a delivery late when the first decryption comes more than
	// Deadline after the send. 0 checks no deadline.
	Deadline time.Duration
	// End is the point on the run's clock at which observation stopped; a lost
	// message is reported as "sent N s ago" relative to it. 0 means the last
	// recorded event.
	End time.Duration
	// MaxProblems caps how many problems of each kind Ledger.Problems keeps, so
	// a run that loses a million messages still renders; Totals always counts
	// every problem. 0 means 100; a negative value keeps them all.
	MaxProblems int
	// LostAfter and Retain bound a streaming ledger's memory (see
	// NewStreamingRecorder; Check keeps every message and ignores them).
	// A message some target has not received LostAfter after its send is
	// judged then (lost on that target) and forgotten; 0 means 1 minute.
	// A message every target received, and the relay acked, is kept
	// Retain longer, so a late copy is still judged a duplicate, then
	// judged and forgotten; 0 means 30 s. A decryption of a message
	// forgotten (or never sent) is unexpected, so no copy goes unjudged.
	LostAfter time.Duration
	Retain    time.Duration
}

// Totals counts the ledger of a run.
type Totals struct {
	Messages  int `json:"messages"`  // sends recorded
	Acked     int `json:"acked"`     // sends the relay acked to the sender
	Expected  int `json:"expected"`  // (message, device) pairs that must be delivered
	Delivered int `json:"delivered"` // of those, decrypted (or shown) at least once
	// Wire counts the expected pairs the relay handed over at least once,
	// as devices that report their deliveries (Recorder.Wire) saw it.
	Wire          int `json:"wire"`
	Lost          int `json:"lost"`
	Duplicated    int `json:"duplicated"`
	Reordered     int `json:"reordered"`
	Corrupted     int `json:"corrupted"`
	Undecryptable int `json:"undecryptable"`
	Late          int `json:"late"`
	Unexpected    int `json:"unexpected"`
	// Recovered counts deliveries that failed to decrypt at first and
	// decrypted after a retry: the protocol working, not a problem.
	Recovered int `json:"recovered"`
}

// Problems returns the number of problems of every kind.
func (t Totals) Problems() int {
	return t.Lost + t.Duplicated + t.Reordered + t.Corrupted + t.Undecryptable + t.Late + t.Unexpected
}

// Count returns the counter of one problem kind.
func (t Totals) Count(k ProblemKind) int {
	switch k {
	case Lost:
		return t.Lost
	case Duplicated:
		return t.Duplicated
	case Reordered:
		return t.Reordered
	case Corrupted:
		return t.Corrupted
	case Undecryptable:
		return t.Undecryptable
	case Late:
		return t.Late
	case Unexpected:
		return t.Unexpected
	}
	return 0
}

func (t *Totals) inc(k ProblemKind) {
	switch k {
	case Lost:
		t.Lost++
	case Duplicated:
		t.Duplicated++
	case Reordered:
		t.Reordered++
	case Corrupted:
		t.Corrupted++
	case Undecryptable:
		t.Undecryptable++
	case Late:
		t.Late++
	case Unexpected:
		t.Unexpected++
	}
}

// Ledger is the verdict on every message of a run: totals, and the problems
// as readable lines.
type Ledger struct {
	Deadline time.Duration `json:"deadline_ns,omitzero"`
	Totals   Totals        `json:"totals"`
	// Problems lists problems grouped by kind (in ProblemKinds order), each
	// kind in send order (a streaming recorder's: in the order judged), at
	// most LedgerConfig.MaxProblems per kind.
	Problems []Problem `json:"problems"`
	// Dropped counts problems left out of Problems by the cap.
	Dropped int `json:"problems_dropped,omitzero"`

	// msgs and byID keep per-message state for Message, Targets and the
	// timeline's series (Check only). They are not serialized: a loaded
	// report has totals and problems only.
	msgs []*message
	byID map[string]*message
	// lookup, if set, finds a message a streaming recorder still holds.
	lookup func(id string) (MessageStatus, bool)
}

// message is the ledger's state for one sent message.
type message struct {
	id, sender, stream string
	scenario           string // of its send: device names repeat across scenarios
	digest             Digest
	seq                int // position in send order
	sentAt             time.Duration
	ackAt              time.Duration
	acked              bool
	receiptAt          [Read + 1]time.Duration // first receipt of each kind at the sender
	receipted          [Read + 1]bool
	targets            []target
	problems           []Problem // kept for Ledger.Message only (Check)
	// The tally's bookkeeping (tally.go); from settled on, streaming only.
	totals    *Totals  // its scenario's counters
	labels    []string // its scenario's labels, for scoped latencies
	left      int      // targets that have not received it yet
	settled   bool     // every target received it and the relay acked it
	settledAt time.Duration
	judged    bool // counted and forgotten
	queued    bool // in the tally's live queue
}

// target is one device that must receive a message.
type target struct {
	device   string
	received bool          // decrypted or shown
	firstAt  time.Duration // first decrypted or shown
	// decrypted and shown count each layer's copies; wire the relay's.
	decrypted, shown copies
	wire             []wireCopy
	wireDup          [2]wireCopy // the first copy the relay should not have sent, and the one it repeats
	wireDups         int
	reordered        bool // reported once, from the wire or from what the device received
	undecryptable    int
	reason           string
	corrupted        bool
	badDigest        Digest
}

// copies counts one layer's copies of a message on a device, keeping the
// first two times for the duplicate line.
type copies struct {
	n              int
	firstAt, again time.Duration
}

func (c *copies) add(at time.Duration) {
	c.n++
	switch c.n {
	case 1:
		c.firstAt = at
	case 2:
		c.again = at
	}
}

// wireCopy is one delivery of a message by the relay: its queue position
// and the device's connection (counted from its connect events) it came on.
type wireCopy struct {
	seq  uint64
	conn int
	at   time.Duration
}

// relayDuplicate reports whether the relay had no reason to hand over cur
// after prev (see "Duplicates on the wire" in docs/reports.md). The same
// queue item again on a new connection is at-least-once delivery working:
// the device's ack may not have reached, or been kept by, the relay. A new
// queue item of a message the device asked a retry for is the sender's
// resend.
func relayDuplicate(prev, cur wireCopy, retried bool) bool {
	if prev.seq == cur.seq {
		return prev.conn == cur.conn
	}
	return !retried
}

func (m *message) addTargets(e *Event) {
	for _, d := range e.To {
		if d != e.Device && m.target(d) == nil {
			m.targets = append(m.targets, target{device: d})
		}
	}
}

func (m *message) target(device string) *target {
	for i := range m.targets {
		if m.targets[i].device == device {
			return &m.targets[i]
		}
	}
	return nil
}

// MessageStatus is the ledger's view of one message.
type MessageStatus struct {
	ID, Sender, Stream string
	SentAt             time.Duration
	Acked              bool
	Targets            []string // devices that must receive it
	Received           []string // of those, the ones that decrypted it
	// Latency is, per device in Received, the time from the send to its
	// first decryption there.
	Latency  map[string]time.Duration
	Problems []Problem
}

// Message returns the status of the message with the given id, if it was sent
// in this run. Loaded reports keep no per-message state.
func (l *Ledger) Message(id string) (MessageStatus, bool) {
	if l.lookup != nil {
		return l.lookup(id)
	}
	m, ok := l.byID[id]
	if !ok {
		return MessageStatus{}, false
	}
	return m.status(), true
}

func (m *message) status() MessageStatus {
	s := MessageStatus{ID: m.id, Sender: m.sender, Stream: m.stream, SentAt: m.sentAt, Acked: m.acked,
		Problems: slices.Clone(m.problems), Latency: make(map[string]time.Duration)}
	for _, t := range m.targets {
		s.Targets = append(s.Targets, t.device)
		if t.received {
			s.Received = append(s.Received, t.device)
			s.Latency[t.device] = t.firstAt - m.sentAt
		}
	}
	return s
}

// Targets returns every device owed at least one message, sorted. Loaded
// reports keep no per-message state.
func (l *Ledger) Targets() []string {
	var out []string
	for _, m := range l.msgs {
		for _, t := range m.targets {
			out = append(out, t.device)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
