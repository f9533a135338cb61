package reports

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Recorder collects the events of one run from every device on one monotonic
// clock. It is safe for concurrent use; the zero value is not usable, call
// NewRecorder, or NewStreamingRecorder for a long run.
//
// Record a send before the message goes out on the wire: the ledger measures
// latency from the send event, and a fast relay can otherwise deliver before
// the send is recorded (the ledger still copes, but the latency reads as 0).
type Recorder struct {
	start time.Time // carries Go's monotonic reading; every At is time.Since(start)

	mu sync.Mutex
	// Events live in fixed-size chunks: appending never copies what is
	// already recorded, so a load run's millionth event costs what its first
	// did.
	chunks [][]Event
	// origins parallels chunks: per event, the id of the recorder it came
	// through (r's own, or a child's), so Withdraw can take a child's out.
	origins [][]uint64
	n       int
	faults  uint64

	id uint64

	// parent, if set, records everything this recorder records (see Child).
	parent *Recorder
	// scope is stamped on every event recorded here that has none (ChildFor).
	scope Scope
	sinks []Sink

	// stream, if set, judges events as they come in place of keeping them
	// (NewStreamingRecorder); the children of such a recorder share it and
	// pass their events on to their parent.
	stream *streamer
}

// Scope says which scenario an event belongs to, so metrics and thresholds
// can be cut per scenario or per label. The zero Scope is the run itself.
type Scope struct {
	Scenario string
	Labels   []string
}

// A Sink receives every event its recorder records, as it is recorded and in
// time order: how a run streams its events to a file while it runs. It is
// called with the recorder's lock held, so it must be quick and must not call
// back into the recorder.
type Sink interface {
	Record(Event)
}

// SinkFunc lets a plain function be a Sink.
type SinkFunc func(Event)

// Record calls f(e).
func (f SinkFunc) Record(e Event) {
	f(e)
}

// recorderIDs numbers recorders, for Withdraw.
var recorderIDs atomic.Uint64

const chunkSize = 4096

// NewRecorder returns a recorder whose clock starts now.
func NewRecorder() *Recorder {
	return &Recorder{start: time.Now(), id: recorderIDs.Add(1)}
}

// Child returns a recorder whose events are also recorded in r, each on its
// own clock: one per scenario, so a scenario's ledger judges only its own
// messages while the run's report covers every scenario.
// The child keeps r's scope.
func (r *Recorder) Child() *Recorder {
	c := NewRecorder()
	c.parent = r
	c.scope = r.scope
	c.stream = r.stream
	return c
}

// ChildFor is Child for one scenario: every event recorded through the
// child, or through its own children, carries the scenario's name and
// labels, in the child and in r.
func (r *Recorder) ChildFor(scenario string, labels []string) *Recorder {
	c := r.Child()
	c.scope = Scope{Scenario: scenario, Labels: slices.Clone(labels)}
	return c
}

