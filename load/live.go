package load

import (
	"slices"
	"sync"
	"time"

	"github.com/linksim/linksim/reports"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/e2e"
)

// Phases of a run, as the live view shows them.
const (
	PhaseStarting  = "starting"
	PhaseLinking   = "linking"
	PhaseMessaging = "messaging"
	PhaseDraining  = "draining"
	PhaseDone      = "done"
)

// Snapshot is the live state of a run (or of one worker's share of it):
// what the progress display shows and what abort-on-fail judges. Workers
// send theirs to the coordinator, which merges them (Merge). Counters are
// totals since the start; rates come from the difference of two snapshots.
type Snapshot struct {
	At        time.Duration `json:"at_ns"` // since the run started
	Phase     string        `json:"phase"`
	Target    int           `json:"target"`    // devices to link
	Linked    int           `json:"linked"`    // devices linked so far
	Connected int           `json:"connected"` // devices with a live link now
	Sent      int64         `json:"sent"`      // messages handed to the relay
	Acked     int64         `json:"acked"`
	Expected  int64         `json:"expected"`  // (message, device) deliveries due
	Delivered int64         `json:"delivered"` // of those, decrypted
	Actions   int64         `json:"actions"`   // actions started
	Errors    int64         `json:"errors"`    // actions and links that failed
	Dropped   int64         `json:"dropped"`   // actions not started: MaxInFlight was reached
	Lost      int64         `json:"lost"`      // deliveries outstanding for longer than LostAfter
	// FirstError is kept beside LastError: the first failure is most often
	// the cause of those after it.
	FirstError string `json:"first_error,omitzero"`
	LastError  string `json:"last_error,omitzero"`
	// Recent holds msg.deliver over the last few seconds; All holds msg.ack
	// and msg.deliver over the whole run.
	Recent *reports.Metrics `json:"recent"`
	All    *reports.Metrics `json:"all"`
	// LastSecond holds msg.deliver of the last whole second (nil in the
	// first): the time series' percentiles.
	LastSecond *reports.Metrics `json:"last_second,omitzero"`
}

// Merge adds o, another worker's snapshot of the same moment, into s.
func (s *Snapshot) Merge(o Snapshot) {
	s.At = max(s.At, o.At)
	if phaseOrder(o.Phase) < phaseOrder(s.Phase) || s.Phase == "" {
		s.Phase = o.Phase // the run is as far as its slowest worker
	}
	s.Target += o.Target
	s.Linked += o.Linked
	s.Connected += o.Connected
	s.Sent += o.Sent
	s.Acked += o.Acked
	s.Expected += o.Expected
	s.Delivered += o.Delivered
	s.Actions += o.Actions
	s.Errors += o.Errors
	s.Dropped += o.Dropped
	s.Lost += o.Lost
	if o.LastError != "" {
		s.LastError = o.LastError
	}
	if s.FirstError == "" {
		s.FirstError = o.FirstError
	}
	if s.Recent == nil {
		s.Recent = reports.NewMetrics()
	}
	s.Recent.Merge(o.Recent)
	if s.All == nil {
		s.All = reports.NewMetrics()
	}
	s.All.Merge(o.All)
	if o.LastSecond != nil {
		if s.LastSecond == nil {
			s.LastSecond = reports.NewMetrics()
		}
		s.LastSecond.Merge(o.LastSecond)
	}
}

func phaseOrder(p string) int {
	for i, q := range []string{PhaseStarting, PhaseLinking, PhaseMessaging, PhaseDraining, PhaseDone} {
		if p == q {
			return i
		}
	}
	return -1
}

// liveReport is the report abort-on-fail judges: latency from the run so
// far and the ledger counters the live figures can tell (lost is
// provisional: deliveries overdue by LostAfter).
func (s Snapshot) liveReport() *reports.Report {
	return &reports.Report{Metrics: s.All, Ledger: reports.Ledger{Totals: reports.Totals{
		Messages: int(s.Sent), Acked: int(s.Acked), Expected: int(s.Expected),
		Delivered: int(s.Delivered), Lost: int(s.Lost),
	}}}
}

// recentSeconds is how far back the live view's percentiles look.
const recentSeconds = 5

