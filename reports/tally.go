package reports

import (
	"cmp"
	"maps"
	"slices"
	"time"
)

// streamKey names one ordered stream: what one sender device sent on one
// stream, as seen by one receiving device, within one scenario.
type streamKey struct{ scenario, sender, stream, device string }

// streamState is what the order check keeps per stream: two ids and a
// position, however many messages the stream carries.
type streamState struct {
	newestSeq int    // send position of the latest-sent message received so far
	newestID  string // and its id
	lastID    string // the last message received
}

// tally is the ledger while events come in, one at a time. Check runs one
// over a whole run's events and keeps every message (keep); a streaming
// recorder runs one as it records and forgets each message once it is
// judged, so its memory is bounded by the messages in flight (see
// LedgerConfig.LostAfter and Retain), the streams and the devices.
type tally struct {
	cfg  LedgerConfig
	keep bool
	// latencies, if set, gets msg.ack, msg.deliver and the receipt steps as
	// they happen, each in the scope of the scenario that sent the message.
	latencies *Metrics
	// series, if set, counts sends and deliveries over time (streaming).
	series *seriesTally

	sends int       // messages sent so far: each one's position in send order
	slab  []message // Check allocates every message's state at once
	byID  map[string]*message
	msgs  []*message // keep: every message in send order
	// streams and wireStreams hold arrival order: what devices received,
	// and what the relay handed them.
	streams, wireStreams map[streamKey]*streamState
	conns                map[string]int // connects seen per device, numbering its connections
	// Connection state per device (deviceKey: scenarios reuse names).
	online    map[string]bool             // last connect/disconnect state
	offSince  map[string]time.Duration    // when an offline device went away
	strays    map[[2]string]time.Duration // (msg, device) pairs reported unexpected, and when
	scenarios map[string]*scenarioTally   // counters by scenario; "" is outside any
	byKind    map[ProblemKind][]Problem
	dropped   int

	// Streaming only (keep false).
	now       time.Duration // the latest event seen: the ledger's clock
	nextSweep time.Duration
	// live holds messages in send order until LostAfter; settled holds
	// those every target received, in the order they did, for Retain.
	live, settled queue
	// liveJudged counts the messages judged while still in live: when
	// they are half of it, live is compacted, so a message judged early
	// is not kept in memory until LostAfter.
	liveJudged int
	// orphans are copies of messages not (or no longer) known, by id, held
	// for Retain in case their send is still on its way (orphanQ in
	// arrival order).
	orphans map[string][]heldCopy
	orphanQ []orphanRef
}

// scenarioTally is one scenario's counters.
type scenarioTally struct {
	labels []string
	totals Totals
}

// heldCopy is an event held until its message's send comes, with the
// connection its device was on then (for a wire copy).
type heldCopy struct {
	e    Event
	conn int
}

type orphanRef struct {
	id string
	at time.Duration
}

// queue is a FIFO of messages.
type queue []*message

func (q *queue) push(m *message) { *q = append(*q, m) }

func (q *queue) peek() *message {
	if len(*q) == 0 {
		return nil
	}
	return (*q)[0]
}

func (q *queue) pop() {
	(*q)[0] = nil
	*q = (*q)[1:]
}

// Defaults of a streaming ledger (LedgerConfig).
const (
	defaultLostAfter = time.Minute
	defaultRetain    = 30 * time.Second
	sweepEvery       = 100 * time.Millisecond
)

func newTally(cfg LedgerConfig, keep bool) *tally {
	if cfg.MaxProblems == 0 {
		cfg.MaxProblems = 100
	}
	if cfg.LostAfter <= 0 {
		cfg.LostAfter = defaultLostAfter
	}
	if cfg.Retain <= 0 {
		cfg.Retain = defaultRetain
	}
	return &tally{cfg: cfg, keep: keep, byID: make(map[string]*message),
		streams: make(map[streamKey]*streamState), wireStreams: make(map[streamKey]*streamState),
		conns: make(map[string]int), online: make(map[string]bool), offSince: make(map[string]time.Duration),
		strays: make(map[[2]string]time.Duration), scenarios: make(map[string]*scenarioTally),
		byKind: make(map[ProblemKind][]Problem), orphans: make(map[string][]heldCopy)}
}

