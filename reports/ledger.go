package reports

import (
	"cmp"
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
	// kind in send order, at most LedgerConfig.MaxProblems per kind.
	Problems []Problem `json:"problems"`
	// Dropped counts problems left out of Problems by the cap.
	Dropped int `json:"problems_dropped,omitzero"`

	// msgs and byID keep per-message state for Message, the derived latencies
	// and the timeline. They are not serialized: a loaded report has totals
	// and problems only.
	msgs []*message
	byID map[string]*message
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
	problems           []Problem
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
	m, ok := l.byID[id]
	if !ok {
		return MessageStatus{}, false
	}
	s := MessageStatus{ID: m.id, Sender: m.sender, Stream: m.stream, SentAt: m.sentAt, Acked: m.acked,
		Problems: slices.Clone(m.problems), Latency: make(map[string]time.Duration)}
	for _, t := range m.targets {
		s.Targets = append(s.Targets, t.device)
		if t.received {
			s.Received = append(s.Received, t.device)
			s.Latency[t.device] = t.firstAt - m.sentAt
		}
	}
	return s, true
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

// streamKey names one ordered stream: what one sender device sent on one
// stream, as seen by one receiving device, within one scenario.
type streamKey struct{ scenario, sender, stream, device string }

type streamState struct {
	newest *message // the latest-sent message received so far
	last   *message // the last message received
}

// checker holds the state of one Check.
type checker struct {
	cfg     LedgerConfig
	l       *Ledger
	slab    []message // one allocation for every message's state
	streams map[streamKey]*streamState
	// wireStreams is streams in the order the relay handed messages over.
	wireStreams map[streamKey]*streamState
	conns       map[string]int // connects seen per device, numbering its connections
	// Connection state per device (deviceKey: scenarios reuse names).
	online   map[string]bool          // last connect/disconnect state
	offSince map[string]time.Duration // when an offline device went away
	strays   map[[2]string]bool       // (msg, device) pairs already reported unexpected
	byKind   map[ProblemKind][]Problem
}

// Check reads a run's events and judges every message: each device that must
// receive a message decrypts it exactly once, in send order within its
// stream, with the digest that was sent, within the deadline. Events need not
// be sorted; a copy is sorted by At when they are not.
func Check(events []Event, cfg LedgerConfig) Ledger {
	if !slices.IsSortedFunc(events, byAt) {
		events = slices.Clone(events)
		slices.SortStableFunc(events, byAt)
	}
	if cfg.MaxProblems == 0 {
		cfg.MaxProblems = 100
	}
	if cfg.End == 0 && len(events) > 0 {
		cfg.End = events[len(events)-1].At
	}
	sends := 0
	for i := range events {
		if events[i].Kind == KindSend {
			sends++
		}
	}
	l := &Ledger{Deadline: cfg.Deadline, msgs: make([]*message, 0, sends), byID: make(map[string]*message, sends)}
	c := &checker{cfg: cfg, l: l, slab: make([]message, sends), streams: make(map[streamKey]*streamState),
		wireStreams: make(map[streamKey]*streamState), conns: make(map[string]int),
		online: make(map[string]bool), offSince: make(map[string]time.Duration),
		strays: make(map[[2]string]bool), byKind: make(map[ProblemKind][]Problem)}

	// Sends first: a receiver can record its decryption before the sender gets
	// to record the send, and that is a race in the recording, not a stray.
	for i := range events {
		if events[i].Kind == KindSend {
			c.send(&events[i])
		}
	}
	for i := range events {
		c.observe(&events[i])
	}
	c.finish()
	return *l
}

func byAt(a, b Event) int { return cmp.Compare(a.At, b.At) }

func (c *checker) send(e *Event) {
	if m, again := c.l.byID[e.Msg]; again {
		// The same message sent again (after the relay refused a stale
		// device list) must reach the devices of the last attempt; latency
		// still counts from the first.
		c.l.Totals.Expected -= len(m.targets)
		m.targets = m.targets[:0]
		m.addTargets(e)
		c.l.Totals.Expected += len(m.targets)
		return
	}
	m := &c.slab[len(c.l.msgs)]
	*m = message{id: e.Msg, sender: e.Device, stream: e.Stream, digest: e.Digest,
		scenario: e.Scenario, seq: len(c.l.msgs), sentAt: e.At, targets: make([]target, 0, len(e.To))}
	m.addTargets(e)
	c.l.msgs = append(c.l.msgs, m)
	c.l.byID[m.id] = m
	c.l.Totals.Messages++
	c.l.Totals.Expected += len(m.targets)
}

func (c *checker) observe(e *Event) {
	switch e.Kind {
	case KindAck:
		if m := c.l.byID[e.Msg]; m != nil && !m.acked && (e.Device == "" || e.Device == m.sender) {
			m.acked, m.ackAt = true, e.At
			c.l.Totals.Acked++
		}
	case KindReceipt:
		if m := c.l.byID[e.Msg]; m != nil && e.Device == m.sender && e.Receipt <= Read && !m.receipted[e.Receipt] {
			m.receipted[e.Receipt], m.receiptAt[e.Receipt] = true, e.At
		}
	case KindDecrypt, KindShown:
		c.receive(e)
	case KindWire:
		c.wire(e)
	case KindUndecryptable:
		m := c.l.byID[e.Msg]
		if m == nil {
			c.stray(e, nil)
			return
		}
		if t := m.target(e.Device); t != nil {
			t.undecryptable++
			t.reason = e.Detail
		} else {
			c.stray(e, m)
		}
	case KindConnect:
		c.online[deviceKey(e.Scenario, e.Device)] = true
		c.conns[deviceKey(e.Scenario, e.Device)]++
	case KindDisconnect:
		c.online[deviceKey(e.Scenario, e.Device)] = false
		c.offSince[deviceKey(e.Scenario, e.Device)] = e.At
	}
}

// receive counts a decryption or a showing of a message on a device; the
// first of either is its delivery.
func (c *checker) receive(e *Event) {
	m := c.l.byID[e.Msg]
	if m == nil {
		c.stray(e, nil)
		return
	}
	t := m.target(e.Device)
	if t == nil {
		c.stray(e, m)
		return
	}
	if e.Kind == KindShown {
		t.shown.add(e.At)
	} else {
		t.decrypted.add(e.At)
	}
	if !e.Digest.IsZero() && !m.digest.IsZero() && e.Digest != m.digest && !t.corrupted {
		t.corrupted, t.badDigest = true, e.Digest
	}
	if t.received {
		return
	}
	t.received, t.firstAt = true, e.At
	c.l.Totals.Delivered++
	c.order(c.streams, m, t, e.At, reorderedLine)
}

// wire counts a copy the relay handed a device. Copies of messages nobody
// was recorded sending, or to devices they were not addressed to, are left
// to what the device decrypts: history bundles and other protocol traffic
// travel the same way.
func (c *checker) wire(e *Event) {
	m := c.l.byID[e.Msg]
	if m == nil {
		return
	}
	t := m.target(e.Device)
	if t == nil {
		return
	}
	w := wireCopy{seq: e.Seq, conn: c.conns[deviceKey(e.Scenario, e.Device)], at: e.At}
	if len(t.wire) == 0 {
		c.l.Totals.Wire++
		c.order(c.wireStreams, m, t, e.At, wireReorderedLine)
	}
	for _, prev := range t.wire {
		if relayDuplicate(prev, w, t.undecryptable > 0) {
			if t.wireDups == 0 {
				t.wireDup = [2]wireCopy{prev, w}
			}
			t.wireDups++
			break
		}
	}
	t.wire = append(t.wire, w)
}

// order checks that m, first seen on t's device at at, came after every
// message sent before it on its stream, as streams records arrivals;
// a message is reported out of order once.
func (c *checker) order(streams map[streamKey]*streamState, m *message, t *target, at time.Duration, line func(string, *message, *message) string) {
	key := streamKey{m.scenario, m.sender, m.stream, t.device}
	s := streams[key]
	if s == nil {
		s = &streamState{}
		streams[key] = s
	}
	if s.newest != nil && m.seq < s.newest.seq {
		if !t.reordered {
			t.reordered = true
			c.problem(m, Problem{Kind: Reordered, Device: t.device, At: at, Message: line(t.device, m, s.newest)})
		}
	} else {
		s.newest = m
	}
	s.last = m
}

// stray reports a message a device got without being one of its targets (m
// is nil when no device was recorded sending it). One line per message and
// device, however many copies arrive.
func (c *checker) stray(e *Event, m *message) {
	k := [2]string{e.Msg, e.Device}
	if c.strays[k] {
		return
	}
	c.strays[k] = true
	p := Problem{Kind: Unexpected, Device: e.Device, Msg: e.Msg, At: e.At}
	if e.Kind == KindUndecryptable && m == nil {
		p.Kind = Undecryptable
	}
	p.Message = strayLine(e, m)
	c.problem(m, p)
}

// deviceKey names a device within its scenario.
func deviceKey(scenario, device string) string { return scenario + "\x00" + device }

// problem counts p and files it under its message and its kind.
func (c *checker) problem(m *message, p Problem) {
	if m != nil {
		p.Msg, p.Sender, p.Stream, p.Scenario = m.id, m.sender, m.stream, m.scenario
		if m.scenario != "" {
			p.Message += " [" + m.scenario + "]"
		}
		m.problems = append(m.problems, p)
	}
	c.l.Totals.inc(p.Kind)
	c.byKind[p.Kind] = append(c.byKind[p.Kind], p)
}

// finish judges each target of each message once all events are in.
func (c *checker) finish() {
	for _, m := range c.l.msgs {
		for i := range m.targets {
			t := &m.targets[i]
			if t.wireDups > 0 {
				c.problem(m, Problem{Kind: Duplicated, Device: t.device, At: t.wireDup[1].at,
					Message: wireDuplicatedLine(m, t)})
			}
			switch {
			case !t.received && t.undecryptable > 0:
				c.problem(m, Problem{Kind: Undecryptable, Device: t.device, At: m.sentAt,
					Message: undecryptableLine(m, t)})
			case !t.received:
				c.problem(m, Problem{Kind: Lost, Device: t.device, At: m.sentAt,
					Message: c.lostLine(m, t)})
				continue
			case t.undecryptable > 0:
				c.l.Totals.Recovered++
			}
			if t.wireDups == 0 && (t.decrypted.n > 1 || t.shown.n > 1) {
				c.problem(m, Problem{Kind: Duplicated, Device: t.device, At: duplicateAt(t),
					Message: duplicatedLine(m, t)})
			}
			if t.corrupted {
				c.problem(m, Problem{Kind: Corrupted, Device: t.device, At: t.firstAt,
					Message: corruptedLine(m, t)})
			}
			if c.cfg.Deadline > 0 && t.firstAt-m.sentAt > c.cfg.Deadline {
				c.problem(m, Problem{Kind: Late, Device: t.device, At: t.firstAt,
					Message: lateLine(m, t, c.cfg.Deadline)})
			}
		}
	}
	for _, k := range ProblemKinds {
		ps := c.byKind[k]
		if c.cfg.MaxProblems > 0 && len(ps) > c.cfg.MaxProblems {
			c.l.Dropped += len(ps) - c.cfg.MaxProblems
			ps = ps[:c.cfg.MaxProblems]
		}
		c.l.Problems = append(c.l.Problems, ps...)
	}
}