// tracker follows device events as they happen, cheaply: memory is one
// entry per message still in flight, so a long run does not grow with it.
// The report's ledger is still built from the recorder at the end.
type tracker struct {
	start     time.Time
	lostAfter time.Duration

	// queue takes events from the devices' goroutines without t.mu; they
	// are applied, in queue order, by whoever takes t.mu next (lock).
	// Devices taking t.mu for every event convoyed at 19,000 devices:
	// hundreds of read loops parked on it, deliveries stalled for seconds.
	queue chan queuedEvent

	mu         sync.Mutex
	phase      string
	target     int
	linked     int
	connected  int
	sent       int64
	acked      int64
	expected   int64
	delivered  int64
	actions    int64
	errors     int64
	dropped    int64
	firstError string
	lastError  string
	pending    map[string]*inflight
	// waitingOn counts, per device, the deliveries still on their way to
	// it or from it: an unlink waits for its device's to reach 0.
	waitingOn map[e2e.Address]int
	// recent is a ring of per-second msg.deliver histograms.
	recent    [recentSeconds]*reports.Metrics
	recentSec int64
	all       *reports.Metrics
	step      *reports.Metrics // since the last takeStep (capacity search)
}

// queuedEvent is a device event and when it happened.
type queuedEvent struct {
	e   device.Event
	now time.Time
}

// trackerQueue bounds the events waiting for t.mu: seconds of a
// 1,000 msg/s run; beyond it an event is applied at once.
const trackerQueue = 1 << 16

// inflight is a sent message not yet decrypted by all its targets.
type inflight struct {
	sentAt  time.Time
	from    e2e.Address
	ackedAt bool
	// waiting are the targets it has not reached yet; got the ones it has.
	waiting, got []e2e.Address
}

func newTracker(lostAfter time.Duration) *tracker {
	t := &tracker{start: time.Now(), lostAfter: lostAfter, phase: PhaseStarting, queue: make(chan queuedEvent, trackerQueue), pending: make(map[string]*inflight), waitingOn: make(map[e2e.Address]int), all: reports.NewMetrics(), step: reports.NewMetrics()}
	for i := range t.recent {
		t.recent[i] = reports.NewMetrics()
	}
	return t
}

// event takes a device event; it is called from the devices' goroutines.
func (t *tracker) event(e device.Event) {
	q := queuedEvent{e: e, now: time.Now()}
	select {
	case t.queue <- q:
	default:
		t.lock()
		defer t.mu.Unlock()
		t.apply(q)
	}
}

// lock takes t.mu and applies the queued events.
func (t *tracker) lock() {
	t.mu.Lock()
	for {
		select {
		case q := <-t.queue:
			t.apply(q)
		default:
			return
		}
	}
}

// apply counts one event. t.mu must be held.
func (t *tracker) apply(q queuedEvent) {
	e, now := q.e, q.now
	switch e.Kind {
	case device.Connected:
		t.connected++
	case device.Disconnected, device.LoggedOut:
		t.connected--
	case device.Sent:
		m := t.pending[e.MessageID]
		if m == nil {
			// A resend after a stale device list reuses the id: only the
			// first send counts, and its time.
			m = &inflight{sentAt: now, from: e.Address}
			t.pending[e.MessageID] = m
			t.sent++
		}
		// A resend goes to the devices of its last attempt.
		t.expected -= int64(len(m.waiting))
		t.release(m, m.waiting)
		m.waiting = m.waiting[:0]
		for _, a := range e.Targets {
			if !slices.Contains(m.got, a) {
				m.waiting = append(m.waiting, a)
				t.waitingOn[a]++
				t.waitingOn[m.from]++
			}
		}
		t.expected += int64(len(m.waiting))
		t.settle(e.MessageID, m)
	case device.Acked:
		if m := t.pending[e.MessageID]; m != nil && !m.ackedAt {
			m.ackedAt = true
			t.acked++
			t.all.Record(reports.StepAck, now.Sub(m.sentAt))
			t.step.Record(reports.StepAck, now.Sub(m.sentAt))
			t.settle(e.MessageID, m)
		}
	case device.Received, device.MediaDownloaded:
		t.arrived(e.MessageID, e.Address, now)
	}
}

// shown counts a delivery that a browser page showed: its device inside
// the page reports no events, the harness reads them off the screen.
func (t *tracker) shown(id string, to e2e.Address) {
	now := time.Now()
	t.lock()
	defer t.mu.Unlock()
	t.arrived(id, to, now)
}