// Check reads a run's events and judges every message: each device that must
// receive a message decrypts it exactly once, in send order within its
// stream, with the digest that was sent, within the deadline. Events need not
// be sorted; a copy is sorted by At when they are not.
func Check(events []Event, cfg LedgerConfig) Ledger {
	return check(events, cfg, nil)
}

// check is Check that also records the latencies into m, if set.
func check(events []Event, cfg LedgerConfig, m *Metrics) Ledger {
	if !slices.IsSortedFunc(events, byAt) {
		events = slices.Clone(events)
		slices.SortStableFunc(events, byAt)
	}
	if cfg.End == 0 && len(events) > 0 {
		cfg.End = events[len(events)-1].At
	}
	c := newTally(cfg, true)
	c.latencies = m
	sends := 0
	for i := range events {
		if events[i].Kind == KindSend {
			sends++
		}
	}
	c.slab, c.msgs = make([]message, sends), make([]*message, 0, sends)
	// Sends first: a receiver can record its decryption before the sender gets
	// to record the send, and that is a race in the recording, not a stray.
	for i := range events {
		if events[i].Kind == KindSend {
			c.send(&events[i])
		}
	}
	for i := range events {
		if events[i].Kind != KindSend {
			c.observe(&events[i])
		}
	}
	c.finish(cfg.End)
	return c.ledger()
}

func byAt(a, b Event) int { return cmp.Compare(a.At, b.At) }