// AddSink makes s receive every event r records from now on, including what
// its children record.
func (r *Recorder) AddSink(s Sink) {
	if r.stream != nil {
		r.stream.mu.Lock()
		defer r.stream.mu.Unlock()
		r.stream.sinks = append(r.stream.sinks, s)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sinks = append(r.sinks, s)
}

// Start returns the wall-clock time the recorder's clock started.
func (r *Recorder) Start() time.Time { return r.start }

// Elapsed returns the time on the recorder's clock.
func (r *Recorder) Elapsed() time.Duration { return time.Since(r.start) }

// add stamps e and appends it. The timestamp is taken under the lock so the
// event slice is always in time order, which the ledger relies on to read
// arrival order without sorting.
func (r *Recorder) add(e Event) { r.addFrom(e, r.id) }

// addFrom adds e, which came through the recorder numbered origin.
func (r *Recorder) addFrom(e Event, origin uint64) {
	if r.stream != nil {
		r.streamEvent(e)
		return
	}
	r.mu.Lock()
	e.At = time.Since(r.start)
	e = r.push(e, origin)
	r.mu.Unlock()
	if r.parent != nil {
		r.parent.addFrom(e, r.id)
	}
}

// streamEvent hands e, stamped with r's scope unless it has one, to the
// streaming recorder at the root of r's family.
func (r *Recorder) streamEvent(e Event) {
	if e.Scenario == "" {
		e.Scenario, e.Labels = r.scope.Scenario, r.scope.Labels
	}
	if r.parent != nil {
		r.parent.streamEvent(e)
		return
	}
	r.stream.add(e)
}

// push stamps e with r's scope unless it has one, appends it, hands it to
// the sinks and returns it as stamped. r.mu must be held.
func (r *Recorder) push(e Event, origin uint64) Event {
	if e.Scenario == "" {
		e.Scenario, e.Labels = r.scope.Scenario, r.scope.Labels
	}
	r.append(e, origin)
	for _, s := range r.sinks {
		s.Record(e)
	}
	return e
}

// append stores e. r.mu must be held.
func (r *Recorder) append(e Event, origin uint64) {
	if r.n%chunkSize == 0 {
		r.chunks = append(r.chunks, make([]Event, 0, chunkSize))
		r.origins = append(r.origins, make([]uint64, 0, chunkSize))
	}
	last := len(r.chunks) - 1
	r.chunks[last] = append(r.chunks[last], e)
	r.origins[last] = append(r.origins[last], origin)
	r.n++
}

// Withdraw takes every event r recorded (itself or through its children)
// out of its parent's events, as if they never happened there; r keeps its
// own, and sinks that already got them keep them. A run withdraws a
// scenario that was skipped, so the messages it sent before skipping are
// not judged lost. It reaches the parent only, not the parent's parent;
// call it once r records no more.
func (r *Recorder) Withdraw() {
	if r.stream != nil {
		panic("reports: Withdraw on a streaming recorder: its events are judged as they come, there are none to take out")
	}
	if p := r.parent; p != nil {
		p.remove(r.id)
	}
}

// remove drops the events that came through the recorder numbered origin.
func (r *Recorder) remove(origin uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	chunks, origins := r.chunks, r.origins
	r.chunks, r.origins, r.n = nil, nil, 0
	for i, c := range chunks {
		for j, e := range c {
			if origins[i][j] != origin {
				r.append(e, origins[i][j])
			}
		}
	}
}

// Send records that device from sent message msg on stream (the chat, or any
// key within which order must be kept) and that every device in to must
// receive it: the recipient's devices and the sender's other devices at send
// time. The sender itself is ignored if listed. digest is DigestOf(plaintext).
// Recording msg again (a resend after the relay refused a stale device list)
// replaces its targets; latency still counts from the first send.
func (r *Recorder) Send(from, msg, stream string, to []string, digest Digest) {
	r.add(Event{Kind: KindSend, Device: from, Msg: msg, Stream: stream, To: slices.Clone(to), Digest: digest})
}

// Ack records that the relay acknowledged msg to its sender device.
func (r *Recorder) Ack(device, msg string) {
	r.add(Event{Kind: KindAck, Device: device, Msg: msg})
}

// Decrypted records that device decrypted msg and that its plaintext had the
// given digest. Every decryption counts, so a redelivered copy shows up as a
// duplicate.
func (r *Recorder) Decrypted(device, msg string, digest Digest) {
	r.add(Event{Kind: KindDecrypt, Device: device, Msg: msg, Digest: digest})
}

// Wire records that the relay handed device a copy of msg at queue
// position seq, before the device deduplicates anything: every copy
// counts, so a relay that duplicates, reorders or drops shows even where
// the client hides it. Record it for every delivery of a message.
func (r *Recorder) Wire(device, msg string, seq uint64) {
	r.add(Event{Kind: KindWire, Device: device, Msg: msg, Seq: seq})
}

// Shown records that device shows msg to its user (in its chat list or
// page) with the given digest: what the user sees, apart from what the
// device decrypted. Every copy shown counts.
func (r *Recorder) Shown(device, msg string, digest Digest) {
	r.add(Event{Kind: KindShown, Device: device, Msg: msg, Digest: digest})
}

// Undecryptable records that device received msg but could not decrypt it, and
// why. A later Decrypted of the same message counts as a recovery (the retry
// receipt worked), not as a problem.
func (r *Recorder) Undecryptable(device, msg, reason string) {
	r.add(Event{Kind: KindUndecryptable, Device: device, Msg: msg, Detail: reason})
}

// Receipt records that a receipt of the given kind for msg arrived at device
// (one of the sender's devices). The receipt latencies are measured at the
// device that sent the message.
func (r *Recorder) Receipt(device, msg string, kind ReceiptKind) {
	r.add(Event{Kind: KindReceipt, Device: device, Msg: msg, Receipt: kind})
}

// Connect records that device is connected to the relay.
func (r *Recorder) Connect(device string) {
	r.add(Event{Kind: KindConnect, Device: device})
}

// Disconnect records that device lost or closed its connection, and why.
func (r *Recorder) Disconnect(device, reason string) {
	r.add(Event{Kind: KindDisconnect, Device: device, Detail: reason})
}

// Fault records that a fault named name (say "blackhole alice/web-1") starts
// now, and returns the function that records its end. Calling end more than
// once records one end; a fault never ended lasts until the end of the run.
func (r *Recorder) Fault(name string) (end func()) {
	return r.fault(Event{Name: name}, r.id)
}

// fault records the start of fault e (its name and scope), which came
// through the recorder numbered origin, and returns the function that
// records its end.
func (r *Recorder) fault(e Event, origin uint64) (end func()) {
	if r.stream != nil {
		return r.streamFault(e)
	}
	r.mu.Lock()
	r.faults++
	e.Kind, e.At, e.ID = KindFaultStart, time.Since(r.start), r.faults
	e = r.push(e, origin)
	r.mu.Unlock()
	// The parent numbers its faults itself: ids are per recorder.
	parentEnd := func() {}
	if r.parent != nil {
		parentEnd = r.parent.fault(e, r.id)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			e.Kind, e.At = KindFaultEnd, time.Since(r.start)
			r.push(e, origin)
			r.mu.Unlock()
			parentEnd()
		})
	}
}