// arrived counts message id reaching device to. t.mu must be held.
func (t *tracker) arrived(id string, to e2e.Address, now time.Time) {
	m := t.pending[id]
	if m == nil {
		return // history, or a duplicate: the ledger judges those
	}
	i := slices.Index(m.waiting, to)
	if i < 0 {
		return // not a target, or a second copy: the ledger judges those
	}
	m.waiting = slices.Delete(m.waiting, i, i+1)
	m.got = append(m.got, to)
	t.release(m, []e2e.Address{to})
	d := now.Sub(m.sentAt)
	t.all.Record(reports.StepDeliver, d)
	t.step.Record(reports.StepDeliver, d)
	t.bucket(now).Record(reports.StepDeliver, d)
	t.delivered++
	t.settle(id, m)
}

// release takes m's deliveries to the devices to off the counts of those
// devices and of its sender. t.mu must be held.
func (t *tracker) release(m *inflight, to []e2e.Address) {
	for _, a := range to {
		for _, d := range []e2e.Address{a, m.from} {
			if t.waitingOn[d]--; t.waitingOn[d] <= 0 {
				delete(t.waitingOn, d)
			}
		}
	}
}

// owed is how many deliveries are still on their way to or from device a.
func (t *tracker) owed(a e2e.Address) int {
	t.lock()
	defer t.mu.Unlock()
	return t.waitingOn[a]
}

// settle forgets a message once every target has it and it was acked.
func (t *tracker) settle(id string, m *inflight) {
	if len(m.waiting) == 0 && m.ackedAt {
		delete(t.pending, id)
	}
}

// bucket returns the histogram of the current second, clearing the ring's
// slots that went stale. t.mu must be held.
func (t *tracker) bucket(now time.Time) *reports.Metrics {
	sec := int64(now.Sub(t.start) / time.Second)
	for s := max(t.recentSec+1, sec-recentSeconds+1); s <= sec; s++ {
		t.recent[s%recentSeconds] = reports.NewMetrics()
	}
	t.recentSec = max(t.recentSec, sec)
	return t.recent[sec%recentSeconds]
}

func (t *tracker) setPhase(p string) {
	t.lock()
	defer t.mu.Unlock()
	t.phase = p
}

func (t *tracker) addTarget(n int) {
	t.lock()
	defer t.mu.Unlock()
	t.target += n
}

func (t *tracker) addLinked(n int) {
	t.lock()
	defer t.mu.Unlock()
	t.linked += n
}

func (t *tracker) action() {
	t.lock()
	defer t.mu.Unlock()
	t.actions++
}

func (t *tracker) drop() {
	t.lock()
	defer t.mu.Unlock()
	t.dropped++
}

func (t *tracker) fail(err error) {
	t.lock()
	defer t.mu.Unlock()
	t.errors++
	t.lastError = err.Error()
	if t.firstError == "" {
		t.firstError = t.lastError
	}
}

// takeStep returns the latencies recorded since the last call and starts
// afresh.
func (t *tracker) takeStep() *reports.Metrics {
	t.lock()
	defer t.mu.Unlock()
	m := t.step
	t.step = reports.NewMetrics()
	return m
}

// forget stops waiting for a message whose send failed; the ledger still
// judges whatever of it arrived.
func (t *tracker) forget(id string) {
	t.lock()
	defer t.mu.Unlock()
	if m := t.pending[id]; m != nil {
		t.expected -= int64(len(m.waiting))
		t.release(m, m.waiting)
		delete(t.pending, id)
	}
}

// outstanding is how many deliveries (and acks) are still awaited.
func (t *tracker) outstanding() int {
	t.lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// snapshot returns the live state now.
func (t *tracker) snapshot() Snapshot {
	now := time.Now()
	t.lock()
	defer t.mu.Unlock()
	t.bucket(now) // clear slots older than the window
	s := Snapshot{
		At: now.Sub(t.start), Phase: t.phase, Target: t.target, Linked: t.linked, Connected: t.connected,
		Sent: t.sent, Acked: t.acked, Expected: t.expected, Delivered: t.delivered,
		Actions: t.actions, Errors: t.errors, Dropped: t.dropped,
		FirstError: t.firstError, LastError: t.lastError,
		Recent: reports.NewMetrics(), All: reports.NewMetrics(),
	}
	for _, m := range t.recent {
		s.Recent.Merge(m)
	}
	if sec := int64(now.Sub(t.start) / time.Second); sec > 0 {
		s.LastSecond = reports.NewMetrics()
		s.LastSecond.Merge(t.recent[(sec-1)%recentSeconds])
	}
	s.All.Merge(t.all)
	for _, m := range t.pending {
		if len(m.waiting) > 0 && now.Sub(m.sentAt) > t.lostAfter {
			s.Lost += int64(len(m.waiting))
		}
	}
	return s
}