// observe takes one event. A streaming tally takes them in time order per
// device (see Recorder); across devices a send may come after a copy of its
// message, which waits for it (orphans).
func (c *tally) observe(e *Event) {
	if !c.keep {
		c.now = max(c.now, e.At)
		if c.now >= c.nextSweep {
			c.sweep()
		}
	}
	switch e.Kind {
	case KindSend:
		c.send(e)
	case KindAck:
		if m := c.byID[e.Msg]; m != nil && !m.acked && (e.Device == "" || e.Device == m.sender) {
			m.acked, m.ackAt = true, e.At
			m.totals.Acked++
			c.latency(m, StepAck, e.At)
			c.settle(m)
		}
	case KindReceipt:
		if m := c.byID[e.Msg]; m != nil && e.Device == m.sender && e.Receipt <= Read && !m.receipted[e.Receipt] {
			m.receipted[e.Receipt], m.receiptAt[e.Receipt] = true, e.At
			c.latency(m, receiptSteps[e.Receipt], e.At)
		}
	case KindDecrypt, KindShown:
		c.receive(e)
	case KindWire:
		c.wire(e, c.conns[deviceKey(e.Scenario, e.Device)])
	case KindUndecryptable:
		m := c.byID[e.Msg]
		if m == nil {
			c.unknown(e)
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

var receiptSteps = [Read + 1]string{Delivered: StepReceiptDelivered, Read: StepReceiptRead}

// latency records step for m, from its send to at.
func (c *tally) latency(m *message, step string, at time.Duration) {
	if c.latencies != nil {
		c.latencies.RecordIn(Scope{Scenario: m.scenario, Labels: m.labels}, step, at-m.sentAt)
	}
}

// scenario returns the counters of the named scenario, creating them.
func (c *tally) scenario(name string, labels []string) *scenarioTally {
	s := c.scenarios[name]
	if s == nil {
		s = &scenarioTally{labels: labels}
		c.scenarios[name] = s
	}
	return s
}

func (c *tally) send(e *Event) {
	if m := c.byID[e.Msg]; m != nil {
		c.resend(m, e)
		return
	}
	var m *message
	if len(c.slab) > 0 {
		m, c.slab = &c.slab[0], c.slab[1:]
	} else {
		m = new(message)
	}
	sc := c.scenario(e.Scenario, e.Labels)
	*m = message{id: e.Msg, sender: e.Device, stream: e.Stream, digest: e.Digest, scenario: e.Scenario,
		seq: c.sends, sentAt: e.At, targets: make([]target, 0, len(e.To)), totals: &sc.totals, labels: sc.labels}
	c.sends++
	m.addTargets(e)
	m.left = len(m.targets)
	c.byID[m.id] = m
	m.totals.Messages++
	m.totals.Expected += len(m.targets)
	if c.series != nil {
		c.series.sent(e.At)
	}
	if c.keep {
		c.msgs = append(c.msgs, m)
		return
	}
	c.live.push(m)
	m.queued = true
	if held, ok := c.orphans[m.id]; ok {
		delete(c.orphans, m.id)
		for i := range held {
			if e := &held[i].e; e.Kind == KindWire {
				c.wire(e, held[i].conn)
			} else {
				c.observe(e)
			}
		}
	}
}

// resend takes the same message sent again (after the relay refused a stale
// device list): it must reach the devices of the last attempt, and latency
// still counts from the first. A device on both lists keeps what it got.
func (c *tally) resend(m *message, e *Event) {
	old := m.targets
	m.targets = make([]target, 0, len(e.To))
	m.addTargets(e)
	m.left = 0
	for i := range m.targets {
		t := &m.targets[i]
		if j := slices.IndexFunc(old, func(o target) bool { return o.device == t.device }); j >= 0 {
			*t = old[j]
		}
		if !t.received {
			m.left++
		}
	}
	for _, o := range old {
		if o.received && m.target(o.device) == nil {
			m.totals.Delivered--
		}
	}
	m.totals.Expected += len(m.targets) - len(old)
	if m.left > 0 {
		m.settled = false
	}
}

// receive counts a decryption or a showing of a message on a device; the
// first of either is its delivery.
func (c *tally) receive(e *Event) {
	m := c.byID[e.Msg]
	if m == nil {
		c.unknown(e)
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
	m.totals.Delivered++
	m.left--
	c.latency(m, StepDeliver, e.At)
	if c.series != nil {
		c.series.delivered(e.At, e.At-m.sentAt)
	}
	c.order(c.streams, m, t, e.At, reorderedLine)
	c.settle(m)
}

// wire counts a copy the relay handed a device on its connection number
// conn. Copies of messages nobody
// was recorded sending, or to devices they were not addressed to, are left
// to what the device decrypts: history bundles and other protocol traffic
// travel the same way.
func (c *tally) wire(e *Event, conn int) {
	m := c.byID[e.Msg]
	if m == nil {
		if !c.keep {
			c.hold(e) // its send may be on its way
		}
		return
	}
	t := m.target(e.Device)
	if t == nil {
		return
	}
	w := wireCopy{seq: e.Seq, conn: conn, at: e.At}
	if len(t.wire) == 0 {
		m.totals.Wire++
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
func (c *tally) order(streams map[streamKey]*streamState, m *message, t *target, at time.Duration, line func(string, *message, string) string) {
	key := streamKey{m.scenario, m.sender, m.stream, t.device}
	s := streams[key]
	if s == nil {
		s = &streamState{newestSeq: -1}
		streams[key] = s
	}
	if m.seq < s.newestSeq {
		if !t.reordered {
			t.reordered = true
			c.problem(m, nil, Problem{Kind: Reordered, Device: t.device, At: at, Message: line(t.device, m, s.newestID)})
		}
	} else {
		s.newestSeq, s.newestID = m.seq, m.id
	}
	s.lastID = m.id
}

// unknown takes a copy of a message the ledger does not know: a stray for
// Check, which has seen every send; a streaming tally holds it first, in
// case its send is still on its way.
func (c *tally) unknown(e *Event) {
	if c.keep {
		c.stray(e, nil)
	} else {
		c.hold(e)
	}
}

func (c *tally) hold(e *Event) {
	c.orphans[e.Msg] = append(c.orphans[e.Msg], heldCopy{e: *e, conn: c.conns[deviceKey(e.Scenario, e.Device)]})
	c.orphanQ = append(c.orphanQ, orphanRef{id: e.Msg, at: e.At})
}

// stray reports a message a device got without being one of its targets (m
// is nil when no device was recorded sending it). One line per message and
// device, however many copies arrive.
func (c *tally) stray(e *Event, m *message) {
	k := [2]string{e.Msg, e.Device}
	if _, seen := c.strays[k]; seen {
		return
	}
	c.strays[k] = e.At
	p := Problem{Kind: Unexpected, Device: e.Device, Msg: e.Msg, At: e.At}
	if e.Kind == KindUndecryptable && m == nil {
		p.Kind = Undecryptable
	}
	p.Message = strayLine(e, m)
	c.problem(m, e, p)
}

// deviceKey names a device within its scenario.
func deviceKey(scenario, device string) string { return scenario + "\x00" + device }

// problem counts p under its message's scenario (or, without a message,
// the scenario of the event e that showed it) and files it under its kind,
// at most MaxProblems of each.
func (c *tally) problem(m *message, e *Event, p Problem) {
	if m != nil {
		p.Msg, p.Sender, p.Stream, p.Scenario = m.id, m.sender, m.stream, m.scenario
		if m.scenario != "" {
			p.Message += " [" + m.scenario + "]"
		}
		if c.keep {
			m.problems = append(m.problems, p)
		}
		m.totals.inc(p.Kind)
	} else {
		c.scenario(e.Scenario, e.Labels).totals.inc(p.Kind)
	}
	if c.cfg.MaxProblems > 0 && len(c.byKind[p.Kind]) >= c.cfg.MaxProblems {
		c.dropped++
		return
	}
	c.byKind[p.Kind] = append(c.byKind[p.Kind], p)
}

// settle starts a streaming tally's Retain wait for m once every target
// received it and the relay acked it.
func (c *tally) settle(m *message) {
	if c.keep || m.settled || m.left > 0 || !m.acked {
		return
	}
	m.settled, m.settledAt = true, c.now
	c.settled.push(m)
}

// sweep judges and forgets the messages whose time is up, and turns the
// copies whose send never came into strays.
func (c *tally) sweep() {
	c.nextSweep = c.now + sweepEvery
	for m := c.live.peek(); m != nil && m.sentAt+c.cfg.LostAfter <= c.now; m = c.live.peek() {
		c.live.pop()
		m.queued = false
		if m.judged {
			c.liveJudged--
		} else if !m.settled {
			c.judge(m, c.now)
		}
	}
	for m := c.settled.peek(); m != nil && m.settledAt+c.cfg.Retain <= c.now; m = c.settled.peek() {
		c.settled.pop()
		switch {
		case m.judged:
		case m.settled || m.sentAt+c.cfg.LostAfter <= c.now:
			c.judge(m, c.now)
		case !m.queued: // a resend added a target: back to waiting for it
			c.live.push(m)
			m.queued = true
		}
	}
	if c.liveJudged > len(c.live)/2 {
		c.live = slices.DeleteFunc(c.live, func(m *message) bool { return m.judged })
		c.liveJudged = 0
	}
	for len(c.orphanQ) > 0 && c.orphanQ[0].at+c.cfg.Retain <= c.now {
		id := c.orphanQ[0].id
		c.orphanQ = c.orphanQ[1:]
		c.strayOrphans(id)
	}
	for k, at := range c.strays {
		if at+c.cfg.Retain <= c.now {
			delete(c.strays, k)
		}
	}
}

// strayOrphans reports the held copies of id, whose send never came.
func (c *tally) strayOrphans(id string) {
	held := c.orphans[id]
	delete(c.orphans, id)
	for i := range held {
		if held[i].e.Kind != KindWire { // see wire
			c.stray(&held[i].e, nil)
		}
	}
}

// judge counts the problems of each target of m once its copies are in;
// end is when observation stopped, for the lost line. A streaming tally
// then forgets m.
func (c *tally) judge(m *message, end time.Duration) {
	for i := range m.targets {
		t := &m.targets[i]
		if t.wireDups > 0 {
			c.problem(m, nil, Problem{Kind: Duplicated, Device: t.device, At: t.wireDup[1].at,
				Message: wireDuplicatedLine(m, t)})
		}
		switch {
		case !t.received && t.undecryptable > 0:
			c.problem(m, nil, Problem{Kind: Undecryptable, Device: t.device, At: m.sentAt,
				Message: undecryptableLine(m, t)})
		case !t.received:
			c.problem(m, nil, Problem{Kind: Lost, Device: t.device, At: m.sentAt,
				Message: c.lostLine(m, t, end)})
			continue
		case t.undecryptable > 0:
			m.totals.Recovered++
		}
		if t.wireDups == 0 && (t.decrypted.n > 1 || t.shown.n > 1) {
			c.problem(m, nil, Problem{Kind: Duplicated, Device: t.device, At: duplicateAt(t),
				Message: duplicatedLine(m, t)})
		}
		if t.corrupted {
			c.problem(m, nil, Problem{Kind: Corrupted, Device: t.device, At: t.firstAt,
				Message: corruptedLine(m, t)})
		}
		if c.cfg.Deadline > 0 && t.firstAt-m.sentAt > c.cfg.Deadline {
			c.problem(m, nil, Problem{Kind: Late, Device: t.device, At: t.firstAt,
				Message: lateLine(m, t, c.cfg.Deadline)})
		}
	}
	if !c.keep {
		m.judged, m.targets = true, nil
		delete(c.byID, m.id)
		if m.queued {
			c.liveJudged++
		}
	}
}

// finish judges every message still held, in send order; end is when
// observation stopped.
func (c *tally) finish(end time.Duration) {
	if c.keep {
		for _, m := range c.msgs {
			c.judge(m, end)
		}
		return
	}
	held := slices.SortedFunc(maps.Values(c.byID), func(a, b *message) int { return cmp.Compare(a.seq, b.seq) })
	for _, m := range held {
		c.judge(m, end)
	}
	for len(c.orphanQ) > 0 {
		id := c.orphanQ[0].id
		c.orphanQ = c.orphanQ[1:]
		c.strayOrphans(id)
	}
}

// ledger returns the verdict so far: the messages judged, and the counters
// of those still held.
func (c *tally) ledger() Ledger {
	l := Ledger{Deadline: c.cfg.Deadline, Totals: c.totals(), Dropped: c.dropped}
	for _, k := range ProblemKinds {
		l.Problems = append(l.Problems, c.byKind[k]...)
	}
	if c.keep {
		l.msgs, l.byID = c.msgs, c.byID
	}
	return l
}

// totals adds up every scenario's counters.
func (c *tally) totals() Totals {
	var t Totals
	for _, s := range c.scenarios {
		t = t.Add(s.totals)
	}
	return t
}

// scenarioTotals returns the counters of each scenario, sorted by name.
func (c *tally) scenarioTotals() []ScenarioTotals {
	out := []ScenarioTotals{}
	for _, name := range slices.Sorted(maps.Keys(c.scenarios)) {
		if name != "" {
			s := c.scenarios[name]
			out = append(out, ScenarioTotals{Scenario: name, Labels: s.labels, Totals: s.totals})
		}
	}
	return out
}

// held is how many messages the tally holds: its memory, apart from the
// per-stream and per-device state.
func (c *tally) held() int { return len(c.byID) }