// streamFault is fault for a streaming recorder: the root numbers the
// faults of the whole family.
func (r *Recorder) streamFault(e Event) (end func()) {
	if e.Scenario == "" {
		e.Scenario, e.Labels = r.scope.Scenario, r.scope.Labels
	}
	if r.parent != nil {
		return r.parent.streamFault(e)
	}
	e.Kind, e.ID = KindFaultStart, r.stream.faults.Add(1)
	r.stream.add(e)
	var once sync.Once
	return func() {
		once.Do(func() {
			e.Kind = KindFaultEnd
			r.stream.add(e)
		})
	}
}

// Step records that the step name (like "qr.decoded" or "pair.linked") took
// d, optionally on device. Steps land in the metrics as histograms by name.
func (r *Recorder) Step(name, device string, d time.Duration) {
	r.add(Event{Kind: KindStep, Device: device, Name: name, Value: d})
}

// Time starts timing step name and returns the function that records it:
//
//	defer rec.Time("qr.decoded", "alice/web-1")()
func (r *Recorder) Time(name, device string) (stop func()) {
	t0 := time.Now()
	return func() { r.Step(name, device, time.Since(t0)) }
}

// Events returns a copy of everything recorded so far, in time order; a
// streaming recorder keeps none and returns nil.
func (r *Recorder) Events() []Event {
	if r.stream != nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Event, 0, r.n)
	for _, c := range r.chunks {
		out = append(out, c...)
	}
	return out
}

// Totals returns the ledger's counters so far. A streaming recorder reads
// them without going over the events: every message judged, and for those
// still held what is known (sent, acked, delivered, reordered), their
// losses and duplicates not yet. A recorder that keeps its events checks
// them all.
func (r *Recorder) Totals() Totals {
	if r.stream != nil {
		return r.stream.totals()
	}
	return r.Ledger().Totals
}

// Ledger is the verdict on everything recorded so far (as Check judges
// r's events until now). On a streaming recorder it is the verdict on the
// messages judged so far, with the counters of Totals; its Message knows
// the messages still held, its Targets none.
func (r *Recorder) Ledger() Ledger {
	if r.stream != nil {
		return r.stream.ledger()
	}
	return Check(r.Events(), LedgerConfig{End: r.Elapsed()})
}

// Held returns how many messages a streaming recorder's ledger holds in
// memory (sent and not yet judged); 0 for a recorder that keeps events.
func (r *Recorder) Held() int {
	if r.stream == nil {
		return 0
	}
	return r.stream.held()
}
